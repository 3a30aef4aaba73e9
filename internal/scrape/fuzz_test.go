package scrape

import (
	"math"
	"os"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// FuzzParse feeds arbitrary exporter bytes and content types to Parse: it
// must never panic, and what it returns must be what the hub accepts.
func FuzzParse(f *testing.F) {
	body, err := os.ReadFile("testdata/node_exporter.prom")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, "text/plain; version=0.0.4")
	f.Add([]byte("# TYPE c counter\nc_total{a=\"b\"} 3 1700000000.5\n# EOF\n"), "application/openmetrics-text; version=1.0.0")
	f.Add([]byte(`x{job="a",machine="m",exported_job="e"} 1 17`+"\n"), "")
	f.Add([]byte("a NaN\nb +Inf\n"), "text/html")
	tg, err := ParseTarget("http://127.0.0.1:9100/metrics;job=node;sample_limit=1000")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		exp, err := Parse(body, contentType, &tg)
		// The series cache changes nothing, on a first and a repeated scrape.
		cache := &seriesCache{m: map[string]*cachedSeries{}}
		for range 2 {
			c, cerr := parse(body, contentType, &tg, cache)
			if (cerr == nil) != (err == nil) || render(c) != render(exp) || c.Invalid != exp.Invalid {
				t.Fatalf("with the cache: %s (%v), without: %s (%v)", render(c), cerr, render(exp), err)
			}
		}
		if err != nil {
			if len(exp.Samples) != 0 {
				t.Fatalf("error %v with %d samples", err, len(exp.Samples))
			}
			return
		}
		if len(exp.Samples) > tg.SampleLimit {
			t.Fatalf("%d samples over the limit %d", len(exp.Samples), tg.SampleLimit)
		}
		if exp.Times != nil && len(exp.Times) != len(exp.Samples) {
			t.Fatalf("%d times for %d samples", len(exp.Times), len(exp.Samples))
		}
		for _, s := range exp.Samples {
			if err := metric.DefaultLimits.ValidateSeries(s.Name, s.Labels); err != nil {
				t.Fatalf("series the hub refuses: %v", err)
			}
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
				t.Fatalf("non-finite value %v", s.Value)
			}
			if s.Labels.Get(JobLabel) != "node" || s.Labels.Get(InstanceLabel) != "127.0.0.1:9100" {
				t.Fatalf("labels %v without the target's job and instance", s.Labels)
			}
		}
	})
}
