package agent

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestAfterEveryGC: the sentinel signals after each collection, re-arms
// itself, and stops once its context ends.
func TestAfterEveryGC(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	gcs := make(chan struct{}, 1)
	afterEveryGC(ctx, gcs)
	waitGC := func() bool {
		t.Helper()
		for range 20 { // the finalizer runs on its own goroutine after the collection
			runtime.GC()
			select {
			case <-gcs:
				return true
			case <-time.After(50 * time.Millisecond):
			}
		}
		return false
	}
	for i := range 3 {
		if !waitGC() {
			t.Fatalf("no signal after collection %d", i+1)
		}
	}
	cancel()
	waitGC() // a signal already on its way may still come
	if waitGC() {
		t.Fatal("signals after the context ended")
	}
}

// TestTrimLoopEnds: the loop returns when its context ends before its
// first trim.
func TestTrimLoopEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { TrimLoop(ctx, nil); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("TrimLoop did not return after its context ended")
	}
}
