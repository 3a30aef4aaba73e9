package scrape

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

func testTarget(t *testing.T, spec string) Target {
	t.Helper()
	tg, err := ParseTarget(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// render writes samples one a line as name{l="v",…} value [@ts], sorted.
func render(exp Exposition) string {
	lines := make([]string, len(exp.Samples))
	for i, s := range exp.Samples {
		var b strings.Builder
		b.WriteString(s.Name)
		b.WriteByte('{')
		for j, l := range s.Labels {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
		}
		fmt.Fprintf(&b, "} %v", s.Value)
		if exp.Times != nil && exp.Times[i] != 0 {
			fmt.Fprintf(&b, " @%d", exp.Times[i])
		}
		lines[i] = b.String()
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestParseNodeExporter parses a real node_exporter 1.5 exposition
// (testdata/node_exporter.prom, trimmed) and compares with the golden
// conversion: counters, gauges, the summary's quantiles and the
// histogram's _bucket/_sum/_count keep Prometheus' names, le values are
// normalised as Prometheus stores them, job and instance are added, and
// node_uname_info's own machine label becomes exported_machine.
func TestParseNodeExporter(t *testing.T) {
	body, err := os.ReadFile("testdata/node_exporter.prom")
	if err != nil {
		t.Fatal(err)
	}
	tg := testTarget(t, "http://127.0.0.1:9100/metrics;job=node")
	exp, err := Parse(body, "text/plain; version=0.0.4; charset=utf-8", &tg)
	if err != nil {
		t.Fatal(err)
	}
	got := render(exp)
	const golden = "testdata/node_exporter.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("conversion differs from %s (UPDATE_GOLDEN=1 to rewrite):\n%s", golden, got)
	}
	if exp.NonFinite != 0 || exp.Invalid != 0 || exp.Times != nil {
		t.Errorf("NonFinite %d, Invalid %d, Times %v; want 0, 0, nil", exp.NonFinite, exp.Invalid, exp.Times)
	}
}

func TestParse(t *testing.T) {
	f := func(spec, contentType, body, want string) {
		t.Helper()
		tg := testTarget(t, spec)
		exp, err := Parse([]byte(body), contentType, &tg)
		if err != nil {
			t.Fatalf("Parse(%q): %v", body, err)
		}
		if got := render(exp); got != want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", body, got, want)
		}
	}
	const u = "http://10.0.0.5:8080/metrics"
	// Labels named like the target's are renamed exported_*, the machine
	// label always (the hub's), and again while the name is taken.
	f(u+";job=app", "text/plain", `x{job="other",instance="i",machine="m",exported_job="e"} 1`+"\n",
		`x{exported_exported_job="other",exported_instance="i",exported_job="e",exported_machine="m",instance="10.0.0.5:8080",job="app"} 1`+"\n")
	// honor_labels keeps them; the target's fill in what is missing.
	f(u+";job=app;honor_labels=true", "text/plain", `x{job="other",machine="m"} 1`+"\n",
		`x{exported_machine="m",instance="10.0.0.5:8080",job="other"} 1`+"\n")
	// Default job, colons in names, empty label values dropped.
	f(u, "", `job:rate5m{a=""} 2`+"\n",
		`job:rate5m{instance="10.0.0.5:8080",job="scrape"} 2`+"\n")
	// Explicit timestamps are kept: ms in the text format, seconds in
	// OpenMetrics.
	f(u, "text/plain", "a 1 1700000000123\nb 2\n",
		`a{instance="10.0.0.5:8080",job="scrape"} 1 @1700000000123`+"\n"+`b{instance="10.0.0.5:8080",job="scrape"} 2`+"\n")
	f(u, "application/openmetrics-text; version=1.0.0; charset=utf-8",
		"# TYPE c counter\nc_total 3 1700000000.5\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3.5\n# EOF\n",
		`c_total{instance="10.0.0.5:8080",job="scrape"} 3 @1700000000500`+"\n"+
			`h_bucket{instance="10.0.0.5:8080",job="scrape",le="+Inf"} 2`+"\n"+
			`h_bucket{instance="10.0.0.5:8080",job="scrape",le="1.0"} 1`+"\n"+
			`h_count{instance="10.0.0.5:8080",job="scrape"} 2`+"\n"+
			`h_sum{instance="10.0.0.5:8080",job="scrape"} 3.5`+"\n")
}

// TestParseLeavesOutRefusedSeries: series the hub would refuse are left
// out and counted; the rest of the exposition is kept.
func TestParseLeavesOutRefusedSeries(t *testing.T) {
	tg := testTarget(t, "http://127.0.0.1:1/")
	body := "sysmonstm_fake 1\nok 2\n" + "long" + strings.Repeat("x", 300) + " 3\nnan NaN\ninf +Inf\n"
	exp, err := Parse([]byte(body), "text/plain", &tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Samples) != 1 || exp.Samples[0].Name != "ok" || exp.Invalid != 2 || exp.NonFinite != 2 {
		t.Errorf("got %v, Invalid %d, NonFinite %d; want only ok, 2, 2", exp.Samples, exp.Invalid, exp.NonFinite)
	}
}

// TestParseFailsWhole: a syntax error, too many samples or protobuf fail
// the whole exposition with their reason; no sample is returned.
func TestParseFailsWhole(t *testing.T) {
	f := func(spec, contentType, body, reason string) {
		t.Helper()
		tg := testTarget(t, spec)
		exp, err := Parse([]byte(body), contentType, &tg)
		var se *Error
		if !errors.As(err, &se) || se.Reason != reason {
			t.Errorf("Parse(%q) error = %v, want reason %s", body, err, reason)
		}
		if len(exp.Samples) != 0 {
			t.Errorf("Parse(%q) returned %d samples with its error", body, len(exp.Samples))
		}
	}
	const u = "http://127.0.0.1:1/"
	f(u, "text/plain", "a 1\nb{x=\"1\" 2\n", ReasonParse)
	f(u, "text/plain", "a 1\nb 2 3 4\n", ReasonParse)
	f(u, "application/openmetrics-text; version=1.0.0", "a 1\n", ReasonParse) // no # EOF
	f(u+";sample_limit=2", "text/plain", "a 1\nb 2\nc 3\n", ReasonSampleLimit)
	f(u, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "\x00", ReasonContentType)
}

func TestConvertLabelsKeepsMachineLabelOut(t *testing.T) {
	tg := testTarget(t, "http://h:1/;honor_labels=true")
	exp, err := Parse([]byte(`a{machine="evil"} 1`+"\n"), "text/plain", &tg)
	if err != nil || len(exp.Samples) != 1 {
		t.Fatal(exp, err)
	}
	if v := exp.Samples[0].Labels.Get(metric.MachineLabel); v != "" {
		t.Errorf("machine label %q passed through", v)
	}
}

// TestParseCache: a scrape through the series cache converts as a scrape
// without it, when series stay, change value, appear and disappear; the
// cache keeps only the last scrape's series.
func TestParseCache(t *testing.T) {
	tg := testTarget(t, "http://h:1/;job=j")
	cache := &seriesCache{m: map[string]*cachedSeries{}}
	for i, body := range []string{
		"a{x=\"1\"} 1\nb 2\nsysmonstm_bad 3\n",
		"a{x=\"1\"} 5\nc{machine=\"m\"} 6\nsysmonstm_bad 3\n",
		"c{machine=\"m\"} 7\nsyntax error here\n",
		"c{machine=\"m\"} 8\n",
	} {
		want, werr := Parse([]byte(body), "text/plain", &tg)
		got, gerr := parse([]byte(body), "text/plain", &tg, cache)
		if (werr == nil) != (gerr == nil) || render(got) != render(want) || got.Invalid != want.Invalid {
			t.Errorf("scrape %d: cached %s (%v, %d invalid), uncached %s (%v, %d invalid)", i, render(got), gerr, got.Invalid, render(want), werr, want.Invalid)
		}
	}
	if len(cache.m) != 1 {
		t.Errorf("cache holds %d series after a scrape of one", len(cache.m))
	}
}
