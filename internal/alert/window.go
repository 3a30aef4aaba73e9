package alert

import "math"

// windowBuckets bounds the memory of one aggregation window: a window is
// tracked in at most this many buckets, each at least 1 s wide, so windows
// up to 60 s are exact for per-second samples and longer ones are accurate
// to window/60 at their old edge.
const windowBuckets = 60

// window aggregates one series' samples over a sliding time window (sample
// timestamps, ms since epoch) as avg, max, min or increase, in O(1)
// amortized per sample: the buckets form a ring that always covers exactly
// the window ending at the newest sample, and the aggregate is kept up to
// date instead of recomputed. Its slot's machine lock protects it.
type window struct {
	agg    aggKind
	width  int64     // ms per bucket
	newest int64     // bucket index (ts/width) of the newest sample; math.MinInt64 before the first
	vals   []float64 // per bucket: the sum (avg), the max/min (NaN when empty), or the increments (increase)
	cnt    []uint32  // avg: samples per bucket

	sum    float64 // avg, increase: sum over the buckets
	count  uint32  // avg: samples in the buckets; increase: buckets holding an increment
	clears int     // avg, increase: buckets cleared since sum was last recomputed exactly

	ext   float64 // max/min: the extreme over the buckets, when extOK
	extOK bool

	prev    float64 // increase: the value of the previous sample
	prevIdx int64   // increase: its bucket index; math.MinInt64 before the first
}

func newWindow(agg aggKind, windowMs int64) *window {
	n := windowMs / 1000
	n = max(1, min(n, windowBuckets))
	width := max(1, (windowMs+n-1)/n)
	w := &window{agg: agg, width: width, newest: math.MinInt64, prevIdx: math.MinInt64, vals: make([]float64, n)}
	switch agg {
	case aggAvg:
		w.cnt = make([]uint32, n)
	case aggMax, aggMin:
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
	if w.agg == aggIncrease && (math.IsNaN(v) || math.IsInf(v, 0)) {
		return w.value() // no counter value: neither a step nor a reset
	}
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
	case aggIncrease:
		w.addStep(s, idx, v)
	}
	return w.value()
}

// addStep records the counter step from the previous sample to v (in
// bucket s, index idx): a rise counts as the difference, a fall is a
// counter reset and counts as v. A previous sample that has left the
// window gives no step: only steps between two samples in the window
// count.
func (w *window) addStep(s int, idx int64, v float64) {
	inWindow := w.prevIdx != math.MinInt64 && w.prevIdx > w.newest-int64(len(w.vals))
	prev := w.prev
	w.prev, w.prevIdx = v, idx
	if !inWindow {
		return
	}
	inc := v - prev
	if v < prev {
		inc = v // reset: the counter restarted from 0
	}
	if !(inc > 0) {
		return // no rise (a negative value after a reset counts as none)
	}
	if w.vals[s] == 0 {
		w.count++
	}
	w.vals[s] += inc
	w.sum += inc
}

// clearSlot empties bucket s as the window moves past it.
func (w *window) clearSlot(s int) {
	switch w.agg {
	case aggAvg:
		if w.cnt[s] == 0 {
			return
		}
		w.sum -= w.vals[s]
		w.count -= w.cnt[s]
		w.vals[s], w.cnt[s] = 0, 0
		w.clearedSum()
		return
	case aggIncrease:
		if w.vals[s] == 0 {
			return
		}
		w.sum -= w.vals[s]
		w.count--
		w.vals[s] = 0
		w.clearedSum()
		return
	}
	if old := w.vals[s]; old == old {
		if old == w.ext {
			w.extOK = false // the extreme left the window
		}
		w.vals[s] = math.NaN()
	}
}

// clearedSum keeps sum exact after a bucket was subtracted from it (avg,
// increase): zero once the buckets are empty, and recomputed now and then
// (or when an overflow left it Inf or NaN), so rounding cannot drift.
func (w *window) clearedSum() {
	w.clears++
	switch {
	case w.count == 0:
		w.sum, w.clears = 0, 0
	case w.clears >= len(w.vals) || math.IsNaN(w.sum) || math.IsInf(w.sum, 0):
		w.sum, w.clears = 0, 0
		for _, x := range w.vals {
			w.sum += x
		}
	}
}

// value is the aggregate of the buckets; NaN when they are empty (avg,
// max, min), 0 when no increment is in the window (increase).
func (w *window) value() float64 {
	switch w.agg {
	case aggAvg:
		if w.count == 0 {
			return math.NaN()
		}
		return w.sum / float64(w.count)
	case aggIncrease:
		return w.sum
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
