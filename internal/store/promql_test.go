package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestQueryableHidesInternalSeries: PromQL reads see every stored series
// with its labels and samples, never the store's sysmonstm_agent_* series,
// in Select, LabelNames and LabelValues alike.
func TestQueryableHidesInternalSeries(t *testing.T) {
	s, _ := openTest(t, "", base.Add(time.Hour), nil)
	cpu := series("cpu_usage_percent", "web1", "cpu", "total")
	appendRange(t, s, cpu, base, 3, time.Second, func(i int) float64 { return float64(i) })
	appendRange(t, s, labels.FromStrings(labels.MetricName, "sysmonstm_agent_seq", "machine", "web1", "agentonly", "x"), base, 1, time.Second, func(int) float64 { return 7 })

	q, err := s.Queryable().Querier(base.UnixMilli(), base.Add(time.Minute).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	set := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "machine", "web1"))
	var got []labels.Labels
	var samples int
	for set.Next() {
		got = append(got, set.At().Labels())
		for it := set.At().Iterator(nil); it.Next() != chunkenc.ValNone; {
			samples++
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !labels.Equal(got[0], cpu) || samples != 3 {
		t.Fatalf("select machine=web1: series %v, %d samples; want only %v with 3", got, samples, cpu)
	}
	names, _, err := q.LabelNames(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "agentonly") {
		t.Errorf("label names %v show the internal series' label", names)
	}
	vals, _, err := q.LabelValues(ctx, labels.MetricName, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vals, []string{"cpu_usage_percent"}) {
		t.Errorf("__name__ values = %v, want [cpu_usage_percent]", vals)
	}
}

// TestQueryableBeyondRawRetention: before the oldest raw sample, PromQL
// reads one sample per minute from the 1m tier (the minute's average, at
// its start, without __rollup__); from it on, every raw sample. Series
// without a machine label (Prometheus remote write stores labels as sent)
// are rolled up alike.
func TestQueryableBeyondRawRetention(t *testing.T) {
	t.Run("agent series", func(t *testing.T) { testBeyondRawRetention(t, series("load1", "m1")) })
	t.Run("remote-written series", func(t *testing.T) {
		testBeyondRawRetention(t, labels.FromStrings(labels.MetricName, "load1", "instance", "localhost:9100", "job", "node"))
	})
}

func testBeyondRawRetention(t *testing.T, ls labels.Labels) {
	s, clk := openTest(t, "", base, func(o *Options) {
		o.RetentionRaw = time.Hour
		o.Retention1m = 24 * time.Hour
	})
	for h := range 8 {
		appendRange(t, s, ls, base.Add(time.Duration(h)*time.Hour), 360, 10*time.Second, func(i int) float64 { return float64(i % 6) })
	}
	end := base.Add(8 * time.Hour)
	clk.Set(end.Add(30 * time.Second))
	mustRollup(t, s)
	if err := s.raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	rawStart, _ := s.raw.StartTime()
	if rawStart <= base.Add(time.Hour).UnixMilli() {
		t.Fatalf("raw tier still starts at %s", time.UnixMilli(rawStart).UTC())
	}

	q, err := s.Queryable().Querier(base.UnixMilli(), end.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	set := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "load1"))
	if !set.Next() {
		t.Fatalf("no series: %v", set.Err())
	}
	if got := set.At().Labels(); !labels.Equal(got, ls) {
		t.Errorf("labels %v, want %v", got, ls)
	}
	var minutes, raws int
	last := int64(-1)
	for it := set.At().Iterator(nil); it.Next() == chunkenc.ValFloat; {
		ts, v := it.At()
		if ts <= last {
			t.Fatalf("sample at %d after %d", ts, last)
		}
		last = ts
		switch {
		case ts < rawStart:
			if ts%60_000 != 0 || v != 2.5 {
				t.Fatalf("before the raw tier: %v at %s, want 2.5 at a minute's start", v, time.UnixMilli(ts).UTC())
			}
			minutes++
		default:
			if v != float64(ts/10_000%6) {
				t.Fatalf("raw sample %v at %s", v, time.UnixMilli(ts).UTC())
			}
			raws++
		}
	}
	if set.Next() {
		t.Errorf("a second series: %v", set.At().Labels())
	}
	if wantMin := int((rawStart - base.UnixMilli() + 59_999) / 60_000); minutes != wantMin || raws != int((end.UnixMilli()-rawStart)/10_000) {
		t.Errorf("%d minute averages and %d raw samples; want %d and %d", minutes, raws, wantMin, (end.UnixMilli()-rawStart)/10_000)
	}
	names, _, err := q.LabelNames(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	ls.Range(func(l labels.Label) { want = append(want, l.Name) })
	if !slices.Equal(names, want) {
		t.Errorf("label names %v, want %v", names, want)
	}
}

// tierFixture is 12 hours of load1 every 10 s on m1 (value: hour×10 plus
// i%6, so every minute and hour averages hour×10+2.5, min hour×10, max
// hour×10+5), rolled up and compacted with a raw retention of 1 h and a 1m
// retention of 4 h: the three tiers start at different times.
func tierFixture(t *testing.T) (s *Store, ls labels.Labels, end time.Time, m1Start, rawStart int64) {
	t.Helper()
	s, clk := openTest(t, "", base, func(o *Options) {
		o.RetentionRaw = 3 * time.Hour
		o.Retention1m = 4 * time.Hour
	})
	ls = series("load1", "m1")
	// Long enough for the 1m tier to drop blocks: it keeps at least two
	// days and the out-of-order window, until the 1h tier has them. Rolled
	// up after each hour, as a running hub does: the raw tier's background
	// compaction may drop what is older than its retention at any time.
	const hours = 60
	for h := range hours {
		appendRange(t, s, ls, base.Add(time.Duration(h)*time.Hour), 360, 10*time.Second, func(i int) float64 { return float64(h*10 + i%6) })
		clk.Set(base.Add(time.Duration(h+1)*time.Hour + 2*time.Minute))
		mustRollup(t, s)
	}
	end = base.Add(hours * time.Hour)
	clk.Set(end.Add(3 * time.Minute))
	mustRollup(t, s)
	for _, db := range []interface{ Compact(context.Context) error }{s.raw, s.tier1m} {
		if err := db.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rawStart, _ = s.raw.StartTime()
	m1Start, _ = s.tier1m.StartTime()
	if !(base.UnixMilli() < m1Start && m1Start < rawStart && rawStart < end.UnixMilli()) {
		t.Fatalf("tiers start at 1m %s, raw %s: want both inside the data, 1m first", time.UnixMilli(m1Start).UTC(), time.UnixMilli(rawStart).UTC())
	}
	return s, ls, end, m1Start, rawStart
}

// selectAll reads every series matching ms from q: labels and samples.
func selectAll(t *testing.T, q storage.Querier, ms ...*labels.Matcher) (map[string][]fsample, []labels.Labels) {
	t.Helper()
	set := q.Select(context.Background(), true, nil, ms...)
	out := map[string][]fsample{}
	var order []labels.Labels
	for set.Next() {
		ls := set.At().Labels()
		order = append(order, ls)
		for it := set.At().Iterator(nil); it.Next() == chunkenc.ValFloat; {
			ts, v := it.At()
			out[ls.String()] = append(out[ls.String()], fsample{ts, v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out, order
}

// TestQueryableEveryTier: a range spanning the 1h, 1m and raw tiers reads
// hourly averages before the 1m tier's oldest bucket, minute averages
// before the oldest raw sample and raw samples from it on, in one series;
// {__rollup__="max"} reads the stored maxima of the 1m tier and, before
// it, of the 1h tier, labelled __rollup__.
func TestQueryableEveryTier(t *testing.T) {
	s, ls, end, m1Start, rawStart := tierFixture(t)
	q, err := s.Queryable().Querier(base.UnixMilli(), end.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	name := labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "load1")
	hourOf := func(ts int64) float64 { return float64((ts - base.UnixMilli()) / hourMs * 10) }

	got, order := selectAll(t, q, name)
	if len(order) != 1 || !labels.Equal(order[0], ls) {
		t.Fatalf("plain select: series %v, want only %v", order, ls)
	}
	var hours, minutes, raws int
	last := int64(-1)
	for _, p := range got[ls.String()] {
		if p.t <= last {
			t.Fatalf("sample at %d after %d", p.t, last)
		}
		last = p.t
		switch {
		case p.t < m1Start:
			if p.t%hourMs != 0 || p.f != hourOf(p.t)+2.5 {
				t.Fatalf("before the 1m tier: %v at %s, want %v at an hour's start", p.f, time.UnixMilli(p.t).UTC(), hourOf(p.t)+2.5)
			}
			hours++
		case p.t < rawStart:
			if p.t%minuteMs != 0 || p.f != hourOf(p.t)+2.5 {
				t.Fatalf("before the raw tier: %v at %s, want %v at a minute's start", p.f, time.UnixMilli(p.t).UTC(), hourOf(p.t)+2.5)
			}
			minutes++
		default:
			if want := hourOf(p.t) + float64(p.t/10_000%6); p.f != want {
				t.Fatalf("raw sample %v at %s, want %v", p.f, time.UnixMilli(p.t).UTC(), want)
			}
			raws++
		}
	}
	wantH := int((m1Start - base.UnixMilli() + hourMs - 1) / hourMs)
	wantM := int((rawStart - m1Start + minuteMs - 1) / minuteMs)
	if hours != wantH || minutes != wantM || raws != int((end.UnixMilli()-rawStart)/10_000) {
		t.Errorf("%d hour, %d minute averages and %d raw samples; want %d, %d and %d", hours, minutes, raws, wantH, wantM, (end.UnixMilli()-rawStart)/10_000)
	}

	// The stored maxima: per minute in the 1m tier (up to the rolled-up
	// end), per hour before it.
	got, order = selectAll(t, q, name, labels.MustNewMatcher(labels.MatchEqual, rollupLabel, "max"))
	wantLs := labels.NewBuilder(ls).Set(rollupLabel, "max").Labels()
	if len(order) != 1 || !labels.Equal(order[0], wantLs) {
		t.Fatalf(`{__rollup__="max"}: series %v, want only %v`, order, wantLs)
	}
	hours, minutes = 0, 0
	for _, p := range got[wantLs.String()] {
		if p.f != hourOf(p.t)+5 {
			t.Fatalf("max %v at %s, want %v", p.f, time.UnixMilli(p.t).UTC(), hourOf(p.t)+5)
		}
		if p.t < m1Start {
			hours++
		} else {
			minutes++
		}
	}
	// The last hour waits: the 1m tier is written per closed hour, and the
	// clock is at end+30s.
	if wantM := int((end.UnixMilli() - hourMs - m1Start) / minuteMs); hours != wantH || minutes != wantM {
		t.Errorf("max: %d hourly and %d minute buckets, want %d and %d", hours, minutes, wantH, wantM)
	}
	// A regexp selects several kinds; a matcher that matches "" selects
	// the plain series.
	if _, order := selectAll(t, q, name, labels.MustNewMatcher(labels.MatchRegexp, rollupLabel, "min|count")); len(order) != 2 {
		t.Errorf(`{__rollup__=~"min|count"}: %v, want the count and min series`, order)
	}
	if _, order := selectAll(t, q, name, labels.MustNewMatcher(labels.MatchNotEqual, rollupLabel, "max")); len(order) != 1 || !labels.Equal(order[0], ls) {
		t.Errorf(`{__rollup__!="max"}: %v, want the plain series`, order)
	}
	names, _, err := q.LabelNames(context.Background(), nil)
	if err != nil || !slices.Equal(names, []string{"__name__", "machine"}) {
		t.Errorf("label names %v (%v), want [__name__ machine]", names, err)
	}
}

// TestQueryableSkipsEmptyTiers: a range reaching before the oldest raw
// sample reads the raw tier alone while the rollup tiers hold nothing
// there (a new hub), so its series are the raw tier's own, not merged
// with an empty tier.
func TestQueryableSkipsEmptyTiers(t *testing.T) {
	s, _ := openTest(t, "", base.Add(time.Hour), nil)
	ls := series("load1", "m1")
	appendRange(t, s, ls, base, 10, time.Second, func(i int) float64 { return float64(i) })
	q, err := s.Queryable().Querier(base.Add(-time.Hour).UnixMilli(), base.Add(time.Minute).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, alone := q.(*promQuerier).plain.(publicQuerier); !alone {
		t.Errorf("plain querier is %T, want the raw tier's alone", q.(*promQuerier).plain)
	}
	got, _ := selectAll(t, q, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "load1"))
	if n := len(got[ls.String()]); n != 10 {
		t.Errorf("%d samples, want 10", n)
	}
}

// TestPromQLOverTiers: the PromQL engine over the three tiers behaves as
// docs/api.md says: a range over all of them counts hours, minutes and raw
// samples; {__rollup__="max"} finds the true maximum; rate over a window
// shorter than two hourly samples is empty, over two hours it is not.
func TestPromQLOverTiers(t *testing.T) {
	s, _, end, m1Start, rawStart := tierFixture(t)
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	eval := func(q string, at time.Time) promql.Vector {
		t.Helper()
		qry, err := eng.NewInstantQuery(context.Background(), s.Queryable(), nil, q, at)
		if err != nil {
			t.Fatal(err)
		}
		defer qry.Close()
		res := qry.Exec(context.Background())
		if res.Err != nil {
			t.Fatalf("%s: %v", q, res.Err)
		}
		v, err := res.Vector()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	one := func(q string, at time.Time, want float64) {
		t.Helper()
		if v := eval(q, at); len(v) != 1 || v[0].F != want {
			t.Errorf("%s at %s = %v, want one sample %v", q, at.UTC(), v, want)
		}
	}
	// (base-1ms, end]: every hour before the 1m tier, every minute before
	// the raw tier, every raw sample.
	hours := (m1Start - base.UnixMilli() + hourMs - 1) / hourMs
	minutes := (rawStart - m1Start + minuteMs - 1) / minuteMs
	raws := (end.UnixMilli() - rawStart) / 10_000
	one(`count_over_time(load1[60h1ms])`, end.Add(-time.Millisecond), float64(hours+minutes+raws))
	one(`max_over_time(load1[60h1ms])`, end, 595)
	one(`max_over_time(load1{__rollup__="max"}[1h])`, time.UnixMilli(m1Start-1), float64((m1Start-1-base.UnixMilli())/hourMs*10+5))
	one(`max_over_time(load1[1h])`, time.UnixMilli(m1Start-1), float64((m1Start-1-base.UnixMilli())/hourMs*10)+2.5)
	at := base.Add(time.Hour + time.Minute)
	if v := eval(`rate(load1[5m])`, at); len(v) != 0 {
		t.Errorf("rate over 5m of hourly samples = %v, want nothing", v)
	}
	if v := eval(`rate(load1[2h])`, at); len(v) != 1 {
		t.Errorf("rate over 2h of hourly samples = %v, want one sample", v)
	}
}
