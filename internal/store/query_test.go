package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

func TestQueryRawSteps(t *testing.T) {
	s, _ := openTest(t, "", base.Add(10*time.Minute), nil)
	// 10 minutes at 1 s: value i%10, so every 10 s bucket is 0..9.
	appendRange(t, s, series("cpu_usage_percent", "m1", "cpu", "total"), base, 600, time.Second, func(i int) float64 { return float64(i % 10) })
	appendRange(t, s, series("cpu_usage_percent", "m1", "cpu", "0"), base, 600, time.Second, func(i int) float64 { return 5 })
	appendRange(t, s, series("cpu_usage_percent", "m2", "cpu", "total"), base, 600, time.Second, func(i int) float64 { return float64(i) })

	f := func(step time.Duration, wantStep time.Duration, wantPoints int, want Point) {
		t.Helper()
		res := mustQuery(t, s, Query{Metric: "cpu_usage_percent", Machine: "m1", Matchers: map[string]string{"cpu": "total"},
			From: base, To: base.Add(10*time.Minute - time.Millisecond), Step: step})
		if res.Tier != TierRaw || res.Step != wantStep {
			t.Fatalf("step %s: tier %s step %s, want raw %s", step, res.Tier, res.Step, wantStep)
		}
		if len(res.Series) != 1 {
			t.Fatalf("step %s: %d series, want 1", step, len(res.Series))
		}
		pts := res.Series[0].Points
		if len(pts) != wantPoints {
			t.Fatalf("step %s: %d points, want %d", step, len(pts), wantPoints)
		}
		want.T = ms(base)
		if pts[0] != want {
			t.Fatalf("step %s: first point %+v, want %+v", step, pts[0], want)
		}
		for i := 1; i < len(pts); i++ {
			if pts[i].T-pts[i-1].T != wantStep.Milliseconds() {
				t.Fatalf("step %s: points %d,%d not one step apart", step, i-1, i)
			}
		}
	}
	f(10*time.Second, 10*time.Second, 60, Point{Avg: 4.5, Min: 0, Max: 9, Count: 10})
	f(time.Second, time.Second, 600, Point{Avg: 0, Min: 0, Max: 0, Count: 1})
	f(5*time.Second, 5*time.Second, 120, Point{Avg: 2, Min: 0, Max: 4, Count: 5})
	f(30*time.Second, 30*time.Second, 20, Point{Avg: 4.5, Min: 0, Max: 9, Count: 30})
	f(0, time.Second, 600, Point{Avg: 0, Min: 0, Max: 0, Count: 1}) // 10 min / 600 = 1 s
	f(1500*time.Millisecond, 2*time.Second, 300, Point{Avg: 0.5, Min: 0, Max: 1, Count: 2})

	// Every machine, sorted by labels; machine label included.
	res := mustQuery(t, s, Query{Metric: "cpu_usage_percent", From: base, To: base.Add(10 * time.Minute), Step: 10 * time.Second})
	var got []string
	for _, ser := range res.Series {
		got = append(got, ser.Labels.Get("machine")+"/"+ser.Labels.Get("cpu"))
	}
	if want := []string{"m1/0", "m1/total", "m2/total"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("series order %q, want %q", got, want)
	}
	if l := res.Series[0].Labels; l.Get("machine") != "m1" || l.Get("__name__") != "" {
		t.Fatalf("labels %v", l)
	}
	// Only buckets with data: a range past the data has no points, no series.
	res = mustQuery(t, s, Query{Metric: "cpu_usage_percent", Machine: "m1", From: base.Add(-time.Hour), To: base.Add(-time.Minute)})
	if len(res.Series) != 0 || res.Series == nil {
		t.Fatalf("want empty non-nil series, got %+v", res.Series)
	}
}

func TestQueryErrors(t *testing.T) {
	now := base.Add(48 * time.Hour)
	s, _ := openTest(t, "", now, nil)
	f := func(q Query, want string) {
		t.Helper()
		_, err := s.Query(context.Background(), q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("query %+v: err %v, want containing %q", q, err, want)
		}
	}
	f(Query{From: now.Add(-time.Hour), To: now}, "metric name is required")
	f(Query{Metric: "x", From: now, To: now.Add(-time.Hour)}, "after")
	f(Query{Metric: "x", From: now.Add(-24 * time.Hour), To: now, Step: time.Second}, "86401 points per series (limit 11000)")
	f(Query{Metric: "x", From: now.Add(-time.Hour), To: now, Matchers: map[string]string{"__rollup__": "max"}}, "reserved")
	if _, err := s.Query(context.Background(), Query{Metric: "x", From: now.Add(-3 * time.Hour), To: now, Step: time.Second}); err != nil {
		t.Fatalf("10,801 points must be allowed: %v", err)
	}
}

func TestQueryTooManySeries(t *testing.T) {
	s, _ := openTest(t, "", base.Add(time.Minute), nil)
	app := s.Appender(context.Background())
	for i := range MaxSeries + 1 {
		if _, err := app.Append(0, series("many", "m1", "i", itoa(i)), ms(base), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Query(context.Background(), Query{Metric: "many", From: base, To: base.Add(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 series") {
		t.Fatalf("err %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestTierSelection(t *testing.T) {
	now := base.Add(400 * 24 * time.Hour)
	s, _ := openTest(t, "", now, nil)
	f := func(rng, step time.Duration, wantTier string, wantStep time.Duration) {
		t.Helper()
		res := mustQuery(t, s, Query{Metric: "x", From: now.Add(-rng), To: now, Step: step})
		if res.Tier != wantTier || res.Step != wantStep {
			t.Fatalf("range %s step %s: got %s/%s, want %s/%s", rng, step, res.Tier, res.Step, wantTier, wantStep)
		}
	}
	f(time.Hour, 0, TierRaw, 10*time.Second)              // 6 s → 10 s
	f(10*time.Minute, 0, TierRaw, time.Second)            // 1 s
	f(2*time.Hour, time.Second, TierRaw, time.Second)     // explicit
	f(6*time.Hour, 0, Tier1m, time.Minute)                // 36 s → 1 m: not under a minute
	f(24*time.Hour, 0, Tier1m, 5*time.Minute)             // 144 s → 5 m
	f(7*24*time.Hour, 0, Tier1m, 30*time.Minute)          // 1008 s → 30 m
	f(25*time.Hour, time.Second, Tier1m, time.Minute)     // From beyond raw retention
	f(2*time.Hour, 90*time.Second, Tier1m, 2*time.Minute) // rounded up to whole minutes
	f(60*24*time.Hour, 0, Tier1h, 6*time.Hour)            // 8640 s → 6 h, From beyond 30 d
	f(40*24*time.Hour, time.Minute, Tier1h, time.Hour)    // From beyond 1m retention
	f(20*24*time.Hour, time.Hour, Tier1h, time.Hour)      // step of an hour
	f(365*24*time.Hour, 0, Tier1h, 24*time.Hour)          // 52560 s → 1 d
}

func TestNiceStep(t *testing.T) {
	f := func(in, want time.Duration) {
		t.Helper()
		if got := niceStep(in); got != want {
			t.Fatalf("niceStep(%s) = %s, want %s", in, got, want)
		}
	}
	f(0, time.Second)
	f(time.Second, time.Second)
	f(1001*time.Millisecond, 2*time.Second)
	f(11*time.Second, 15*time.Second)
	f(61*time.Second, 2*time.Minute)
	f(3*time.Hour, 6*time.Hour)
	f(25*time.Hour, 48*time.Hour)
}

// TestQueryStitchesTiers checks that a rollup-tier query fills what is not
// rolled up yet from the finer tiers, without counting anything twice.
func TestQueryStitchesTiers(t *testing.T) {
	now := base.Add(2*time.Hour + 30*time.Minute)
	s, _ := openTest(t, "", now, nil)
	v := func(i int) float64 { return float64(i % 60) }
	appendRange(t, s, series("load1", "m2"), base, 600, time.Second, v) // m2 stopped after 10 minutes
	appendRange(t, s, series("load1", "m1"), base, 9000, time.Second, v)
	mustRollup(t, s)
	// Closed hours are in the 1m tier; no day is closed, so the 1h tier
	// holds nothing and hourly answers come from the 1m tier and raw.
	if w := s.watermarks()["m1"]; w.done1m != ms(base.Add(2*time.Hour)) || w.done1h != ms(base) {
		t.Fatalf("watermarks %+v", w)
	}
	// m3 appears after the last rollup pass: nothing of it is rolled up.
	appendRange(t, s, series("load1", "m3"), now.Add(-5*time.Minute), 300, time.Second, v)
	check := func(step time.Duration, tier string, want map[string][]int64) {
		t.Helper()
		res := mustQuery(t, s, Query{Metric: "load1", From: base, To: now, Step: step})
		if len(res.Series) != len(want) {
			t.Fatalf("step %s: %d series, want %d", step, len(res.Series), len(want))
		}
		if res.Tier != tier {
			t.Fatalf("step %s: tier %s, want %s", step, res.Tier, tier)
		}
		for _, ser := range res.Series {
			m := ser.Labels.Get("machine")
			var counts []int64
			for _, p := range ser.Points {
				if p.Min != 0 || p.Max != 59 || p.Avg != 29.5 {
					t.Fatalf("step %s %s: point %+v", step, m, p)
				}
				counts = append(counts, p.Count)
			}
			if !reflect.DeepEqual(counts, want[m]) {
				t.Fatalf("step %s %s: counts %v, want %v", step, m, counts, want[m])
			}
		}
	}
	minutes := make([]int64, 150)
	for i := range minutes {
		minutes[i] = 60
	}
	check(time.Minute, Tier1m, map[string][]int64{"m1": minutes, "m2": minutes[:10], "m3": minutes[:5]})
	check(time.Hour, Tier1h, map[string][]int64{"m1": {3600, 3600, 1800}, "m2": {600}, "m3": {300}})
	check(30*time.Minute, Tier1m, map[string][]int64{"m1": {1800, 1800, 1800, 1800, 1800}, "m2": {600}, "m3": {300}})
}

func TestQueryErrorsAreClientErrors(t *testing.T) {
	now := time.Now()
	s, _ := openTest(t, t.TempDir(), now, nil)
	_, err := s.Query(context.Background(), Query{From: now.Add(-time.Hour), To: now})
	var ce interface{ ClientError() bool }
	if !errors.As(err, &ce) || !ce.ClientError() {
		t.Fatalf("missing metric: %v is not a client error", err)
	}
	_, err = s.Query(context.Background(), Query{Metric: "m", From: now.Add(-20 * time.Hour), To: now, Step: time.Second})
	if !errors.As(err, &ce) {
		t.Fatalf("too many points: %v is not a client error", err)
	}
}

// The first step bucket starts at a multiple of the step, before From, but
// holds no sample from before From.
func TestQueryClipsFrom(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	appendRange(t, s, series("load1", "m1"), base, 3*3600, time.Second, func(i int) float64 { return float64(i) })
	clk.Set(base.Add(3 * time.Hour))
	mustRollup(t, s)

	// Raw tier: the bucket [base, base+50s) holds the samples 30…49 only.
	res := mustQuery(t, s, Query{Metric: "load1", From: base.Add(30 * time.Second), To: base.Add(100 * time.Second), Step: 50 * time.Second})
	pts := res.Series[0].Points
	if res.Tier != TierRaw || pts[0].T != ms(base) || pts[0].Min != 30 || pts[0].Count != 20 {
		t.Fatalf("raw first bucket %+v (tier %s), want samples 30…49 only", pts[0], res.Tier)
	}

	// 1m tier: the rolled-up minute that began before From is left out.
	res = mustQuery(t, s, Query{Metric: "load1", From: base.Add(30 * time.Second), To: base.Add(time.Hour), Step: 10 * time.Minute})
	pts = res.Series[0].Points
	if res.Tier != Tier1m || pts[0].T != ms(base) || pts[0].Min != 60 || pts[0].Count != 540 {
		t.Fatalf("1m first bucket %+v (tier %s), want minutes 1…9 only", pts[0], res.Tier)
	}
}

// A machine of remote-written series (labels as sent, no machine label) is
// selected by its grouping label, in the raw tier and in the 1m tier,
// without the series of other machines.
func TestQueryByRemoteWriteMachineLabel(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	rw := func(instance string) labels.Labels {
		return labels.FromStrings(labels.MetricName, "up", "instance", instance, "job", "node")
	}
	appendRange(t, s, rw("a:9100"), base, 7200, time.Second, func(int) float64 { return 1 })
	appendRange(t, s, rw("b:9100"), base, 7200, time.Second, func(int) float64 { return 0 })
	appendRange(t, s, series("up", "a:9100"), base, 7200, time.Second, func(int) float64 { return 5 })
	clk.Set(base.Add(2*time.Hour + 2*time.Minute))
	mustRollup(t, s)
	for _, step := range []time.Duration{10 * time.Second, time.Minute} {
		res := mustQuery(t, s, Query{Metric: "up", Machine: "a:9100", MachineLabel: "instance", From: base, To: base.Add(2*time.Hour - time.Millisecond), Step: step})
		if len(res.Series) != 1 || res.Series[0].Labels.Get("instance") != "a:9100" || res.Series[0].Labels.Get("machine") != "" {
			t.Fatalf("step %s: %+v", step, res.Series)
		}
		pts := res.Series[0].Points
		if want := int(2 * time.Hour / step); len(pts) != want || pts[0].Avg != 1 || pts[len(pts)-1].Avg != 1 {
			t.Fatalf("step %s (tier %s): %d points (%+v … %+v), want %d of 1", step, res.Tier, len(pts), pts[0], pts[len(pts)-1], want)
		}
	}
}
