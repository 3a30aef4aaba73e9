package store

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// RollupReserve counts one rollup batch: four series
// per raw series, up to the batch bound; the rollup tiers' own heads stay
// empty through a pass.
func TestRollupReserve(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	const n = 10
	for i := range n {
		appendRange(t, s, series("load1", "m"+strconv.Itoa(i%3), "i", strconv.Itoa(i)), base, 180, time.Second, func(int) float64 { return 1 })
	}
	if got, want := s.RollupReserve(), uint64(n*4*RollupSeriesBytes); got != want {
		t.Fatalf("%d raw series: reserve %d, want %d", n, got, want)
	}
	s.batchSeries = 12
	if got, want := s.RollupReserve(), uint64(12*RollupSeriesBytes); got != want {
		t.Fatalf("batches of 12 series: reserve %d, want %d", got, want)
	}
	// Groups of machines: m0 (16 rollup series) fills a batch alone, m1
	// and m2 (12 each) one each; read in one search (the VM engine), the
	// series fill batches of 12 in the engine's order: 12, 12, 12 and 4.
	clk.Set(base.Add(24*time.Hour + s.opts.OutOfOrderWindow + 2*time.Minute))
	if err := s.Rollup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h1m, h1h := s.tier1m.Head().NumSeries(), s.tier1h.Head().NumSeries(); h1m != 0 || h1h != 0 {
		t.Fatalf("rollup tiers hold %d (1m) and %d (1h) head series after a pass, want none", h1m, h1h)
	}
	wantBlocks, total := 3, uint64(0)
	if _, vm := s.raw.(*vmRaw); vm {
		wantBlocks = 4
	}
	for _, b := range s.tier1m.Blocks() {
		if ns := b.Meta().Stats.NumSeries; ns > 16 {
			t.Errorf("1m block of %d series, over a batch of 12 plus one machine's rollups", ns)
		}
		total += b.Meta().Stats.NumSeries
	}
	if got := len(s.tier1m.Blocks()); got != wantBlocks || total != n*4 {
		t.Fatalf("1m tier: %d blocks of %d series, want %d of %d", got, total, wantBlocks, n*4)
	}
	res := mustQuery(t, s, Query{Metric: "load1", From: base, To: base.Add(3 * time.Minute), Step: time.Minute})
	if len(res.Series) != n || res.Tier != Tier1m {
		t.Fatalf("%d series from %s, want %d from 1m", len(res.Series), res.Tier, n)
	}
	for _, ser := range res.Series {
		if len(ser.Points) != 3 || ser.Points[0].Count != 60 {
			t.Fatalf("series %s: points %+v", ser.Labels, ser.Points)
		}
	}
}
