package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// crashFixture writes three hours of two machines and moves the clock past
// the day's end, so that one pass writes both rollup tiers.
func crashFixture(t *testing.T, dir string) (*Store, *fakeClock) {
	t.Helper()
	s, clk := openTest(t, dir, base, nil)
	for h := range 3 {
		for i, m := range []string{"m1", "m2"} {
			for _, name := range []string{"load1", "load5"} {
				appendRange(t, s, series(name, m), base.Add(time.Duration(h)*time.Hour), 360, 10*time.Second, func(j int) float64 { return float64((j*7+i+h)%13) / 4 })
			}
		}
	}
	s.batchSeries = 8 // a group per machine: two blocks per window
	clk.Set(base.Add(24*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	return s, clk
}

// answers is what a store answers about the fixture, from the rollup tiers
// alone and stitched.
func answers(t *testing.T, s *Store) []*Result {
	var out []*Result
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		for _, name := range []string{"load1", "load5"} {
			q := Query{Metric: name, From: base, To: base.Add(3 * time.Hour), Step: step}
			out = append(out, rolledUp(t, s, q), mustQuery(t, s, q))
		}
	}
	return out
}

// storedSamples counts the samples in a tier's blocks: a block loaded twice
// counts its samples twice.
func storedSamples(s *Store, tier string) uint64 {
	var n uint64
	for _, b := range s.tierDB(tier).Blocks() {
		n += b.Meta().Stats.NumSamples
	}
	return n
}

// crash drops s as a killed process would: no state saved, tiers closed.
func crash(s *Store) {
	s.rollupMu.Lock()
	defer s.rollupMu.Unlock()
	s.closed = true
	_ = s.closeTiers()
}

// TestRollupCrashBetweenSteps stops a pass at each step of a block commit,
// then either crashes and reopens or carries on, and checks that the next
// pass ends with the answers and the stored samples of a pass that never
// failed: no block lost, none loaded twice, no half block loaded.
func TestRollupCrashBetweenSteps(t *testing.T) {
	ref, _ := crashFixture(t, "")
	mustRollup(t, ref)
	want := answers(t, ref)
	want1m, want1h := storedSamples(ref, Tier1m), storedSamples(ref, Tier1h)
	if len(want[0].Series) != 2 || len(want[0].Series[0].Points) != 180 || len(want[4].Series[0].Points) != 3 {
		t.Fatalf("reference rollup: %d series, %d minutes, %d hours", len(want[0].Series), len(want[0].Series[0].Points), len(want[4].Series[0].Points))
	}
	injected := errors.New("injected failure")
	for _, step := range []string{"flushed", "recorded", "moved", "loaded"} {
		for _, tier := range []string{Tier1m, Tier1h} {
			for _, restart := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/restart=%v", tier, step, restart), func(t *testing.T) {
					dir := t.TempDir()
					s, clk := crashFixture(t, dir)
					s.failAt = func(inTier, at string) error {
						if inTier == tier && at == step {
							s.failAt = nil
							return injected
						}
						return nil
					}
					if err := s.Rollup(t.Context()); !errors.Is(err, injected) {
						t.Fatalf("rollup: %v, want the injected failure", err)
					}
					if restart {
						crash(s)
						s, _ = openTest(t, dir, clk.Now(), nil)
						s.batchSeries = 8
					}
					mustRollup(t, s)
					if got := answers(t, s); !reflect.DeepEqual(got, want) {
						t.Fatalf("answers differ from a pass that never failed")
					}
					if n1m, n1h := storedSamples(s, Tier1m), storedSamples(s, Tier1h); n1m != want1m || n1h != want1h {
						t.Fatalf("stored samples 1m %d, 1h %d; want %d, %d", n1m, n1h, want1m, want1h)
					}
					if left, err := os.ReadDir(s.stagingPath()); err != nil || len(left) != 0 {
						t.Fatalf("staging directory holds %d entries (%v)", len(left), err)
					}
				})
			}
		}
	}
}

// TestRollupLateSampleBehindWatermark: a raw sample that arrives (agent
// replay) for an hour already rolled up goes into the raw tier only, as
// before blocks: what is rolled up stays, no bucket is written twice, and
// the raw tier answers with the sample.
func TestRollupLateSampleBehindWatermark(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	ls := series("load1", "m1")
	appendRange(t, s, ls, base, 2*3600+60, time.Second, func(int) float64 { return 1 })
	clk.Set(base.Add(2*time.Hour + 3*time.Minute))
	mustRollup(t, s)
	if w := s.watermarks()["m1"]; w.done1m != ms(base.Add(2*time.Hour)) {
		t.Fatalf("rolled up to %v, want 2h", time.UnixMilli(w.done1m).UTC())
	}
	blocks := len(s.tier1m.Blocks())
	late := base.Add(10*time.Minute + 500*time.Millisecond)
	appendRange(t, s, ls, late, 1, time.Second, func(int) float64 { return 1000 })
	mustRollup(t, s)
	if n := len(s.tier1m.Blocks()); n != blocks {
		t.Fatalf("1m tier: %d blocks after the late sample, want %d (nothing rewritten)", n, blocks)
	}
	minute := Query{Metric: "load1", Machine: "m1", From: base.Add(10 * time.Minute), To: base.Add(11*time.Minute - time.Millisecond), Step: time.Minute}
	want := Point{T: ms(base.Add(10 * time.Minute)), Avg: 1, Min: 1, Max: 1, Count: 60}
	if pts := pointsAt(t, s, minute, Tier1m); len(pts) != 1 || pts[0] != want {
		t.Fatalf("1m tier: %+v, want %+v", pts, want)
	}
	if res := mustQuery(t, s, minute); len(res.Series) != 1 || res.Series[0].Points[0] != want {
		t.Fatalf("query: %+v, want %+v", res.Series, want)
	}
	raw := mustQuery(t, s, Query{Metric: "load1", Machine: "m1", From: late, To: late, Step: time.Second})
	if raw.Tier != TierRaw || len(raw.Series) != 1 || raw.Series[0].Points[0].Max != 1000 {
		t.Fatalf("raw tier: %+v, want the late sample", raw)
	}
	// The day closes: the 1h tier is made from the minutes as rolled up.
	clk.Set(base.Add(24*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	mustRollup(t, s)
	hour := Query{Metric: "load1", Machine: "m1", From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Hour}
	if pts := pointsAt(t, s, hour, Tier1h); len(pts) != 1 || pts[0].Count != 3600 || pts[0].Max != 1 {
		t.Fatalf("1h tier: %+v, want 3600 samples of 1", pts)
	}
	if n := testutil.ToFloat64(s.m.rejected.WithLabelValues(Tier1m)); n != 0 {
		t.Fatalf("1m tier refused %v samples", n)
	}
}

// TestOpenWritesOutOldRollupHeads: a rollup tier that a hub from before
// rollup blocks appended to has rollups in its WAL; Open writes them out
// as a block, so its head holds no series and the data stays readable.
func TestOpenWritesOutOldRollupHeads(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTest(t, dir, base.Add(2*time.Hour), nil)
	app := s.tier1m.Appender(t.Context())
	for m := range 90 {
		a := aggr{min: float64(m), max: float64(m), sum: float64(60 * m), count: 60}
		for k, kind := range rollupKinds {
			ls := labels.NewBuilder(series("load1", "m1")).Set(rollupLabel, kind).Labels()
			if _, err := app.Append(0, ls, ms(base.Add(time.Duration(m)*time.Minute)), a.values()[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.machines["m1"] = &watermark{done1m: ms(base.Add(90 * time.Minute)), done1h: ms(base)}
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openTest(t, dir, base.Add(2*time.Hour), nil)
	if n := s.tier1m.Head().NumSeries(); n != 0 {
		t.Fatalf("1m head holds %d series after open, want 0", n)
	}
	if n := storedSamples(s, Tier1m); n != 4*90 {
		t.Fatalf("1m blocks hold %d samples, want 360", n)
	}
	pts := pointsAt(t, s, Query{Metric: "load1", Machine: "m1", From: base, To: base.Add(90*time.Minute - time.Millisecond), Step: time.Minute}, Tier1m)
	if len(pts) != 90 || pts[89].Max != 89 || pts[89].Count != 60 {
		t.Fatalf("%d points after reopen, want 90", len(pts))
	}
}

// A pass rests after each full batch it writes, in proportion to the batch's
// work, and a pass that ends during a rest leaves what the next pass
// finishes with the answers of an unpaced pass.
func TestRollupPassRestsBetweenBatches(t *testing.T) {
	ref, _ := crashFixture(t, "")
	ref.opts.RollupDuty = 1
	ref.sleep = func(context.Context, time.Duration) error {
		t.Error("a pass with RollupDuty 1 rested")
		return nil
	}
	mustRollup(t, ref)
	want := answers(t, ref)

	s, _ := crashFixture(t, "")
	var rests []time.Duration
	s.sleep = func(_ context.Context, d time.Duration) error {
		rests = append(rests, d)
		return nil
	}
	mustRollup(t, s)
	// Two machines, one batch each, in both rollup tiers: a rest after
	// the first batch of each tier (the last batch is written at the end
	// of the tier's pass, with no rest after it).
	if len(rests) < 2 {
		t.Fatalf("the pass rested %d times (%v), want at least once per tier", len(rests), rests)
	}
	for _, d := range rests {
		if d <= 0 {
			t.Fatalf("rests %v: each wants to be 3× the batch's work, > 0", rests)
		}
	}
	if got := answers(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("a paced pass answers differently from an unpaced one")
	}

	s, _ = crashFixture(t, "")
	s.sleep = func(context.Context, time.Duration) error {
		s.sleep = nil
		return context.Canceled
	}
	if err := s.Rollup(t.Context()); !errors.Is(err, context.Canceled) {
		t.Fatalf("a pass stopped during its rest returned %v, want context.Canceled", err)
	}
	mustRollup(t, s)
	if got := answers(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("the pass after one stopped in its rest answers differently from an unpaced pass")
	}
}
