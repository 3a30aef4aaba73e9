package alert

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestWindowIncrease(t *testing.T) {
	type sample struct {
		ts   int64 // ms
		v    float64
		want float64 // the increase after the sample
	}
	f := func(name string, windowMs int64, samples []sample) {
		t.Helper()
		w := newWindow(aggIncrease, windowMs)
		for i, s := range samples {
			if got := w.add(s.ts, s.v); got != s.want {
				t.Fatalf("%s: sample %d (ts %d, %v): increase %v, want %v", name, i, s.ts, s.v, got, s.want)
			}
		}
	}
	f("first sample", 10_000, []sample{{0, 7, 0}})
	f("steps", 10_000, []sample{{0, 0, 0}, {1000, 1, 1}, {2000, 1, 1}, {3000, 3, 3}, {4000, 3.5, 3.5}})
	// A fall is a counter reset: the new value is the increase since.
	f("reset", 10_000, []sample{{0, 5, 0}, {1000, 6, 1}, {2000, 2, 3}, {3000, 2, 3}, {4000, 0, 3}, {5000, 1, 4}})
	// A negative value after a reset adds nothing.
	f("negative", 10_000, []sample{{0, 5, 0}, {1000, -1, 0}, {2000, 1, 2}})
	// A gap inside the window: the step across it counts.
	f("gap in window", 10_000, []sample{{0, 1, 0}, {1000, 2, 1}, {7000, 3, 2}})
	// A gap longer than the window: the previous sample has left the
	// window, so the step across the gap is not counted.
	f("gap past window", 10_000, []sample{{0, 1, 0}, {1000, 2, 1}, {20_000, 5, 0}, {21_000, 6, 1}})
	// Buckets expire: each step leaves the window 10 s after its later
	// sample.
	f("expiry", 10_000, []sample{
		{0, 0, 0}, {1000, 1, 1}, {2000, 2, 2}, {3000, 3, 3}, {10_000, 3, 3},
		{11_000, 3, 2}, // the step at 1 s left
		{12_000, 3, 1}, {13_000, 3, 0}, {14_000, 4, 1},
	})
	// Samples older than the window are ignored and do not become the
	// previous value.
	f("old sample", 10_000, []sample{{20_000, 5, 0}, {21_000, 6, 1}, {5000, 100, 1}, {22_000, 7, 2}})
	// Non-finite values are no samples.
	f("not finite", 10_000, []sample{{0, 1, 0}, {1000, math.Inf(1), 0}, {2000, math.NaN(), 0}, {3000, 2, 1}})
	// A 15 m window: 60 buckets of 15 s; a step stays in it for 15 m.
	minute := int64(time.Minute / time.Millisecond)
	f("15m", 15*minute, []sample{
		{0, 0, 0}, {minute, 1, 1}, {2 * minute, 2, 2}, {3 * minute, 3, 3},
		{15*minute + 1000, 3, 3}, {16*minute - 1, 3, 3}, {16 * minute, 3, 2}, {17 * minute, 3, 1}, {18 * minute, 3, 0}, {30 * minute, 3, 0},
	})
}

func TestWindowIncreaseNoDrift(t *testing.T) {
	// Fractional increments summed and subtracted many times: once the
	// window holds none, the increase is exactly 0 (a "> 0" rule must
	// resolve).
	w := newWindow(aggIncrease, 10_000)
	v := 0.0
	for i := range 1000 {
		v += 0.1 * float64(i%7)
		w.add(int64(i)*1000, v)
	}
	for i := 1000; i < 1015; i++ {
		w.add(int64(i)*1000, v)
	}
	if got := w.value(); got != 0 {
		t.Fatalf("increase of a flat counter = %v, want 0", got)
	}
	// Huge steps overflow to +Inf and recover once they leave the window.
	w.add(1_015_000, math.MaxFloat64)
	w.add(1_016_000, -math.MaxFloat64) // a reset to a negative value: no rise
	w.add(1_017_000, math.MaxFloat64)
	if got := w.value(); !math.IsInf(got, 1) {
		t.Fatalf("overflowing increase = %v, want +Inf", got)
	}
	for i := int64(1_018); i < 1_030; i++ {
		w.add(i*1000, math.MaxFloat64)
	}
	if got := w.value(); got != 0 {
		t.Fatalf("increase after the overflow left = %v, want 0", got)
	}
}

// TestWindowIncreaseMatchesReference compares the incremental increase
// with a brute-force sum over the steps kept in the window, on random
// counters with resets, gaps and late samples.
func TestWindowIncreaseMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, windowMs := range []int64{1000, 10_000, 60_000, 900_000} {
		w := newWindow(aggIncrease, windowMs)
		n := int64(len(w.vals))
		type step struct {
			idx int64
			inc float64
		}
		var steps []step
		ts := int64(1_700_000_000_000)
		newest, prevIdx := int64(math.MinInt64), int64(math.MinInt64)
		var prev, v float64
		for i := range 5000 {
			switch r := rnd.IntN(40); {
			case r == 0:
				ts += windowMs * int64(1+rnd.IntN(2)) // a gap
			case r < 3:
				ts -= int64(rnd.IntN(int(windowMs))) // late sample
			default:
				ts += 1000
			}
			switch r := rnd.IntN(30); {
			case r == 0:
				v = float64(rnd.IntN(3)) // reset
			case r < 10:
				v += float64(rnd.IntN(5)) / 4
			}
			got := w.add(ts, v)
			idx := ts / w.width
			if newest == math.MinInt64 || idx > newest {
				newest = idx
			}
			if idx > newest-n { // not older than the window
				if prevIdx != math.MinInt64 && prevIdx > newest-n {
					inc := v - prev
					if v < prev {
						inc = v
					}
					if inc > 0 {
						steps = append(steps, step{idx, inc})
					}
				}
				prev, prevIdx = v, idx
			}
			var want float64
			for _, s := range steps {
				if s.idx > newest-n {
					want += s.inc
				}
			}
			if math.Abs(got-want) > 1e-9*math.Max(1, want) {
				t.Fatalf("window %d ms sample %d: increase %v, want %v", windowMs, i, got, want)
			}
		}
	}
}

func TestWindowIncreaseAllocations(t *testing.T) {
	w := newWindow(aggIncrease, 900_000)
	ts, v := int64(0), 0.0
	allocs := testing.AllocsPerRun(1000, func() {
		ts += 1000
		if ts%7000 == 0 {
			v++
		}
		w.add(ts, v)
	})
	if allocs > 0 {
		t.Fatalf("add allocates %.1f times per sample", allocs)
	}
}
