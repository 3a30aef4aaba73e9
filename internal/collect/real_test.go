//go:build linux

package collect

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"golang.org/x/sys/unix"
)

// TestDefaultSetRealSystem runs the core set against this machine's /proc
// and checks that the values are sane.
func TestDefaultSetRealSystem(t *testing.T) {
	s := NewDefault(Options{})
	s.Collect(context.Background()) // first tick: rates have no baseline yet
	time.Sleep(200 * time.Millisecond)
	got := s.Collect(context.Background())
	for _, st := range s.Stats() {
		if st.Err != nil || st.Skipped {
			t.Errorf("collector %s: err %v skipped %v", st.Name, st.Err, st.Skipped)
		}
	}

	byName := map[string][]metric.Sample{}
	for _, smp := range got {
		byName[smp.Name] = append(byName[smp.Name], smp)
	}
	one := func(name string) float64 {
		t.Helper()
		ss := byName[name]
		if len(ss) != 1 {
			t.Fatalf("%s: %d samples, want 1", name, len(ss))
		}
		return ss[0].Value
	}

	cpus := byName["cpu_usage_percent"]
	if len(cpus) < 2 {
		t.Fatalf("cpu_usage_percent: %d samples, want total and at least one cpu", len(cpus))
	}
	for _, smp := range cpus {
		if smp.Value < 0 || smp.Value > 100 {
			t.Errorf("cpu_usage_percent%v = %v", smp.Labels, smp.Value)
		}
	}
	for _, n := range []string{"load1", "load5", "load15"} {
		if v := one(n); v < 0 {
			t.Errorf("%s = %v", n, v)
		}
	}
	total, used := one("memory_total_bytes"), one("memory_used_bytes")
	if total <= 0 || used < 0 || used > total || one("memory_available_bytes") > total {
		t.Errorf("memory total %v used %v", total, used)
	}
	if p := one("memory_usage_percent"); p < 0 || p > 100 {
		t.Errorf("memory_usage_percent = %v", p)
	}
	if one("swap_used_bytes") > one("swap_total_bytes") {
		t.Error("swap used > total")
	}
	var root bool
	for _, smp := range byName["filesystem_size_bytes"] {
		root = root || smp.Labels.Get("mountpoint") == "/"
	}
	if !root {
		t.Errorf("no filesystem sample for /: %v", byName["filesystem_size_bytes"])
	}
	for _, smp := range byName["filesystem_usage_percent"] {
		if smp.Value < 0 || smp.Value > 100 {
			t.Errorf("filesystem_usage_percent%v = %v", smp.Labels, smp.Value)
		}
	}
	for _, n := range []string{"disk_read_bytes_per_second", "disk_write_bytes_per_second",
		"network_receive_bytes_per_second", "network_transmit_bytes_per_second"} {
		for _, smp := range byName[n] {
			if smp.Value < 0 {
				t.Errorf("%s%v = %v", n, smp.Labels, smp.Value)
			}
		}
	}
	if v := one("processes_total"); v < 1 {
		t.Errorf("processes_total = %v", v)
	}
	if v := one("uptime_seconds"); v <= 0 {
		t.Errorf("uptime_seconds = %v", v)
	}

	h, err := ReadHostInfo(Options{})
	if err != nil {
		t.Logf("ReadHostInfo partial: %v", err)
	}
	if h.KernelVersion == "" || h.CPUThreads == 0 || h.CPUCores == 0 || h.MemoryTotalBytes != uint64(total) || h.BootTime.IsZero() {
		t.Errorf("ReadHostInfo = %+v", h)
	}
}

// BenchmarkDefaultSet measures one tick of the core set on this machine.
func BenchmarkDefaultSet(b *testing.B) {
	s := NewDefault(Options{})
	ctx := context.Background()
	s.Collect(ctx)
	b.ReportAllocs()
	before := cpuTime(b)
	for b.Loop() {
		s.Collect(ctx)
	}
	// CPU time across all threads, the figure the agent's budget (0.25% of
	// one core, i.e. 2.5 ms per 1 s tick) is about.
	b.ReportMetric(float64((cpuTime(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectors measures each collector alone, without the Set's
// goroutines: the core ones and the deep ones on this machine (those whose
// source is missing here cost next to nothing), then the deep ones on the
// fixture tree (fixture/…), with smartctl and nvidia-smi answered from
// fixtures (their cost per tick is appending the cached samples).
func BenchmarkCollectors(b *testing.B) {
	opts := Options{}
	cs := []Collector{NewCPU(opts), NewLoad(opts), NewMemory(opts), NewFilesystem(opts),
		NewDisk(opts), NewNetwork(opts), NewProcesses(opts), NewUptime(opts),
		NewPressure(opts), NewHwmon(opts), NewThermal(opts), NewBattery(opts), NewSystemd(opts), NewContainers(opts)}
	fx := Options{ProcPath: "testdata/proc", SysPath: "testdata/sys", RootFS: b.TempDir()}
	fixture := func(c Collector) Collector { return namedCollector{"fixture/" + c.Name(), c} }
	sd := NewSystemd(fx)
	sd.Systemctl = "systemctl"
	sd.run = func(context.Context, ...string) ([]byte, error) { return os.ReadFile("testdata/systemctl-show.txt") }
	sm := NewSmart(fx)
	sm.Smartctl = "smartctl"
	sm.run = func(_ context.Context, argv ...string) ([]byte, error) {
		switch argv[len(argv)-1] {
		case "--json":
			return os.ReadFile("testdata/smartctl/scan-open.json")
		case "/dev/sda":
			return os.ReadFile("testdata/smartctl/sda.json")
		}
		return os.ReadFile("testdata/smartctl/nvme0.json")
	}
	g := NewGPU(fx)
	g.NvidiaSMI = "nvidia-smi"
	g.run = func(_ context.Context, argv ...string) ([]byte, error) {
		if strings.HasPrefix(argv[1], "--query-gpu") {
			return os.ReadFile("testdata/nvidia-smi/query-gpu.csv")
		}
		return os.ReadFile("testdata/nvidia-smi/query-compute-apps.csv")
	}
	ctr := NewContainers(Options{ProcPath: "testdata/ctproc", SysPath: "testdata/sys", RootFS: fx.RootFS})
	cs = append(cs, fixture(NewPressure(fx)), fixture(NewHwmon(fx)), fixture(NewThermal(fx)), fixture(NewBattery(fx)),
		fixture(sd), fixture(ctr), fixture(sm), fixture(g), fixture(NewTextfile("testdata/textfile", fx)))
	for _, c := range cs {
		b.Run(c.Name(), func(b *testing.B) {
			var batch Batch
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				batch.Samples = batch.Samples[:0]
				if err := c.Collect(ctx, &batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// namedCollector renames a collector for benchmark output.
type namedCollector struct {
	name string
	Collector
}

func (n namedCollector) Name() string { return n.name }

// TestFilesystemNoticesMounts checks that the mount table is re-read when
// the kernel signals a change. It needs CAP_SYS_ADMIN and skips without it.
func TestFilesystemNoticesMounts(t *testing.T) {
	dir := t.TempDir()
	c := NewFilesystem(Options{})
	c.Statfs = func(string) (FSUsage, error) { return FSUsage{}, nil }
	tick := func() {
		t.Helper()
		if err := c.Collect(context.Background(), &Batch{}); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	if c.watch == nil || c.watch.fd < 0 {
		t.Skip("mountinfo is not on procfs here")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(dir, 0)
		}
	}()
	tick()
	if !strings.Contains(string(c.raw), dir) {
		t.Fatalf("new mount %s not seen after a change notification", dir)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	tick()
	if strings.Contains(string(c.raw), dir) {
		t.Fatalf("unmounted %s still listed", dir)
	}
}

// TestTopProcessesKeptDescriptorsOnRealProc: on the real /proc a kept
// /proc/PID/stat descriptor rereads the live process, and once the process
// exits its descriptor is closed and the process no longer counted.
func TestTopProcessesKeptDescriptorsOnRealProc(t *testing.T) {
	tp := NewTopProcesses(Options{}, 5)
	defer tp.Close()
	if tp.maxFDs == 0 {
		t.Skip("open-file limit too low to keep descriptors")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	pid := uint32(cmd.Process.Pid)
	ctx := context.Background()
	if _, err := tp.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	r, ok := tp.rec(pid)
	if !ok || r.fd < 0 {
		t.Fatalf("no descriptor kept for the child %d", pid)
	}
	// A reread through the kept descriptor is the same live process.
	n, err := preadFd(r.fd, &tp.buf)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := parseProcStat(tp.buf[:n])
	if !ok || string(st.comm) != "sleep" {
		t.Fatalf("reread %q", tp.buf[:n])
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait() // reaped: /proc/PID is gone
	if _, err := tp.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.rec(pid); ok {
		t.Fatal("the exited child is still recorded")
	}
	counted := 0.0
	for _, st := range tp.AppendStates(nil) {
		counted += st.Value
	}
	if tp.keptFDs != len(tp.recs) || float64(len(tp.recs)) != counted {
		t.Fatalf("%d descriptors, %d records for %v processes", tp.keptFDs, len(tp.recs), counted)
	}
	if fds := openFDs(t); fds > tp.keptFDs+64 {
		t.Fatalf("%d descriptors open in the test process, %d kept", fds, tp.keptFDs)
	}
}

// openFDs counts the test process' open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
