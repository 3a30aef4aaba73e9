package store

import (
	"context"
	"math"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// A rollup tier lags behind the raw tier by RollupLag, and further for a
// machine whose data is still arriving. Query reads each machine's data
// below its watermark from the rollup tier and the rest from the finer
// tiers, using a snapshot of the watermarks taken before any tier is read:
// rollups committed meanwhile lie past the snapshot and are ignored, so
// nothing is counted twice or missed.

// watermarkSnapshot is a copy of every machine's rollup watermarks.
type watermarkSnapshot map[string]watermark

// Selectors of a watermark field.
func done1m(w watermark) int64 { return w.done1m }
func done1h(w watermark) int64 { return w.done1h }

func (s *Store) watermarks() watermarkSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(watermarkSnapshot, len(s.machines))
	for m, w := range s.machines {
		out[m] = *w
	}
	return out
}

// window returns, per machine, the time range [lo, hi) a tier contributes:
// from the lo field (nil = the beginning) to the hi field (nil = the end).
// A machine without watermarks (forgotten after a long silence) is wholly
// in the coarsest tier.
func (wm watermarkSnapshot) window(lo, hi func(watermark) int64) func(machine string) (int64, int64) {
	return func(machine string) (int64, int64) {
		w, ok := wm[machine]
		if !ok {
			if lo == nil {
				return math.MinInt64, math.MaxInt64
			}
			return 0, 0
		}
		l, h := int64(math.MinInt64), int64(math.MaxInt64)
		if lo != nil {
			l = lo(w)
		}
		if hi != nil {
			h = hi(w)
		}
		return l, h
	}
}

// tierReader adds one tier's buckets for the series matching p, each
// machine's limited to its window, reading from `from` on.
type tierReader func(ctx context.Context, db tierSource, p plan, from int64, win func(string) (int64, int64), c *collector) error

// readTail reads what a coarser tier does not hold yet from db: per machine
// from its lo watermark to its hi watermark (nil = the end). One read covers
// every machine from the oldest watermark; a machine not rolled up at all
// yet (watermark 0) is read on its own so it does not drag the others'
// start back to the beginning.
func readTail(ctx context.Context, read tierReader, db tierSource, p plan, wm watermarkSnapshot, lo, hi func(watermark) int64, c *collector) error {
	from := int64(math.MaxInt64)
	var fresh []string
	for m, w := range wm {
		switch {
		case p.machine != "" && m != p.machine:
		case lo(w) == 0:
			fresh = append(fresh, m)
		default:
			from = min(from, lo(w))
		}
	}
	win := wm.window(lo, hi)
	if from != math.MaxInt64 {
		bulk := func(m string) (int64, int64) {
			if w, ok := wm[m]; ok && lo(w) == 0 {
				return 0, 0 // read below
			}
			return win(m)
		}
		if err := read(ctx, db, p, max(from, p.mint), bulk, c); err != nil {
			return err
		}
	}
	for _, m := range fresh {
		pm := p
		pm.matchers = append(append([]*labels.Matcher{}, p.matchers...), labels.MustNewMatcher(labels.MatchEqual, metric.MachineLabel, m))
		if err := read(ctx, db, pm, p.mint, win, c); err != nil {
			return err
		}
	}
	return nil
}
