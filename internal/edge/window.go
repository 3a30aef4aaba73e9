package edge

import "math"

// window is one series' recent values: a ring of fixed slots, one per step
// (bucket), holding the newest value that fell into that bucket. Missing
// buckets are NaN. Memory: 4 bytes per slot, allocated at the first point;
// float32 is plenty for a sparkline (the latest value is kept exactly
// elsewhere); a value beyond float32's range is a missing bucket.
type window struct {
	vals []float32
	head int64 // bucket number (ts / step) of the newest slot
}

// add records v at ts (ms since epoch, > 0). Points older than the window
// are ignored; a newer bucket clears the slots it skips.
func (w *window) add(ts int64, v float64, step int64, n int) {
	b := ts / step
	if w.vals == nil {
		w.vals = make([]float32, n)
		for i := range w.vals {
			w.vals[i] = float32(math.NaN())
		}
		w.head = b
	}
	switch {
	case b > w.head:
		gap := b - w.head
		if gap >= int64(n) {
			for i := range w.vals {
				w.vals[i] = float32(math.NaN())
			}
		} else {
			for k := w.head + 1; k < b; k++ {
				w.vals[k%int64(n)] = float32(math.NaN())
			}
		}
		w.head = b
	case b <= w.head-int64(n):
		return // older than the window
	}
	f := float32(v)
	if math.IsInf(float64(f), 0) {
		// Beyond float32 (|v| > 3.4e38): a gap, since JSON cannot carry
		// the Inf it would become. The latest value is kept exactly.
		f = float32(math.NaN())
	}
	w.vals[b%int64(n)] = f
}

// points returns the window's values as [ts, value] pairs, oldest first;
// ts is the start of the bucket (ms since epoch).
func (w *window) points(step int64) [][2]float64 {
	if w.vals == nil {
		return [][2]float64{}
	}
	n := int64(len(w.vals))
	out := make([][2]float64, 0, n)
	for b := w.head - n + 1; b <= w.head; b++ {
		if b < 0 {
			continue
		}
		v := w.vals[b%n]
		if v != v { // NaN: no value in this bucket
			continue
		}
		out = append(out, [2]float64{float64(b * step), float64(v)})
	}
	return out
}
