package scrape

import (
	"bytes"
	"os"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// BenchmarkParseNodeExporter converts a whole node_exporter 1.5 exposition
// (testdata/node_exporter_full.prom: 1,069 lines, 505 samples, 57 KB,
// every default collector on the build VM), without and with the series
// cache a target's loop keeps between scrapes. Peer in the same run:
// prometheus/common's expfmt.TextParser, the other parser Prometheus
// ships, reading the same bytes into MetricFamily protos (without the
// conversion to series).
func BenchmarkParseNodeExporter(b *testing.B) {
	body, err := os.ReadFile("testdata/node_exporter_full.prom")
	if err != nil {
		b.Fatal(err)
	}
	tg, err := ParseTarget("http://127.0.0.1:9100/metrics;job=node")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("textparse+convert", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			exp, err := Parse(body, "text/plain; version=0.0.4", &tg)
			if err != nil || len(exp.Samples) != 505 {
				b.Fatal(err, len(exp.Samples))
			}
		}
	})
	b.Run("textparse+convert,cached", func(b *testing.B) { // as a loop scrapes: the series seen before
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		cache := &seriesCache{m: map[string]*cachedSeries{}}
		for b.Loop() {
			exp, err := parse(body, "text/plain; version=0.0.4", &tg, cache)
			if err != nil || len(exp.Samples) != 505 {
				b.Fatal(err, len(exp.Samples))
			}
		}
	})
	b.Run("expfmt.TextParser", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
			if err != nil || len(fams) != 282 {
				b.Fatal(err, len(fams))
			}
		}
	})
}
