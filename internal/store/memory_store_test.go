package store

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// RollupReserve counts the eight rollup series each raw series will make
// until the tiers have them: all eight before any rollup, the 1h tier's four
// once the minutes are rolled up, none once the hour is.
func TestRollupReserve(t *testing.T) {
	s, clk := openTest(t, "", base.Add(3*time.Minute), nil)
	const n = 10
	for i := range n {
		appendRange(t, s, series("load1", "m1", "i", strconv.Itoa(i)), base, 180, time.Second, func(int) float64 { return 1 })
	}
	if got, want := s.RollupReserve(), uint64(n*8*RollupSeriesBytes); got != want {
		t.Fatalf("before any rollup: reserve %d, want %d", got, want)
	}
	clk.Set(base.Add(3*time.Minute + s.opts.RollupLag + s.opts.OutOfOrderWindow))
	if err := s.Rollup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := s.RollupReserve(), uint64(n*4*RollupSeriesBytes); got != want {
		t.Fatalf("minutes rolled up: reserve %d, want %d (1m tier %d series, 1h %d)", got, want,
			s.tier1m.Head().NumSeries(), s.tier1h.Head().NumSeries())
	}
	clk.Set(base.Add(time.Hour + s.opts.RollupLag + s.opts.OutOfOrderWindow + time.Minute))
	if err := s.Rollup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.RollupReserve(); got != 0 {
		t.Fatalf("hour rolled up: reserve %d, want 0 (1m tier %d series, 1h %d)", got,
			s.tier1m.Head().NumSeries(), s.tier1h.Head().NumSeries())
	}
}
