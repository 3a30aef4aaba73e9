package agent

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// The agent command's process settings (docs/benchmarks.md, "Agent
// footprint"). They are for a process that is only an agent: `up`, whose
// hub shares the process, does not apply them.
const (
	// LeanGCPercent is the agent process's GOGC. Its live heap is well
	// under 1 MB and it allocates ~15 KB a second: at Go's default (100,
	// a 4 MB minimum heap goal) the heap grows to 4 MB between
	// collections; at 25 the goal is 1 MB, for a collection about once a
	// minute of ~2 ms CPU.
	LeanGCPercent = 25
	// LeanMaxProcs is the agent process's GOMAXPROCS: a tick is well under
	// a millisecond of work, and one P wakes fewer threads per tick than
	// one per core (and keeps one P's caches and GC buffers, not several).
	// A collector blocked in a system call still does not hold up the
	// others: the runtime hands the P to another thread.
	LeanMaxProcs = 1
	// TrimDelay is how long after start TrimLoop first drops the
	// executable's pages: start-up (flags, host information, the first
	// ticks, the first process snapshot, the connection) is over by then.
	TrimDelay = 6 * time.Second
	// TrimGap is the least time between two trims after the first: at
	// LeanGCPercent a collection comes every ~50 s, so each is followed by
	// a trim: 0.4–0.7 ms for reading the maps and the madvise calls (this
	// VM, loaded), plus the minor faults that bring back what a tick uses.
	TrimGap = 30 * time.Second
)

// LeanRuntime sets the garbage collector and the number of Ps for an
// agent-only process, each unless its environment variable (GOGC,
// GOMAXPROCS) chose otherwise.
func LeanRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(LeanGCPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(LeanMaxProcs)
	}
}

// TrimLoop drops the executable's pages (TrimExecutablePages) TrimDelay
// after it starts, and again after every garbage collection that ends at
// least TrimGap after the previous trim, until ctx ends. A collection reads
// the stack maps and type data of the functions and types it meets, all
// over the binary's read-only data, and the kernel maps 16 pages around
// each page it faults in: without the trim after it, the first collection
// adds ~1.6 MB to the RSS for good. The runtime collects at least every
// two minutes, so trims keep coming on an idle agent. A failure is logged
// once and ends the loop.
func TrimLoop(ctx context.Context, log *slog.Logger) {
	gcs := make(chan struct{}, 1)
	afterEveryGC(ctx, gcs)
	t := time.NewTimer(TrimDelay)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-t.C:
	}
	for {
		if _, err := TrimExecutablePages(); err != nil {
			log.Warn("cannot drop the executable's start-up pages; RSS stays higher", "err", err)
			return
		}
		last := time.Now()
		for time.Since(last) < TrimGap { // wait for a collection TrimGap after this trim
			select {
			case <-ctx.Done():
				return
			case <-gcs:
			}
		}
	}
}

// afterEveryGC signals gcs (without blocking) after every garbage
// collection until ctx ends: a sentinel object's finalizer runs after the
// collection that finds it unreachable, and arms the next sentinel.
func afterEveryGC(ctx context.Context, gcs chan<- struct{}) {
	s := &gcSentinel{}
	runtime.SetFinalizer(s, func(*gcSentinel) {
		if ctx.Err() != nil {
			return
		}
		select {
		case gcs <- struct{}{}:
		default:
		}
		afterEveryGC(ctx, gcs)
	})
}

// gcSentinel is big enough not to share a tiny-allocator block, whose
// objects may be finalized late or never.
type gcSentinel struct{ _ [16]byte }
