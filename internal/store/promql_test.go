package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
