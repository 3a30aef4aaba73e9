package collect

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// copyFixture copies testdata into a temporary directory the test may
// rewrite between ticks, and returns its root.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// formatSamples renders samples as `name{k="v",…} value`, sorted.
func formatSamples(ss []metric.Sample) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		var ls []string
		for _, l := range s.Labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		out = append(out, s.Name+"{"+strings.Join(ls, ",")+"} "+strconv.FormatFloat(s.Value, 'f', -1, 64))
	}
	slices.Sort(out)
	return out
}

func collectOnce(t *testing.T, c Collector) []string {
	t.Helper()
	var b Batch
	if err := c.Collect(context.Background(), &b); err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	for _, s := range b.Samples {
		if !slices.IsSortedFunc(s.Labels, func(a, b metric.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: labels of %s not sorted: %v", c.Name(), s.Name, s.Labels)
		}
		if s.Labels.Get(metric.MachineLabel) != "" {
			t.Errorf("%s: %s carries the machine label", c.Name(), s.Name)
		}
	}
	return formatSamples(b.Samples)
}

func wantSamples(t *testing.T, name string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s samples\n got %q\nwant %q", name, got, want)
	}
}

// fakeClock returns a clock that advances by the durations pushed to it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1795630000, 0)} }

func TestCPUFixture(t *testing.T) {
	root := copyFixture(t)
	c := NewCPU(Options{ProcPath: filepath.Join(root, "proc")})
	wantSamples(t, "tick 1", collectOnce(t, c)) // rates need two readings
	writeFile(t, filepath.Join(root, "proc", "stat"),
		"cpu  21578 0 9069 94836 795 0 205 953 0 0\n"+
			"cpu0 10267 0 3798 49076 58 0 32 503 0 0\n"+
			"cpu1 11310 0 5271 45759 736 0 173 449 0 0\n"+
			"intr 714950 0 0\nbtime 1795629822\nprocs_running 5\nprocs_blocked 1\n")
	wantSamples(t, "tick 2", collectOnce(t, c),
		`cpu_usage_percent{cpu="total"} 75`,
		`cpu_usage_percent{cpu="0"} 100`,
		`cpu_usage_percent{cpu="1"} 50`)
	// A counter reset (e.g. a restored VM) skips one tick instead of
	// reporting garbage.
	writeFile(t, filepath.Join(root, "proc", "stat"), "cpu  10 0 10 10 0 0 0 0 0 0\ncpu0 5 0 5 5 0 0 0 0 0 0\ncpu1 5 0 5 5 0 0 0 0 0 0\n")
	wantSamples(t, "tick 3 (reset)", collectOnce(t, c))
}

func TestLoadMemoryUptimeProcessesFixture(t *testing.T) {
	proc := filepath.Join("testdata", "proc")
	opts := Options{ProcPath: proc}
	wantSamples(t, "load", collectOnce(t, NewLoad(opts)), "load1{} 0.5", "load5{} 0.71", "load15{} 0.43")
	wantSamples(t, "memory", collectOnce(t, NewMemory(opts)),
		"memory_total_bytes{} 25276510208",
		"memory_used_bytes{} 653651968",
		"memory_available_bytes{} 24622858240",
		"memory_usage_percent{} 2.59",
		"swap_total_bytes{} 2147479552",
		"swap_used_bytes{} 536870912")
	wantSamples(t, "uptime", collectOnce(t, NewUptime(opts)), "uptime_seconds{} 640")
	wantSamples(t, "processes", collectOnce(t, NewProcesses(opts)),
		"processes_total{} 3", "processes_running{} 5", "processes_blocked{} 1")
}

func TestDiskFixture(t *testing.T) {
	root := copyFixture(t)
	clock := newFakeClock()
	c := NewDisk(Options{ProcPath: filepath.Join(root, "proc")})
	c.clock.now = clock.now
	wantSamples(t, "tick 1", collectOnce(t, c))

	clock.advance(2 * time.Second)
	writeFile(t, filepath.Join(root, "proc", "diskstats"), ""+
		"   7       0 loop0 9 0 900 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"+
		"   8       0 sda 75240 10126 2355338 25574 31482 73062 5201000 25941 0 16980 53120 10858 52 1095856 1225 5473 379\n"+
		"   8       1 sda1 75000 10000 2352048 25000 31000 73000 5194096 25000 0 16500 53000 10000 50 1095000 1200 5400 370\n"+
		" 259       0 nvme0n1 1000 0 80000 100 2000 0 161000 200 0 3300 300\n"+
		" 253       0 dm-0 500 0 10 50 600 0 48000 60 0 100 110 0 0 0 0\n"+
		"   8      16 sdb 1 0 8 0 0 0 0 0 0 0 0\n")
	wantSamples(t, "tick 2", collectOnce(t, c),
		// sda: +2048 sectors read, +4096 written, +500 ms busy in 2 s.
		`disk_read_bytes_per_second{device="sda"} 524288`,
		`disk_write_bytes_per_second{device="sda"} 1048576`,
		`disk_io_time_percent{device="sda"} 25`,
		// nvme0n1: +1000 sectors written; busy clamps at 100%.
		`disk_read_bytes_per_second{device="nvme0n1"} 0`,
		`disk_write_bytes_per_second{device="nvme0n1"} 256000`,
		`disk_io_time_percent{device="nvme0n1"} 100`,
		// dm-0: read counter went backwards: no byte rates this tick.
		`disk_io_time_percent{device="dm-0"} 0`,
		// sdb is new: nothing until its second reading.
	)
	if _, ok := c.devices.m["sr0"]; ok {
		t.Error("sr0 vanished but its state was kept")
	}
}

func TestNetworkFixture(t *testing.T) {
	root := copyFixture(t)
	clock := newFakeClock()
	c := NewNetwork(Options{ProcPath: filepath.Join(root, "proc")})
	c.clock.now = clock.now
	wantSamples(t, "tick 1", collectOnce(t, c))

	clock.advance(2 * time.Second)
	writeFile(t, filepath.Join(root, "proc", "net", "dev"), ""+
		"Inter-|   Receive                                                |  Transmit\n"+
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
		"    lo:   99999     700    0    0    0     0          0         0    99999     700    0    0    0     0       0          0\n"+
		"  eth0:307433819   16080    0    0    0     0          0         0  1236463   11010    0    0    0     0       0          0\n"+
		"docker0:  123456     789    0    0    0     0          0         0   654321     987    0    0    0     0       0          0\n"+
		"veth1a2b3c:   9000      10    0    0    0     0          0         0     9000      20    0    0    0     0       0          0\n"+
		" wlan1:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n")
	wantSamples(t, "tick 2", collectOnce(t, c),
		`network_receive_bytes_per_second{interface="eth0"} 1000`,
		`network_transmit_bytes_per_second{interface="eth0"} 1500`,
		`network_receive_bytes_per_second{interface="docker0"} 0`,
		`network_transmit_bytes_per_second{interface="docker0"} 0`,
	)
}

func TestFilesystemFixture(t *testing.T) {
	c := NewFilesystem(Options{ProcPath: filepath.Join("testdata", "proc"), RootFS: "/host"})
	c.Statfs = func(path string) (FSUsage, error) {
		switch path {
		case "/host":
			return FSUsage{Size: 1000, Free: 300, Avail: 250}, nil
		case "/host/boot/efi":
			return FSUsage{Size: 500, Free: 500, Avail: 500}, nil
		case "/host/home":
			return FSUsage{Size: 2000}, nil
		case "/host/media/my disk":
			return FSUsage{}, fmt.Errorf("statfs %s: %w", path, syscall.ENOENT) // unmounted meanwhile
		case "/host/mnt/nas":
			return FSUsage{}, fmt.Errorf("statfs %s: %w", path, syscall.EIO)
		}
		t.Errorf("unexpected statfs %q", path)
		return FSUsage{}, syscall.EINVAL
	}
	var b Batch
	err := c.Collect(context.Background(), &b)
	if err == nil || !strings.Contains(err.Error(), "/host/mnt/nas") || strings.Contains(err.Error(), "my disk") {
		t.Fatalf("err = %v, want only the EIO of /host/mnt/nas", err)
	}
	wantSamples(t, "filesystem", formatSamples(b.Samples),
		`filesystem_size_bytes{device="/dev/sda",fstype="ext4",mountpoint="/"} 1000`,
		`filesystem_used_bytes{device="/dev/sda",fstype="ext4",mountpoint="/"} 700`,
		`filesystem_usage_percent{device="/dev/sda",fstype="ext4",mountpoint="/"} 73.68`,
		`filesystem_size_bytes{device="/dev/nvme0n1p1",fstype="vfat",mountpoint="/boot/efi"} 500`,
		`filesystem_used_bytes{device="/dev/nvme0n1p1",fstype="vfat",mountpoint="/boot/efi"} 0`,
		`filesystem_usage_percent{device="/dev/nvme0n1p1",fstype="vfat",mountpoint="/boot/efi"} 0`,
		`filesystem_size_bytes{device="/dev/mapper/vg-home",fstype="xfs",mountpoint="/home"} 2000`,
		`filesystem_used_bytes{device="/dev/mapper/vg-home",fstype="xfs",mountpoint="/home"} 2000`,
		`filesystem_usage_percent{device="/dev/mapper/vg-home",fstype="xfs",mountpoint="/home"} 100`,
	)
}

func TestReadHostInfoFixture(t *testing.T) {
	h, err := ReadHostInfo(Options{ProcPath: filepath.Join("testdata", "proc"), RootFS: "testdata"})
	if err != nil {
		t.Fatal(err)
	}
	want := HostInfo{
		Hostname: "fixture-host", OS: "linux", Platform: "Debian GNU/Linux 12 (bookworm)",
		KernelVersion: "6.1.0-18-amd64", Arch: h.Arch, CPUModel: "AMD EPYC 7B13",
		CPUCores: 1, CPUThreads: 2, MemoryTotalBytes: 25276510208,
		BootTime: time.Unix(1795629822, 0).UTC(),
	}
	if h != want {
		t.Fatalf("ReadHostInfo\n got %+v\nwant %+v", h, want)
	}
}
