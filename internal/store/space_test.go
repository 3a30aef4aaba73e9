package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// fakeDisk is an injected statfs: a filesystem whose free space the test
// sets.
type fakeDisk struct {
	mu    sync.Mutex
	avail uint64
	err   error
	calls int
}

func (d *fakeDisk) statfs(string) (Space, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return Space{Avail: d.avail, Total: 1 << 40}, d.err
}

func (d *fakeDisk) set(avail uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.avail, d.err = avail, err
}

const mib = 1 << 20

func TestSpaceGuardStopsBelowReserveAndResumesWithHysteresis(t *testing.T) {
	disk := &fakeDisk{avail: 1 << 30}
	reg := prometheus.NewRegistry()
	s, _ := openTest(t, "", base, func(o *Options) {
		o.MinFree = 64 * mib
		o.Statfs = disk.statfs
		o.Registerer = reg
	})
	if err := s.Writable(); err != nil {
		t.Fatalf("1 GiB free: %v", err)
	}
	f := func(avail uint64, wantFull bool) {
		t.Helper()
		disk.set(avail, nil)
		s.space.check()
		err := s.Writable()
		if (err != nil) != wantFull {
			t.Fatalf("%s free: Writable() = %v, want full %v", formatBytes(avail), err, wantFull)
		}
		if got := promtest.ToFloat64(s.space.m.full); got != map[bool]float64{false: 0, true: 1}[wantFull] {
			t.Fatalf("%s free: sysmonstm_storage_disk_full = %v", formatBytes(avail), got)
		}
		if err == nil {
			return
		}
		var dfe *DiskFullError
		if !errors.As(err, &dfe) || !errors.Is(err, ErrDiskFull) || !IsDiskFull(err) {
			t.Fatalf("error %T %v is not a disk-full error", err, err)
		}
		if dfe.Avail != avail || dfe.Reserve != 64*mib {
			t.Fatalf("error reports %d free, %d reserve; want %d, %d", dfe.Avail, dfe.Reserve, avail, 64*mib)
		}
		if !strings.HasPrefix(err.Error(), "disk full: ") || !strings.Contains(err.Error(), "64.0 MiB reserve") {
			t.Fatalf("message %q does not name the full disk and the reserve", err)
		}
	}
	f(64*mib, false) // at the reserve: still writable
	f(64*mib-1, true)
	f(70*mib, true) // above the reserve, below reserve+25 %: still full
	f(80*mib-1, true)
	f(80*mib, false)
	f(70*mib, false) // back between the thresholds from above: writable
	f(10*mib, true)
	if got := promtest.ToFloat64(s.space.m.events); got != 2 {
		t.Fatalf("sysmonstm_storage_disk_full_events_total = %v, want 2", got)
	}
	if got := promtest.ToFloat64(s.space.m.avail); got != 10*mib {
		t.Fatalf("sysmonstm_storage_free_bytes = %v", got)
	}
}

func TestSpaceGuardKeepsStateWhenStatfsFails(t *testing.T) {
	disk := &fakeDisk{avail: 1 << 30}
	s, _ := openTest(t, "", base, func(o *Options) { o.MinFree = 64 * mib; o.Statfs = disk.statfs })
	disk.set(0, errors.New("statfs: input/output error"))
	s.space.check()
	if err := s.Writable(); err != nil {
		t.Fatalf("writable before, statfs failing: %v", err)
	}
	disk.set(1*mib, nil)
	s.space.check()
	disk.set(0, errors.New("statfs: input/output error"))
	s.space.check()
	if s.Writable() == nil {
		t.Fatal("full before, statfs failing: writable")
	}
}

func TestSpaceGuardUnsupportedIsOff(t *testing.T) {
	disk := &fakeDisk{err: fmt.Errorf("statfs: %w", errors.ErrUnsupported)}
	s, _ := openTest(t, "", base, func(o *Options) { o.Statfs = disk.statfs })
	s.space.check()
	if err := s.Writable(); err != nil {
		t.Fatalf("statfs unsupported: %v", err)
	}
}

// The reserve grows with the raw head's series: their cut but unwritten
// head chunks need room too.
func TestSpaceReserveGrowsWithSeries(t *testing.T) {
	disk := &fakeDisk{avail: 1 << 30}
	s, _ := openTest(t, "", base, func(o *Options) { o.MinFree = EngineReserve; o.Statfs = disk.statfs })
	if got := s.space.reserve(); got != EngineReserve {
		t.Fatalf("empty head: reserve %d, want %d", got, EngineReserve)
	}
	app := s.Appender(context.Background())
	for i := range 1000 {
		if _, err := app.Append(0, series("m", "a", "i", fmt.Sprint(i)), base.UnixMilli(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.space.reserve(), uint64(EngineReserve+1000*reservePerSeries); got != want {
		t.Fatalf("1000 series: reserve %d, want %d", got, want)
	}
}

func TestOpenRefusesBelowReserve(t *testing.T) {
	dir := t.TempDir() + "/tsdb"
	disk := &fakeDisk{avail: 3 * mib}
	_, err := Open(Options{Dir: dir, MinFree: 64 * mib, Statfs: disk.statfs})
	if err == nil {
		t.Fatal("opened with 3 MiB free and a 64 MiB reserve")
	}
	if !IsDiskFull(err) || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q: want disk full naming %s", err, dir)
	}
	// Nothing was opened: no tier directory, no WAL.
	if _, err := os.Stat(dir + "/" + TierRaw); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("raw tier created on a full disk: %v", err)
	}
	disk.set(65*mib, nil)
	s, err := Open(Options{Dir: dir, MinFree: 64 * mib, Statfs: disk.statfs})
	if err != nil {
		t.Fatalf("space freed: %v", err)
	}
	_ = s.Close()
}

// noSpaceAppender is a raw-tier appender whose Commit meets ENOSPC the way
// the TSDB reports it.
type noSpaceAppender struct{ storage.Appender }

func (a noSpaceAppender) Commit() error {
	_ = a.Appender.Rollback()
	return fmt.Errorf("write to WAL: log samples: %w",
		&fs.PathError{Op: "write", Path: "raw/wal/00000000", Err: syscall.ENOSPC})
}

// A write that finds no space left marks the disk full at once, before the
// next statfs, and names it; space seen by statfs lifts it again.
func TestCommitWithoutSpaceMarksDiskFull(t *testing.T) {
	disk := &fakeDisk{avail: 1 << 30}
	s, _ := openTest(t, "", base, func(o *Options) { o.MinFree = 64 * mib; o.Statfs = disk.statfs })
	disk.set(2*mib, nil) // what statfs says at the failing write
	app := spaceAppender{Appender: noSpaceAppender{s.raw.Appender(context.Background())}, g: s.space}
	err := app.Commit()
	if !IsDiskFull(err) || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "disk full: a storage write found no space left (2.0 MiB free") {
		t.Fatalf("commit error %q: want a disk-full error wrapping ENOSPC", err)
	}
	if s.Writable() == nil {
		t.Fatal("writable after a write found no space")
	}
	select {
	case <-s.space.changed:
	default:
		t.Fatal("watcher not woken to stop compactions")
	}
	disk.set(1<<30, nil)
	s.space.check()
	if err := s.Writable(); err != nil {
		t.Fatalf("space freed: %v", err)
	}
	// Other errors pass unchanged and do not mark anything.
	other := errors.New("out of bounds")
	if got := s.space.noteWriteError(other); got != other || s.Writable() != nil {
		t.Fatalf("noteWriteError(other) = %v, writable %v", got, s.Writable())
	}
}

// While the disk is full Run rolls nothing up; once space is freed it
// does again.
func TestRunPausesRollupsWhileFull(t *testing.T) {
	disk := &fakeDisk{avail: 1 << 30}
	s, _ := openTest(t, "", base, func(o *Options) {
		o.MinFree = 64 * mib
		o.Statfs = disk.statfs
		o.RollupInterval = 10 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	runs := func() float64 { return promtest.ToFloat64(s.m.runs) }
	testutil.Until(t, 5*time.Second, "a rollup pass", func() bool { return runs() > 0 })

	disk.set(10*mib, nil)
	testutil.Until(t, 5*time.Second, "the watcher to see the full disk", func() bool { return s.Writable() != nil })
	before := runs()
	time.Sleep(20 * s.opts.RollupInterval)
	if got := runs(); got > before+1 { // one pass may have begun before the state flipped
		t.Fatalf("%v rollup passes while the disk was full", got-before)
	}
	disk.set(1<<30, nil)
	testutil.Until(t, 5*time.Second, "the watcher to see the space freed", func() bool { return s.Writable() == nil })
	after := runs()
	testutil.Until(t, 5*time.Second, "rollups to resume", func() bool { return runs() > after })
}

// A real TSDB commit on a really full filesystem (a tmpfs, filled while the
// injected statfs still reports room) comes back as a disk-full error and
// stops writes at once; so does a rollup pass that finds no room. Needs root for the mount: skipped without, except under CI=true.
func TestRealENOSPCMarksDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=32m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v (CI runs as root and must run this test)", err)
		}
		t.Skipf("mount tmpfs: %v (needs root)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	disk := &fakeDisk{avail: 1 << 30}
	s, clk := openTest(t, dir+"/tsdb", base, func(o *Options) { o.MinFree = EngineReserve; o.Statfs = disk.statfs })
	app := s.Appender(context.Background())
	if _, err := app.Append(0, series("load1", "a"), base.UnixMilli(), 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dir + "/filler")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*int64(st.Bsize)); err != nil {
		t.Fatal(err)
	}
	app = s.Appender(context.Background())
	for i := range 2000 { // more than a WAL page
		if _, err := app.Append(0, series("load1", "a", "i", fmt.Sprint(i)), base.UnixMilli()+1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	err = app.Commit()
	if !IsDiskFull(err) || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "disk full: ") {
		t.Fatalf("commit on a full tmpfs: %v; want a disk-full error", err)
	}
	if s.Writable() == nil {
		t.Fatal("writable after a commit found the disk full")
	}

	// The rollup pass: its watermark file cannot be written either.
	disk.set(1<<30, nil)
	s.space.check()
	clk.Set(base.Add(time.Hour + DefaultOutOfOrderWindow + 2*time.Minute)) // the hour is final
	s.NoteWritten("a", base.Add(9*time.Minute).UnixMilli())
	err = s.Rollup(context.Background())
	if !IsDiskFull(err) || !strings.Contains(err.Error(), "disk full: ") || s.Writable() == nil {
		t.Fatalf("rollup on a full tmpfs: %v, writable %v; want a disk-full error that stops writes", err, s.Writable())
	}
	f.Close()
	if err := os.Remove(dir + "/filler"); err != nil {
		t.Fatal(err)
	}
	s.space.check()
	if err := s.Rollup(context.Background()); err != nil {
		t.Fatalf("rollup after space was freed: %v", err)
	}
}
