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
