package history

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// BenchmarkQuery24h: one machine's 24 h chart (Step 0, as the dashboard
// asks: 5 min buckets) of load1 (1 series) and cpu_usage_percent (17
// series), 1 s samples, from the embedded store (rolled up into its 1m
// tier, as on a running hub) and from VictoriaMetrics, same samples; and
// the export of load1's 86,400 raw samples.
func BenchmarkQuery24h(b *testing.B) {
	end := time.Now().Truncate(time.Second).Add(-time.Minute)
	from := end.Add(-24 * time.Hour)
	lsets := []labels.Labels{labels.FromStrings(labels.MetricName, "load1", metric.MachineLabel, "m1")}
	for c := range 17 {
		cpu := "total"
		if c > 0 {
			cpu = strconv.Itoa(c - 1)
		}
		lsets = append(lsets, labels.FromStrings(labels.MetricName, "cpu_usage_percent", metric.MachineLabel, "m1", "cpu", cpu))
	}
	var samples []testSample
	for sec := range 24 * 3600 {
		for i, ls := range lsets {
			v := float64((sec*7919+i*31)%1001) / 10
			samples = append(samples, testSample{ls: ls, t: from.Add(time.Duration(sec) * time.Second).UnixMilli(), v: v})
		}
	}
	emb := embedded(b, samples)
	if err := emb.Rollup(context.Background()); err != nil {
		b.Fatal(err)
	}
	vm := startVM(b)
	remoteWrite(b, vm, samples)
	samples = nil
	c := newClient(b, vm, nil)
	for _, h := range []struct {
		name string
		h    interface {
			Query(context.Context, store.Query) (*store.Result, error)
			Export(context.Context, store.Query, store.ExportFunc) error
		}
	}{{"embedded", emb}, {"victoria-metrics", c}} {
		b.Run(h.name+"/export-load1", func(b *testing.B) {
			for b.Loop() {
				n := 0
				err := h.h.Export(context.Background(), store.Query{Metric: "load1", Machine: "m1", From: from, To: end},
					func(string, metric.Labels, int64, float64) error { n++; return nil })
				if err != nil || n != 24*3600 {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/export")
		})
		for _, m := range []struct {
			name   string
			series int
		}{{"load1", 1}, {"cpu_usage_percent", 17}} {
			b.Run(h.name+"/"+m.name, func(b *testing.B) {
				for b.Loop() {
					res, err := h.h.Query(context.Background(), store.Query{Metric: m.name, Machine: "m1", From: from, To: end})
					if err != nil {
						b.Fatal(err)
					}
					if len(res.Series) != m.series || len(res.Series[0].Points) < 280 {
						b.Fatalf("%d series, %d points", len(res.Series), len(res.Series[0].Points))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
			})
		}
	}
}
