package collect

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPIDCounterFixture: one listing establishes that the directory's link
// count is its process directories plus the others; then a tick is one stat
// (so a new non-process directory counts as a process until the recheck
// lists again), and the recheck corrects it.
func TestPIDCounterFixture(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"1", "42", "4194304", "sys", "fs"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "stat"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := pidCounter{path: root}
	now := time.Unix(1000, 0)
	count := func(want int) {
		t.Helper()
		n, err := c.count(now)
		if err != nil || n != want {
			t.Fatalf("count = %d, %v; want %d", n, err, want)
		}
	}
	count(3)
	if !c.ok || c.others != 4 { // sys, fs, ".", ".."
		t.Fatalf("after a listing: ok %v, others %d", c.ok, c.others)
	}
	if err := os.Mkdir(filepath.Join(root, "77"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "1")); err != nil {
		t.Fatal(err)
	}
	count(3) // by link count
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	count(4) // the link count cannot tell a new fixed directory from a process
	now = now.Add(pidRecheck)
	count(3) // the recheck lists again
	if !c.ok || c.others != 5 {
		t.Fatalf("after the recheck: ok %v, others %d", c.ok, c.others)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := c.count(now); err == nil {
		t.Fatal("no error for a removed proc root")
	}
}

// TestPIDCounterRealProc: on the real /proc the stat path agrees with a
// listing, and it is taken in the initial PID namespace.
func TestPIDCounterRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	c := pidCounter{path: "/proc"}
	now := time.Now()
	for i := range 3 {
		n, err := c.count(now)
		if err != nil {
			t.Fatal(err)
		}
		listed := 0
		es, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.IsDir() && isPID([]byte(e.Name())) {
				listed++
			}
		}
		if d := n - listed; d < -10 || d > 10 {
			t.Fatalf("round %d: counted %d, listed %d", i, n, listed)
		}
	}
	if ns, _ := os.Readlink("/proc/self/ns/pid"); ns == "pid:[4026531836]" && !c.ok {
		t.Fatal("initial PID namespace, yet the link count was not taken")
	}
}

// BenchmarkPIDCounter: a tick of processes_total on this host's /proc, by
// link count (the default once checked) and by listing.
func BenchmarkPIDCounter(b *testing.B) {
	for _, mode := range []string{"nlink", "listing"} {
		b.Run(mode, func(b *testing.B) {
			c := pidCounter{path: "/proc"}
			now := time.Now()
			if _, err := c.count(now); err != nil {
				b.Skip(err)
			}
			var n int
			for b.Loop() {
				if mode == "listing" {
					c.ok = false
				}
				n, _ = c.count(now)
			}
			b.ReportMetric(float64(n), "procs")
		})
	}
}
