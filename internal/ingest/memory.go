package ingest

import (
	"context"
	"fmt"
	"log/slog"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"time"
)

// MemoryHighWater is the share of Options.MaxMemory above which new series
// are refused. The hub sets Go's soft memory limit to MemorySoftLimit of
// it, above the high-water mark, so the collector works hard only once
// new series are already refused.
const (
	MemoryHighWater = 0.80
	MemorySoftLimit = 0.90
)

// memorySampleEvery is how often the memory in use is read.
const memorySampleEvery = 100 * time.Millisecond

// limitMemory names the memory guard (label of sysmonstm_refused_series_total).
const limitMemory = "memory"

// memGuard refuses new series while the hub's memory is above its
// high-water mark. The memory counted is what a garbage collection cannot
// give back: the live heap of the last collection plus the Go runtime's
// memory outside the heap (stacks, runtime metadata), plus the reserve the
// store reports for series admitted but not yet fully allocated (their
// rollups). Garbage awaiting collection and file pages the storage maps
// (page cache the kernel can reclaim) are not counted.
type memGuard struct {
	max, high uint64
	reserve   func() uint64 // nil: none
	log       *slog.Logger
	used      atomic.Uint64
	over      atomic.Bool
	samples   []rtmetrics.Sample
}

var memMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

func newMemGuard(max int64, reserve func() uint64, log *slog.Logger) *memGuard {
	if max <= 0 {
		return nil
	}
	g := &memGuard{max: uint64(max), high: uint64(float64(max) * MemoryHighWater), reserve: reserve, log: log}
	for _, n := range memMetrics {
		g.samples = append(g.samples, rtmetrics.Sample{Name: n})
	}
	g.sample()
	return g
}

// sample reads the memory in use and updates the guard's state; only the
// guard's own goroutine (and newMemGuard) calls it.
func (g *memGuard) sample() {
	rtmetrics.Read(g.samples)
	v := func(i int) uint64 {
		if g.samples[i].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return g.samples[i].Value.Uint64()
	}
	live, total := v(0), v(1)
	heap := v(2) + v(3) + v(4) + v(5)
	used := live
	if total > heap {
		used += total - heap
	}
	if g.reserve != nil {
		used += g.reserve()
	}
	g.used.Store(used)
	over := used >= g.high
	if g.over.Swap(over) != over {
		if over {
			g.log.Warn("hub memory above its high-water mark: new series are refused, existing series keep flowing",
				"used_mib", mib(used), "high_water_mib", mib(g.high), "max_memory_mib", mib(g.max))
		} else {
			g.log.Info("hub memory back below its high-water mark: new series are taken again",
				"used_mib", mib(used), "high_water_mib", mib(g.high))
		}
	}
}

func (g *memGuard) run(ctx context.Context) {
	t := time.NewTicker(memorySampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.sample()
		}
	}
}

// check returns the refusal of a new series while memory is above the
// high-water mark, else nil; nil guard: never.
func (g *memGuard) check() error {
	if g == nil || !g.over.Load() {
		return nil
	}
	return &limitError{limit: limitMemory, used: g.used.Load(), high: g.high, max: int(min(g.max, 1<<62))}
}

func mib(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
