package collect

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// funcCollector is a Collector built from a function.
type funcCollector struct {
	name string
	fn   func(ctx context.Context, b *Batch) error
}

func (c funcCollector) Name() string                                { return c.name }
func (c funcCollector) Collect(ctx context.Context, b *Batch) error { return c.fn(ctx, b) }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSetHardTimeout runs in a synctest bubble: the set's timers run on
// fake time, so a tick's length is exact whatever the machine's load.
func TestSetHardTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		var starts atomic.Int32
		release := make(chan struct{})
		stuck := funcCollector{name: "stuck", fn: func(_ context.Context, b *Batch) error {
			if starts.Add(1) == 1 {
				<-release // ignores ctx, like a statfs on a dead NFS server
			}
			b.Add("stuck_value", 1)
			return nil
		}}
		fast := funcCollector{name: "fast", fn: func(_ context.Context, b *Batch) error {
			b.Add("fast_value", 2)
			return nil
		}}
		logs := &syncBuffer{}
		s := NewSet(Options{Timeout: timeout, Logger: slog.New(slog.NewTextHandler(logs, nil))}, stuck, fast)

		for tick := range 4 {
			begin := time.Now()
			got := s.Collect(context.Background())
			// The first tick waits for the stuck run until the timeout and
			// its slack; later ones do not start it, so wait for nothing.
			want := time.Duration(0)
			if tick == 0 {
				want = timeout + collectSlack(timeout)
			}
			if d := time.Since(begin); d != want {
				t.Fatalf("tick %d took %v, want %v", tick, d, want)
			}
			wantSamples(t, "tick", formatSamples(got), "fast_value{} 2")
			if n := starts.Load(); n != 1 {
				t.Fatalf("tick %d: stuck collector started %d times, want 1", tick, n)
			}
			st := s.Stats()
			if !st[0].Skipped || st[1].Skipped {
				t.Fatalf("tick %d: stats %+v", tick, st)
			}
		}
		if n := strings.Count(logs.String(), "collector=stuck"); n != 1 {
			t.Fatalf("logged %d warnings for the stuck collector, want 1 per minute:\n%s", n, logs)
		}

		// Once the stuck run returns, the collector runs again.
		close(release)
		synctest.Wait()
		wantSamples(t, "after release", formatSamples(s.Collect(context.Background())), "fast_value{} 2", "stuck_value{} 1")
		if n := starts.Load(); n != 2 {
			t.Fatalf("stuck collector started %d times, want 2", n)
		}
	})
}

// TestSetCollectorHonouringContext runs in a synctest bubble: a collector
// that returns when its context ends does so exactly at the timeout, before
// the set's slack runs out, so its partial samples always make the tick.
func TestSetCollectorHonouringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		ended := make(chan error, 1)
		slow := funcCollector{name: "slow", fn: func(ctx context.Context, b *Batch) error {
			b.Add("partial", 1)
			<-ctx.Done()
			ended <- ctx.Err()
			return ctx.Err()
		}}
		s := NewSet(Options{Timeout: timeout}, slow)
		begin := time.Now()
		got := formatSamples(s.Collect(context.Background()))
		if d := time.Since(begin); d != timeout {
			t.Fatalf("Collect took %v, want %v", d, timeout)
		}
		if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("collector context ended with %v, want the deadline", err)
		}
		wantSamples(t, "slow", got, "partial{} 1")
	})
}

func TestSetPanicAndError(t *testing.T) {
	s := NewSet(Options{},
		funcCollector{name: "panics", fn: func(context.Context, *Batch) error { panic("boom") }},
		funcCollector{name: "fails", fn: func(_ context.Context, b *Batch) error {
			b.Add("before_failure", 1, "k", "v")
			return errors.New("read failed")
		}},
	)
	wantSamples(t, "tick", formatSamples(s.Collect(context.Background())), `before_failure{k="v"} 1`)
	st := s.Stats()
	if st[0].Err == nil || !strings.Contains(st[0].Err.Error(), "boom") || st[1].Err == nil {
		t.Fatalf("stats = %+v", st)
	}
	if got := s.Names(); len(got) != 2 || got[0] != "panics" || got[1] != "fails" {
		t.Fatalf("Names = %v", got)
	}
}

func TestSetParentCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		s := NewSet(Options{Timeout: time.Hour}, funcCollector{name: "block", fn: func(context.Context, *Batch) error {
			<-block
			return nil
		}})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		begin := time.Now()
		s.Collect(ctx)
		if d := time.Since(begin); d != 20*time.Millisecond {
			t.Fatalf("Collect returned %v after it began, want at the cancel (20ms)", d)
		}
	})
}

func TestFilesystemStuckStatfs(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	release := make(chan struct{})
	c := NewFilesystem(Options{ProcPath: "testdata/proc"})
	c.Statfs = func(path string) (FSUsage, error) {
		mu.Lock()
		calls[path]++
		mu.Unlock()
		if path == "/mnt/nas" {
			<-release
		}
		return FSUsage{Size: 10, Free: 5, Avail: 5}, nil
	}
	s := NewSet(Options{Timeout: 200 * time.Millisecond}, c)
	for range 3 {
		got := s.Collect(context.Background())
		var mounts []string
		for _, smp := range got {
			if smp.Name == "filesystem_size_bytes" {
				mounts = append(mounts, smp.Labels.Get("mountpoint"))
			}
		}
		// Every filesystem but the dead NFS one, every tick.
		if strings.Join(mounts, ",") != "/,/boot/efi,/home,/media/my disk" {
			t.Fatalf("mounts = %q", mounts)
		}
	}
	mu.Lock()
	if calls["/mnt/nas"] != 1 || calls["/"] != 3 {
		t.Fatalf("statfs calls = %v; want the blocked mount called once", calls)
	}
	mu.Unlock()
	close(release)
}
