package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

const (
	testMetric = "cpu_usage_percent"
	spikeAt    = 4321 // second of the one-second spike in series 0
)

// testData is 2 h of 1 s samples of three series of m1 (one with a one
// second spike to 1000), one of m2 and one of another metric, starting at
// an hour boundary 3 h ago (older than VictoriaMetrics' latency offset),
// in time order.
func testData(t testing.TB) (time.Time, []testSample) {
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	ls := []labels.Labels{
		labels.FromStrings(labels.MetricName, testMetric, metric.MachineLabel, "m1", "cpu", "0"),
		labels.FromStrings(labels.MetricName, testMetric, metric.MachineLabel, "m1", "cpu", "1"),
		labels.FromStrings(labels.MetricName, testMetric, metric.MachineLabel, "m1", "cpu", "1", "core", "x"),
		labels.FromStrings(labels.MetricName, testMetric, metric.MachineLabel, "m2", "cpu", "0"),
		labels.FromStrings(labels.MetricName, "mem_used_bytes", metric.MachineLabel, "m1"),
	}
	var out []testSample
	for i := range 7200 {
		for j, l := range ls {
			if j == 2 && i%3 != 0 { // a sparser series
				continue
			}
			v := float64((i*7919+j*31)%101) + 0.25*float64(i%2)
			if j == 0 && i == spikeAt {
				v = 1000
			}
			out = append(out, testSample{ls: l, t: start.Add(time.Duration(i) * time.Second).UnixMilli(), v: v})
		}
	}
	return start, out
}

// embedded returns the hub's own store holding samples.
func embedded(t testing.TB, samples []testSample) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: t.TempDir(), RetentionRaw: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	app := s.Appender(context.Background())
	last := map[string]int64{}
	for _, x := range samples {
		if _, err := app.Append(0, x.ls, x.t, x.v); err != nil {
			t.Fatal(err)
		}
		last[x.ls.Get(metric.MachineLabel)] = x.t
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	for m, ts := range last {
		s.NoteWritten(m, ts)
	}
	return s
}

// testEngines starts both engines and writes samples to each.
func testEngines(t *testing.T, samples []testSample) []engine {
	es := []engine{startVM(t), startPrometheus(t)}
	for _, e := range es {
		remoteWrite(t, e, samples)
	}
	return es
}

func newClient(t testing.TB, e engine, edit func(*Options)) *Client {
	t.Helper()
	o := Options{URL: e.url}
	if edit != nil {
		edit(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameResult reports how got differs from want; averages may differ in
// their last bits (sums in another order) before the store's rounding.
func sameResult(want, got *store.Result) error {
	if want.Tier != got.Tier || want.Step != got.Step || len(want.Series) != len(got.Series) {
		return fmt.Errorf("tier/step/series: want %s %s %d, got %s %s %d", want.Tier, want.Step, len(want.Series), got.Tier, got.Step, len(got.Series))
	}
	for i, ws := range want.Series {
		gs := got.Series[i]
		if fmt.Sprint(ws.Labels) != fmt.Sprint(gs.Labels) {
			return fmt.Errorf("series %d: labels want %v, got %v", i, ws.Labels, gs.Labels)
		}
		if len(ws.Points) != len(gs.Points) {
			return fmt.Errorf("series %v: want %d points, got %d (first %v / %v)", ws.Labels, len(ws.Points), len(gs.Points), ws.Points[:min(2, len(ws.Points))], gs.Points[:min(2, len(gs.Points))])
		}
		for j, wp := range ws.Points {
			gp := gs.Points[j]
			if wp.T != gp.T || wp.Min != gp.Min || wp.Max != gp.Max || wp.Count != gp.Count || math.Abs(wp.Avg-gp.Avg) > 1e-9*math.Max(1, math.Abs(wp.Avg)) {
				return fmt.Errorf("series %v point %d: want %+v, got %+v", ws.Labels, j, wp, gp)
			}
		}
	}
	return nil
}

// TestQueryEqualsEmbedded: the same query over the same samples gives the
// embedded store's answer from VictoriaMetrics and from Prometheus, with
// cut first and last buckets, nice and odd steps, every tier's step.
func TestQueryEqualsEmbedded(t *testing.T) {
	start, samples := testData(t)
	emb := embedded(t, samples)
	es := testEngines(t, samples)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	queries := []struct {
		name string
		q    store.Query
	}{
		{"cut ends, step 0", store.Query{From: at(7*time.Minute + 13250*time.Millisecond), To: at(87*time.Minute + 500*time.Millisecond)}},
		{"1s", store.Query{From: at(70 * time.Minute), To: at(80 * time.Minute)}},
		{"7s odd", store.Query{From: at(3*time.Second + 1), To: at(40*time.Minute - 1), Step: 7 * time.Second}},
		{"1m aligned", store.Query{From: at(0), To: at(2 * time.Hour), Step: time.Minute}},
		{"5m cut", store.Query{From: at(31*time.Second + 1), To: at(119*time.Minute + 59*time.Second), Step: 5 * time.Minute}},
		{"1h spike", store.Query{From: at(0), To: at(2*time.Hour - time.Millisecond), Step: time.Hour}},
		{"one bucket", store.Query{From: at(61 * time.Second), To: at(100 * time.Second), Step: time.Hour}},
		{"one instant", store.Query{From: at(61 * time.Second), To: at(61 * time.Second), Step: time.Second}},
		{"matcher", store.Query{From: at(time.Hour), To: at(2 * time.Hour), Step: 10 * time.Minute, Matchers: map[string]string{"cpu": "1"}}},
		{"all machines", store.Query{From: at(0), To: at(time.Hour), Step: 15 * time.Minute}},
	}
	for _, e := range es {
		c := newClient(t, e, nil)
		// Prometheus 2.x range selectors include their left end.
		if closed, err := c.closedRanges(context.Background()); err != nil || closed != (e.name == "prometheus") {
			t.Fatalf("%s: left-closed ranges %v, %v", e.name, closed, err)
		}
		for _, tc := range queries {
			q := tc.q
			q.Metric = testMetric
			if tc.name != "all machines" {
				q.Machine = "m1"
			}
			want, err := emb.Query(context.Background(), q)
			if err != nil {
				t.Fatalf("%s: embedded: %v", tc.name, err)
			}
			got, err := c.Query(context.Background(), q)
			if err != nil {
				t.Fatalf("%s %s: %v", e.name, tc.name, err)
			}
			if len(want.Series) == 0 {
				t.Fatalf("%s: the embedded store has no series", tc.name)
			}
			if err := sameResult(want, got); err != nil {
				t.Errorf("%s %s: %v", e.name, tc.name, err)
			}
			if n := promtest.ToFloat64(c.requests.WithLabelValues("ok")); n < 4 || promtest.ToFloat64(c.requests.WithLabelValues("unavailable")) != 0 {
				t.Errorf("%s: %v requests ok, and some unavailable", e.name, n)
			}
			if tc.name == "1h spike" {
				spiky := got.Series[1] // cpu=0: core=x sorts first
				if spiky.Labels.Get("cpu") != "0" || spiky.Points[1].Max != 1000 || spiky.Points[0].Max == 1000 {
					t.Errorf("%s: the one-second spike is not the second hour's max: %v %+v", e.name, spiky.Labels, spiky.Points)
				}
			}
		}
	}
}

// TestQueryLimits: the store's checks and limits with its messages, as
// client errors (400), before any request (the TSDB here is down).
func TestQueryLimits(t *testing.T) {
	emb := embedded(t, nil)
	c, err := New(Options{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f := func(q store.Query) {
		t.Helper()
		_, want := emb.Query(context.Background(), q)
		_, err := c.Query(context.Background(), q)
		var ce interface{ ClientError() bool }
		if !errors.As(err, &ce) || want == nil || err.Error() != want.Error() {
			t.Fatalf("%+v: want the client error %v, got %v", q, want, err)
		}
	}
	f(store.Query{From: now, To: now})                                                            // no metric
	f(store.Query{Metric: "x", From: now, To: now.Add(-time.Second)})                             // from after to
	f(store.Query{Metric: "x", From: now.Add(-24 * time.Hour), To: now, Step: time.Second})       // 86401 points
	f(store.Query{Metric: "x", From: now, To: now, Matchers: map[string]string{"__name__": "y"}}) // reserved
	f(store.Query{Metric: "x", From: now.Add(-time.Hour), To: now, Step: -time.Second})           // negative step
}

// testQuery is a valid query of the last hour.
func testQuery() store.Query {
	now := time.Now()
	return store.Query{Metric: testMetric, Machine: "m1", From: now.Add(-time.Hour), To: now}
}

// isUnavailable reports whether err answers 503 in web.
func isUnavailable(err error) bool {
	var ue interface{ Unavailable() bool }
	return errors.As(err, &ue) && ue.Unavailable()
}
