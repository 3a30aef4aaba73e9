package store

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRollupDay simulates a day of a hub's rollup passes: SYSMONSTM_BENCH_HOSTS
// (100) hosts × 99 series at one sample every 10 s for 25 hours, a pass
// after each hour (once it is past RollupLag), and reports each pass's duration and the
// blocks per rollup tier before and after the tiers' compaction merges the
// overlapping group blocks. It is a measurement, not a check: run it with
// SYSMONSTM_BENCH_DAY=1 -v.
func TestRollupDay(t *testing.T) {
	if os.Getenv("SYSMONSTM_BENCH_DAY") == "" {
		t.Skip("set SYSMONSTM_BENCH_DAY=1 to simulate a day of rollup passes")
	}
	hosts := envInt("SYSMONSTM_BENCH_HOSTS", 100)
	s, clk := openTest(t, "", base, nil)
	if n := envInt("SYSMONSTM_BENCH_BATCH_SERIES", 0); n > 0 {
		s.batchSeries = n
	}
	ws := make([]*workload, hosts)
	refs := make([][]SeriesRef, hosts)
	for h := range ws {
		ws[h] = newWorkload("host-"+strconv.Itoa(h), uint64(h), true)
		refs[h] = make([]SeriesRef, len(ws[h].series))
	}
	vals := make([]float64, len(ws[0].series))
	ctx := context.Background()
	var slowest, total time.Duration
	for hour := range 25 {
		for tick := range 360 {
			ts := ms(base) + int64(hour)*hourMs + int64(tick)*10_000
			app := s.Appender(ctx)
			for h, w := range ws {
				w.next(vals)
				for i, ls := range w.series {
					ref, err := app.Append(refs[h][i], ls, ts, vals[i])
					if err != nil {
						t.Fatal(err)
					}
					refs[h][i] = ref
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			if tick == 359 {
				for h := range ws {
					s.NoteWritten("host-"+strconv.Itoa(h), ts)
				}
			}
		}
		// The pass after hour h rolls up hour h-1: h's end is known
		// complete only once later samples arrive.
		clk.Set(base.Add(time.Duration(hour+1)*time.Hour + s.opts.RollupLag + time.Second))
		began := time.Now()
		if err := s.Rollup(ctx); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		slowest, total = max(slowest, took), total+took
		if err := s.raw.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The 25th hour closes the day: its pass also wrote the 1h tier.
	w := s.watermarks()["host-0"]
	t.Logf("%d raw series; 25 hourly passes: %v in all, slowest %v (the last also writes the day into the 1h tier); watermarks 1m %s, 1h %s",
		s.raw.NumSeries(), total.Round(time.Millisecond), slowest.Round(time.Millisecond),
		time.UnixMilli(w.done1m).UTC().Format(time.RFC3339), time.UnixMilli(w.done1h).UTC().Format(time.RFC3339))
	before1m, before1h := len(s.tier1m.Blocks()), len(s.tier1h.Blocks())
	for _, db := range []string{Tier1m, Tier1h} {
		if err := s.tierDB(db).Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("blocks after a day: 1m tier %d (%d after compaction), 1h tier %d (%d after compaction); batch bound %d series",
		before1m, len(s.tier1m.Blocks()), before1h, len(s.tier1h.Blocks()), s.batchSeries)
}
