package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pointsAt returns the single series' points of q, failing unless exactly
// one series matches.
func pointsAt(t *testing.T, s *Store, q Query, wantTier string) []Point {
	t.Helper()
	res := mustQuery(t, s, q)
	if wantTier != TierRaw {
		res = rolledUp(t, s, q)
	}
	if res.Tier != wantTier {
		t.Fatalf("query %+v: tier %s, want %s", q, res.Tier, wantTier)
	}
	if len(res.Series) != 1 {
		t.Fatalf("query %+v: %d series, want 1", q, len(res.Series))
	}
	return res.Series[0].Points
}

func TestRollupKeepsSpike(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	ls := series("cpu_usage_percent", "m1", "cpu", "total")
	spike := 30*60 + 17 // second of the hour holding the spike
	appendRange(t, s, ls, base, 3601, time.Second, func(i int) float64 {
		if i == spike {
			return 100
		}
		return 1
	})
	// Bookkeeping series are never rolled up.
	appendRange(t, s, series("sysmonstm_agent_batches", "m1"), base, 3600, time.Second, func(int) float64 { return 1 })

	// The 1h tier is written per closed day: once the machine's silence
	// has outlasted the out-of-order window past the day's end.
	clk.Set(base.Add(24*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	mustRollup(t, s)

	pts := pointsAt(t, s, Query{Metric: "cpu_usage_percent", Machine: "m1", From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Minute}, Tier1m)
	if len(pts) != 60 {
		t.Fatalf("1m tier: %d points, want 60", len(pts))
	}
	for i, p := range pts {
		want := Point{T: ms(base.Add(time.Duration(i) * time.Minute)), Avg: 1, Min: 1, Max: 1, Count: 60}
		if i == 30 {
			want.Avg, want.Max = 2.65, 100 // (59+100)/60, to the percent family's 2 decimals
		}
		if p != want {
			t.Fatalf("1m point %d = %+v, want %+v", i, p, want)
		}
	}
	// Coarser steps on the 1m tier combine minutes.
	pts = pointsAt(t, s, Query{Metric: "cpu_usage_percent", Machine: "m1", From: base, To: base.Add(time.Hour - time.Millisecond), Step: 15 * time.Minute}, Tier1m)
	if want := (Point{T: ms(base.Add(30 * time.Minute)), Avg: 1.11 /* (899+100)/900 */, Min: 1, Max: 100, Count: 900}); len(pts) != 4 || pts[2] != want {
		t.Fatalf("15m points %+v, want 4 with [2] = %+v", pts, want)
	}
	pts = pointsAt(t, s, Query{Metric: "cpu_usage_percent", Machine: "m1", From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Hour}, Tier1h)
	if want := (Point{T: ms(base), Avg: 1.03 /* (3599+100)/3600 = 1.0275 */, Min: 1, Max: 100, Count: 3600}); len(pts) != 1 || pts[0] != want {
		t.Fatalf("1h points %+v, want %+v", pts, want)
	}
	for _, db := range []struct {
		name string
		q    func() (int, error)
	}{
		{"1m", func() (int, error) { return countSeries(s, Tier1m, "sysmonstm_agent_batches") }},
		{"1h", func() (int, error) { return countSeries(s, Tier1h, "sysmonstm_agent_batches") }},
	} {
		if n, err := db.q(); err != nil || n != 0 {
			t.Fatalf("%s tier holds %d bookkeeping series (err %v)", db.name, n, err)
		}
	}
}

// countSeries counts the series of name in a tier's TSDB.
func countSeries(s *Store, tier, name string) (int, error) {
	d := s.raw
	switch tier {
	case Tier1m:
		d = s.tier1m
	case Tier1h:
		d = s.tier1h
	}
	q, err := d.Querier(0, 1<<62)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	vals, _, err := q.LabelValues(context.Background(), "__name__", nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vals {
		if v == name {
			n++
		}
	}
	return n, nil
}

func TestRollupWaitsForMachine(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	one := func(int) float64 { return 1 }
	m1, m2 := series("load1", "m1"), series("load1", "m2")
	appendRange(t, s, m1, base, 601, time.Second, one)  // m1 stops after 10 minutes
	appendRange(t, s, m2, base, 4201, time.Second, one) // m2 runs 70 minutes
	clk.Set(base.Add(71*time.Minute + 30*time.Second))  // the first hour is past the lag
	mustRollup(t, s)

	count := func(m string) int {
		res := rolledUp(t, s, Query{Metric: "load1", Machine: m, From: base, To: base.Add(2 * time.Hour), Step: time.Minute})
		if len(res.Series) == 0 {
			return 0
		}
		return len(res.Series[0].Points)
	}
	if got := count("m2"); got != 60 {
		t.Fatalf("m2: %d minutes rolled up, want 60 (its closed hour)", got)
	}
	// m1's hour is not complete: it waits for m1's replay.
	if got := count("m1"); got != 0 {
		t.Fatalf("m1: %d minutes rolled up, want 0", got)
	}
	if w := s.machines["m1"]; w.done1m != ms(base) {
		t.Fatalf("m1 watermark %v, want the start of its open hour", time.UnixMilli(w.done1m).UTC())
	}
	// m1 comes back with its buffered hour.
	appendRange(t, s, m1, base.Add(10*time.Minute), 3601, time.Second, one)
	mustRollup(t, s)
	if got := count("m1"); got != 60 {
		t.Fatalf("m1 after replay: %d minutes, want 60", got)
	}
	// A machine silent for longer than the out-of-order window is final,
	// its last partial hour too.
	clk.Set(base.Add(2*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	appendRange(t, s, m2, base.Add(70*time.Minute), 60, time.Second, one)
	mustRollup(t, s)
	if w := s.machines["m1"]; w.done1m < ms(base.Add(2*time.Hour)) {
		t.Fatalf("silent m1 watermark %v not advanced past the out-of-order window", time.UnixMilli(w.done1m).UTC())
	}
	if got := count("m1"); got != 71 { // its replay ends at 70:00
		t.Fatalf("silent m1: %d minutes, want 71", got)
	}
	// Once silent for longer than raw retention, fully rolled-up machines
	// are forgotten.
	clk.Set(base.Add(30 * time.Hour))
	mustRollup(t, s)
	if n := len(s.machines); n != 0 {
		t.Fatalf("%d machines still tracked after 30 h of silence", n)
	}
}

func TestRollupLateReplayOfAnHour(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	v := func(i int) float64 { return float64(i % 60) }
	m1, m2 := series("load1", "m1"), series("load1", "m2")
	// Both live for 10 minutes, then m2 disconnects for an hour.
	appendRange(t, s, m1, base, 600, time.Second, v)
	appendRange(t, s, m2, base, 600, time.Second, v)
	for minute := 10; minute < 70; minute++ {
		appendRange(t, s, m1, base.Add(time.Duration(minute)*time.Minute), 61, time.Second, func(i int) float64 { return v(minute*60 + i) })
		clk.Set(base.Add(time.Duration(minute+1)*time.Minute + 30*time.Second))
		mustRollup(t, s)
	}
	// m2 reconnects and replays the hour it buffered, in one go.
	appendRange(t, s, m2, base.Add(10*time.Minute), 3601, time.Second, func(i int) float64 { return v(600 + i) })
	clk.Set(base.Add(72 * time.Minute))
	mustRollup(t, s)

	hourOK := func(m string, pts []Point) {
		t.Helper()
		if len(pts) != 60 {
			t.Fatalf("%s: %d minutes in 1m tier, want 60", m, len(pts))
		}
		for _, p := range pts {
			if p.Count != 60 || p.Min != 0 || p.Max != 59 || p.Avg != 29.5 {
				t.Fatalf("%s: minute %+v incomplete", m, p)
			}
		}
	}
	for _, m := range []string{"m1", "m2"} {
		hourOK(m, pointsAt(t, s, Query{Metric: "load1", Machine: m, From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Minute}, Tier1m))
	}
	// The day closes (both machines silent past the out-of-order window):
	// the 1h tier takes the complete hour.
	clk.Set(base.Add(24*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	mustRollup(t, s)
	for _, m := range []string{"m1", "m2"} {
		hourOK(m, pointsAt(t, s, Query{Metric: "load1", Machine: m, From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Minute}, Tier1m))
		pts := pointsAt(t, s, Query{Metric: "load1", Machine: m, From: base, To: base.Add(time.Hour - time.Millisecond), Step: time.Hour}, Tier1h)
		if want := (Point{T: ms(base), Avg: 29.5, Min: 0, Max: 59, Count: 3600}); len(pts) != 1 || pts[0] != want {
			t.Fatalf("%s: 1h tier %+v, want %+v", m, pts, want)
		}
	}
}

// TestRollupRecompute rewinds the watermarks, or loses the state file, and
// checks that rolling up again (blocks that overlap the ones written
// before) changes no answer.
func TestRollupRecompute(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s, clk := openTest(t, dir, base, func(o *Options) { o.Registerer = reg })
	for i, name := range []string{"load1", "load5"} {
		appendRange(t, s, series(name, "m1"), base, 2*3600+1, time.Second, func(j int) float64 { return float64((j*7+i)%13) / 4 })
	}
	// Past the day's end and the out-of-order window: both tiers roll up.
	clk.Set(base.Add(24*time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	mustRollup(t, s)
	snapshot := func() []*Result {
		var out []*Result
		for _, step := range []time.Duration{time.Minute, time.Hour} {
			for _, name := range []string{"load1", "load5"} {
				q := Query{Metric: name, From: base, To: base.Add(2 * time.Hour), Step: step}
				out = append(out, rolledUp(t, s, q), mustQuery(t, s, q))
			}
		}
		return out
	}
	before := snapshot()
	// The last sample, at 2h, is a minute and an hour of its own.
	if n := len(before[0].Series[0].Points); n != 121 {
		t.Fatalf("%d minutes rolled up, want 121", n)
	}
	if n := len(before[4].Series[0].Points); n != 3 {
		t.Fatalf("%d hours rolled up, want 3", n)
	}

	// Rewind in place (same process, data still in the heads).
	s.mu.Lock()
	s.machines["m1"].done1m = ms(base.Add(25 * time.Minute))
	s.machines["m1"].done1h = ms(base)
	s.mu.Unlock()
	mustRollup(t, s)
	if got := snapshot(); !reflect.DeepEqual(got, before) {
		t.Fatalf("recompute in place changed results")
	}

	// Restart with the state file gone: every bucket is recomputed after
	// WAL replay.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewRegistry()
	s, _ = openTest(t, dir, clk.Now(), func(o *Options) { o.Registerer = reg })
	mustRollup(t, s)
	if got := snapshot(); !reflect.DeepEqual(got, before) {
		t.Fatalf("recompute after restart changed results")
	}
	for _, tier := range []string{Tier1m, Tier1h} {
		if n := testutil.ToFloat64(s.m.rejected.WithLabelValues(tier)); n != 0 {
			t.Fatalf("%s tier refused %v recomputed samples", tier, n)
		}
		if n := testutil.ToFloat64(s.m.samples.WithLabelValues(tier)); n == 0 {
			t.Fatalf("%s tier: nothing recomputed", tier)
		}
	}
	if w := s.machines["m1"]; w.done1m != ms(base.Add(24*time.Hour)) || w.done1h != ms(base.Add(24*time.Hour)) {
		t.Fatalf("watermarks after recompute: %+v", *w)
	}
}

func TestStatePersisted(t *testing.T) {
	dir := t.TempDir()
	s, clk := openTest(t, dir, base, nil)
	appendRange(t, s, series("load1", "m1"), base, 601, time.Second, func(int) float64 { return 1 })
	// Silent past the out-of-order window: its open hour is final.
	clk.Set(base.Add(time.Hour + DefaultOutOfOrderWindow + 2*time.Minute))
	mustRollup(t, s)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"done_1m": ` + itoa(int(ms(base.Add(time.Hour)))); !strings.Contains(string(b), want) {
		t.Fatalf("state file %s lacks %s", b, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: the watermark is restored, and with no raw sample after
	// it, maxTs lies just before it.
	s2, _ := openTest(t, dir, base.Add(time.Hour), nil)
	w := s2.machines["m1"]
	if w == nil || w.done1m != ms(base.Add(time.Hour)) || w.maxTs != ms(base.Add(time.Hour))-1 {
		t.Fatalf("reopened watermark %+v", w)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	s, _ := openTest(t, "", base, func(o *Options) { o.RollupInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// testPacer is a pacer at the default duty on the clock *clk, whose rests
// are appended to *slept and advance the clock.
func testPacer(clk *time.Time, slept *[]time.Duration) pacer {
	return pacer{ratio: 1/DefaultRollupDuty - 1, since: *clk,
		now: func() time.Time { return *clk },
		sleep: func(_ context.Context, d time.Duration) error {
			*slept = append(*slept, d)
			*clk = clk.Add(d)
			return nil
		}}
}

// A pacer's tick rests once a slice has been worked since its last rest,
// for the slice times ratio; unpaced, it never rests but still reports a
// cancelled context.
func TestPacerTickRestsEverySlice(t *testing.T) {
	defer func(n uint) { paceEvery = n }(paceEvery)
	paceEvery = 4
	clk := base
	var slept []time.Duration
	p := testPacer(&clk, &slept)
	for range 400 { // 400 units of 0.1 ms: 40 ms of work
		clk = clk.Add(100 * time.Microsecond)
		if err := p.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The clock is read every 4th tick: a rest after ticks 100, 200, 300
	// and 400, each 3× the 10 ms before it.
	if want := []time.Duration{30 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("rests %v, want %v", slept, want)
	}
	unpaced := newPacer(1, func(context.Context, time.Duration) error {
		t.Fatal("an unpaced pacer rested")
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	for range 2 * paceEvery {
		if err := unpaced.tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	var err error
	for range paceEvery {
		if err = unpaced.tick(ctx); err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ticks in a cancelled context: %v, want context.Canceled within %d ticks", err, paceEvery)
	}
}

// A pacer rests ratio times what was worked since its last rest.
func TestPacerRestsInProportion(t *testing.T) {
	clk := base
	var slept []time.Duration
	p := testPacer(&clk, &slept)
	for _, worked := range []time.Duration{time.Second, 10 * time.Millisecond, 0} {
		clk = clk.Add(worked)
		if err := p.rest(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{3 * time.Second, 30 * time.Millisecond, 0}
	if !slices.Equal(slept, want) {
		t.Fatalf("rests %v, want %v (3× the work before each, the rests not counted as work)", slept, want)
	}
	if p := newPacer(1, nil); p.rest(context.Background()) != nil || p.ratio != 0 {
		t.Fatalf("duty 1: ratio %v, want no rest", p.ratio)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep in a cancelled context: %v, want it to end with context.Canceled", err)
	}
}
