package collect

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// fakeProc is one process of a generated /proc tree.
type fakeProc struct {
	pid     uint32
	comm    string
	state   byte
	utime   uint64 // clock ticks
	stime   uint64
	start   uint64
	rss     uint64 // pages
	uid     uint32
	cmdline string // NUL-separated
}

func writeFakeProc(t testing.TB, root string, ps []fakeProc) {
	t.Helper()
	for _, p := range ps {
		dir := filepath.Join(root, fmt.Sprint(p.pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := fmt.Sprintf("%d (%s) %c 1 %d %d 0 -1 4194560 1000 0 0 0 %d %d 0 0 20 0 1 0 %d 123456789 %d 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			p.pid, p.comm, p.state, p.pid, p.pid, p.utime, p.stime, p.start, p.rss)
		status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\t%c (x)\nTgid:\t%d\nPid:\t%d\nPPid:\t1\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n", p.comm, p.state, p.pid, p.pid, p.uid, p.uid, p.uid, p.uid)
		for name, data := range map[string]string{"stat": stat, "status": status, "cmdline": p.cmdline} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParseProcStat(t *testing.T) {
	f := func(in string, wantComm string, state byte, ticks, start, rss uint64) {
		t.Helper()
		st, ok := parseProcStat([]byte(in))
		if !ok {
			t.Fatalf("parseProcStat(%q) failed", in)
		}
		if string(st.comm) != wantComm || st.state != state || st.ticks != ticks || st.start != start || st.rssPages != rss {
			t.Fatalf("parseProcStat(%q) = comm %q state %c ticks %d start %d rss %d", in, st.comm, st.state, st.ticks, st.start, st.rssPages)
		}
	}
	f("1 (systemd) S 0 1 1 0 -1 4194560 52 0 0 0 120 80 0 0 20 0 1 0 5 172000000 3200 18446744073709551615", "systemd", 'S', 200, 5, 3200)
	f("42 (a) b) (c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 99 1 2 3", "a) b) (c", 'R', 10, 99, 2)
	f("7 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 18446744073709551615\n", "x", 'S', 3, 3, 1<<64-1)
	f("8 (kworker/u8:2-events_unbound) I 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0", "kworker/u8:2-events_unbound", 'I', 0, 9, 0)
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1 1 1 1 1 1 1 1 1 1",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 1 1 1 1 1 1 1 1 1 18446744073709551616", // rss overflows
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 1 1 1 1 1 1 1 1 1 1x",
		"1 (x)  S 1 2 3 4 5 6 7 8 9 10 11 1 1 1 1 1 1 1 1 1 1",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 1 1 1 1 1 1 1 1 1 "} {
		if _, ok := parseProcStat([]byte(bad)); ok {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func TestFormatCmdline(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := formatCmdline([]byte(in)); got != want {
			t.Fatalf("formatCmdline(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("/usr/bin/sleep\x0030\x00", "/usr/bin/sleep 30")
	f("a\x00b\nc\x00\x00", "a b c")
	f("bad\xffutf8", "bad\uFFFDutf8")
	long := strings.Repeat("é", 200) // 400 bytes
	got := formatCmdline([]byte(long))
	if len(got) > MaxCommandBytes || len(got) < MaxCommandBytes-1 || !strings.HasPrefix(long, got) {
		t.Fatalf("truncated to %d bytes: %q", len(got), got)
	}
}

func TestParsePasswdAndStatus(t *testing.T) {
	users := map[uint32]string{}
	parsePasswd([]byte("root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nwww:x:33:33::/var/www:/usr/sbin/nologin\nroot2:x:0:0::/:/bin/sh\n"), users)
	if len(users) != 2 || users[0] != "root" || users[33] != "www" {
		t.Fatalf("users = %v", users)
	}
	if uid, ok := parseStatusUID([]byte("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n")); !ok || uid != 1000 {
		t.Fatalf("uid %d %v", uid, ok)
	}
	if _, ok := parseStatusUID([]byte("Name:\tx\n")); ok {
		t.Fatal("uid without Uid line")
	}
}

func TestTopProcesses(t *testing.T) {
	root := t.TempDir()
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := []fakeProc{
		{pid: 1, comm: "init", state: 'S', utime: 100, start: 1, rss: 100, cmdline: "/sbin/init\x00"},
		{pid: 2, comm: "kthreadd", state: 'I', start: 2},
		{pid: 10, comm: "busy", state: 'R', utime: 1000, start: 50, rss: 10, uid: 1000, cmdline: "busy\x00--loop\x00"},
		{pid: 11, comm: "big", state: 'S', utime: 5, start: 60, rss: 1 << 20, uid: 4242, cmdline: "big\x00"},
		{pid: 12, comm: "<script>", state: 'D', start: 70, cmdline: "x\x00"},
		{pid: 13, comm: "dead", state: 'Z', start: 80},
		{pid: 14, comm: "stopped", state: 'T', start: 90, cmdline: "s\x00"},
	}
	writeFakeProc(t, proc, ps)
	clock := time.Unix(1000, 0)
	tp := NewTopProcesses(Options{ProcPath: proc, RootFS: root}, 2)
	tp.now = func() time.Time { return clock }
	tp.pageSize = 4096

	first, err := tp.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range first {
		if p.CPUPercent != 0 {
			t.Fatalf("first snapshot has CPU %v for %d", p.CPUPercent, p.PID)
		}
	}
	states := tp.AppendStates(nil)
	want := map[string]float64{"running": 1, "sleeping": 2, "disk_sleep": 1, "zombie": 1, "stopped": 1, "idle": 1, "other": 0}
	if len(states) != len(want) {
		t.Fatalf("states %v", states)
	}
	for _, s := range states {
		if s.Name != "processes_state" || want[s.Labels.Get("state")] != s.Value {
			t.Fatalf("state sample %+v, want %v", s, want)
		}
	}
	if again := tp.AppendStates(nil); len(again) != 0 {
		t.Fatalf("states repeated without a scan: %v", again)
	}

	// 2 s later: busy used 150 ticks (75 %), big 10 ticks (5 %); pid 1 was
	// replaced by a new process (other start time): no delta for it.
	ps[2].utime += 100
	ps[2].stime += 50
	ps[3].utime += 10
	ps[0].start = 500
	ps[0].utime = 400
	writeFakeProc(t, proc, ps)
	clock = clock.Add(2 * time.Second)
	got, err := tp.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Top 2 by CPU: busy, big; top 2 by RSS: big, init; union of 3.
	if len(got) != 3 {
		t.Fatalf("got %d processes: %+v", len(got), got)
	}
	byPID := map[uint32]Process{}
	for _, p := range got {
		byPID[p.PID] = p
	}
	busy, big, init := byPID[10], byPID[11], byPID[1]
	if busy.CPUPercent != 75 || busy.User != "alice" || busy.Command != "busy --loop" || busy.State != "R" || busy.Name != "busy" || busy.RSSBytes != 10*4096 {
		t.Fatalf("busy = %+v", busy)
	}
	if big.CPUPercent != 5 || big.User != "4242" || big.RSSBytes != 1<<20*4096 {
		t.Fatalf("big = %+v", big)
	}
	if init.CPUPercent != 0 || init.User != "root" || init.Command != "/sbin/init" {
		t.Fatalf("init (pid reused) = %+v", init)
	}
	if got[0].PID != 10 {
		t.Fatalf("first entry %d, want the top CPU process 10", got[0].PID)
	}
}

// TestTopProcessesChurn: processes come and go between scans; the records
// merged along the pid order keep one descriptor per live process (up to
// the bound), close those of gone ones, and carry CPU deltas only for
// survivors.
func TestTopProcessesChurn(t *testing.T) {
	for _, bound := range []int{1 << 20, 2, 0} {
		t.Run(fmt.Sprint("bound ", bound), func(t *testing.T) {
			proc := t.TempDir()
			mk := func(pids ...uint32) []fakeProc {
				ps := make([]fakeProc, len(pids))
				for i, pid := range pids {
					ps[i] = fakeProc{pid: pid, comm: fmt.Sprint("p", pid), state: 'S', start: uint64(pid), utime: 100, rss: 1}
				}
				return ps
			}
			writeFakeProc(t, proc, mk(5, 7, 9, 11))
			clock := time.Unix(1000, 0)
			tp := NewTopProcesses(Options{ProcPath: proc, RootFS: t.TempDir()}, 10)
			defer tp.Close()
			tp.maxFDs = bound
			tp.now = func() time.Time { return clock }
			if _, err := tp.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, pid := range []uint32{5, 9} {
				if err := os.RemoveAll(filepath.Join(proc, fmt.Sprint(pid))); err != nil {
					t.Fatal(err)
				}
			}
			next := mk(3, 7, 10, 11, 12)
			next[1].utime, next[3].utime = 150, 200 // 7: +50 ticks, 11: +100
			writeFakeProc(t, proc, next)
			clock = clock.Add(time.Second)
			got, err := tp.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			cpu := map[uint32]float64{}
			for _, p := range got {
				cpu[p.PID] = p.CPUPercent
			}
			want := map[uint32]float64{3: 0, 7: 50, 10: 0, 11: 100, 12: 0}
			if !maps.Equal(cpu, want) {
				t.Fatalf("CPU by pid %v, want %v", cpu, want)
			}
			var pids []uint32
			fds := 0
			for _, r := range tp.recs {
				pids = append(pids, r.pid)
				if r.fd >= 0 {
					fds++
				}
			}
			if !slices.Equal(pids, []uint32{3, 7, 10, 11, 12}) {
				t.Fatalf("records %v", pids)
			}
			if fds != tp.keptFDs || fds != min(bound, 5) {
				t.Fatalf("%d descriptors in the records, %d counted, bound %d", fds, tp.keptFDs, bound)
			}
			tp.Close()
			if tp.keptFDs != 0 {
				t.Fatalf("%d descriptors left after Close", tp.keptFDs)
			}
		})
	}
}

func TestTopProcessesKernelThreadAndDisabled(t *testing.T) {
	proc := t.TempDir()
	writeFakeProc(t, proc, []fakeProc{{pid: 2, comm: "kthreadd", state: 'S', start: 2, utime: 1}})
	tp := NewTopProcesses(Options{ProcPath: proc, RootFS: t.TempDir()}, 10)
	got, err := tp.Snapshot(context.Background())
	if err != nil || len(got) != 1 || got[0].Command != "[kthreadd]" || got[0].User != "0" {
		t.Fatalf("got %+v, %v", got, err)
	}
	off := NewTopProcesses(Options{ProcPath: proc}, 0)
	if got, err := off.Snapshot(context.Background()); err != nil || got != nil {
		t.Fatalf("n=0: %+v, %v", got, err)
	}
	if len(off.AppendStates(nil)) != 7 {
		t.Fatal("n=0 still counts states")
	}
}

func TestTopProcessesRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	tp := NewTopProcesses(Options{}, 100)
	got, err := tp.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	self := uint32(os.Getpid())
	for _, p := range got {
		if p.PID == self {
			if p.RSSBytes == 0 || p.Name == "" || p.State == "" {
				t.Fatalf("own process %+v", p)
			}
			return
		}
	}
	if len(got) < 100 {
		t.Fatalf("own process %d missing from %d processes", self, len(got))
	}
}

// BenchmarkTopProcesses scans a generated /proc of 2,000 processes, and the
// host's own /proc ("real-proc", whatever runs there: start extra processes
// to load it, e.g. 2,000 sleeps, as docs/benchmarks.md does).
func BenchmarkTopProcesses(b *testing.B) {
	proc := b.TempDir()
	ps := make([]fakeProc, 2000)
	for i := range ps {
		ps[i] = fakeProc{pid: uint32(100 + i), comm: fmt.Sprintf("worker-%d", i), state: "RSSSSDI"[i%7],
			utime: uint64(i * 7), stime: uint64(i), start: uint64(i), rss: uint64(i * 13 % 5000), uid: 1000,
			cmdline: fmt.Sprintf("/usr/bin/worker\x00--id\x00%d\x00", i)}
	}
	writeFakeProc(b, proc, ps)
	// kept: stat descriptors stay open between scans (the default);
	// by-path: openat + read + close per process (descriptor bound 0).
	for _, mode := range []string{"kept", "by-path", "real-proc"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{ProcPath: proc, RootFS: b.TempDir()}
			if mode == "real-proc" {
				if _, err := os.Stat("/proc/self/stat"); err != nil {
					b.Skip("no procfs")
				}
				opts = Options{}
			}
			tp := NewTopProcesses(opts, DefaultTopProcesses)
			defer tp.Close()
			if mode == "by-path" {
				tp.maxFDs = 0
			}
			ctx := context.Background()
			if _, err := tp.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
			var sink []metric.Sample
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got, err := tp.Snapshot(ctx)
				if err != nil || len(got) < min(DefaultTopProcesses, len(tp.recs)) {
					b.Fatalf("%d processes, %v", len(got), err)
				}
				sink = tp.AppendStates(sink[:0])
			}
			b.ReportMetric(float64(len(tp.recs)), "procs")
			if mode == "kept" && tp.keptFDs != len(ps) {
				b.Fatalf("%d descriptors kept, want %d", tp.keptFDs, len(ps))
			}
		})
	}
}

// BenchmarkParseProcStat parses a /proc/PID/stat line of a real process.
func BenchmarkParseProcStat(b *testing.B) {
	line := []byte("1234 (postgres: walwriter) S 1201 1201 1201 0 -1 4194624 1875 0 0 0 152 341 0 0 20 0 1 0 2841 224714752 2230 18446744073709551615 1 1 0 0 0 0 0 16781312 16902 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	for b.Loop() {
		if _, ok := parseProcStat(line); !ok {
			b.Fatal("parse failed")
		}
	}
}

// rec returns the record of pid from the latest scan.
func (t *TopProcesses) rec(pid uint32) (procRec, bool) {
	i, ok := slices.BinarySearchFunc(t.recs, pid, func(r procRec, pid uint32) int { return cmp.Compare(r.pid, pid) })
	if !ok {
		return procRec{}, false
	}
	return t.recs[i], true
}
