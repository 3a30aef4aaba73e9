package alert

import "math"

// windowBuckets bounds the memory of one aggregation window: a window is
// tracked in at most this many buckets, each at least 1 s wide, so windows
// up to 60 s are exact for per-second samples and longer ones are accurate
// to window/60 at their old edge.
const windowBuckets = 60

// window aggregates one series' samples over a sliding time window (sample
// timestamps, ms since epoch) as avg, max or min, in O(1) amortized per
// sample: the buckets form a ring that always covers exactly the window
// ending at the newest sample, and the aggregate is kept up to date instead
// of recomputed. Its slot's machine lock protects it.
type window struct {
	agg    aggKind
	width  int64     // ms per bucket
	newest int64     // bucket index (ts/width) of the newest sample; math.MinInt64 before the first
	vals   []float64 // per bucket: the sum (avg), or the max/min (NaN when empty)
	cnt    []uint32  // avg: samples per bucket

	sum    float64 // avg: sum over the buckets
	count  uint32  // avg: samples in the buckets
	clears int     // avg: buckets cleared since sum was last recomputed exactly

	ext   float64 // max/min: the extreme over the buckets, when extOK
	extOK bool
}

func newWindow(agg aggKind, windowMs int64) *window {
	n := windowMs / 1000
	n = max(1, min(n, windowBuckets))
	width := max(1, (windowMs+n-1)/n)
	w := &window{agg: agg, width: width, newest: math.MinInt64, vals: make([]float64, n)}
	if agg == aggAvg {
		w.cnt = make([]uint32, n)
	} else {
		for i := range w.vals {
			w.vals[i] = math.NaN()
		}
		w.ext = math.NaN()
		w.extOK = true
	}
	return w
}

func (w *window) slot(idx int64) int {
	n := int64(len(w.vals))
	return int(((idx % n) + n) % n)
}

// add records v at ts (ms) and returns the aggregate over the window ending
// at the newest sample. Samples older than the window are ignored.
func (w *window) add(ts int64, v float64) float64 {
	idx := ts / w.width
	if ts < 0 && ts%w.width != 0 {
		idx--
	}
	n := int64(len(w.vals))
	switch {
	case w.newest == math.MinInt64:
		w.newest = idx
	case idx <= w.newest-n:
		return w.value() // older than the window
	case idx > w.newest:
		steps := min(idx-w.newest, n)
		for k := idx - steps + 1; k <= idx; k++ {
			w.clearSlot(w.slot(k))
		}
		w.newest = idx
	}
	s := w.slot(idx)
	switch w.agg {
	case aggAvg:
		w.vals[s] += v
		w.cnt[s]++
		w.sum += v
		w.count++
	case aggMax:
		if cur := w.vals[s]; cur != cur || v > cur {
			w.vals[s] = v
		}
		if w.extOK && (w.ext != w.ext || v > w.ext) {
			w.ext = v
		}
	case aggMin:
		if cur := w.vals[s]; cur != cur || v < cur {
			w.vals[s] = v
		}
		if w.extOK && (w.ext != w.ext || v < w.ext) {
			w.ext = v
		}
	}
	return w.value()
}

// clearSlot empties bucket s as the window moves past it.
func (w *window) clearSlot(s int) {
	if w.agg == aggAvg {
		if w.cnt[s] == 0 {
			return
		}
		w.sum -= w.vals[s]
		w.count -= w.cnt[s]
		w.vals[s], w.cnt[s] = 0, 0
		w.clears++
		if w.count == 0 {
			w.sum, w.clears = 0, 0
		} else if w.clears >= len(w.vals) {
			// Recompute exactly now and then, so rounding cannot drift.
			w.sum, w.clears = 0, 0
			for _, x := range w.vals {
				w.sum += x
			}
		}
		return
	}
	if old := w.vals[s]; old == old {
		if old == w.ext {
			w.extOK = false // the extreme left the window
		}
		w.vals[s] = math.NaN()
	}
}

// value is the aggregate of the buckets; NaN when they are empty.
func (w *window) value() float64 {
	if w.agg == aggAvg {
		if w.count == 0 {
			return math.NaN()
		}
		return w.sum / float64(w.count)
	}
	if !w.extOK {
		w.ext = math.NaN()
		for _, x := range w.vals {
			if x != x {
				continue
			}
			if w.ext != w.ext || (w.agg == aggMax && x > w.ext) || (w.agg == aggMin && x < w.ext) {
				w.ext = x
			}
		}
		w.extOK = true
	}
	return w.ext
}
