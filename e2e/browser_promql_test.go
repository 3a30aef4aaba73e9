package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserPromQLHelpers runs the dashboard's PromQL helpers
// (ui/js/promql.js) in Chromium on literal cases: quoting, the query of a
// chart, and what the Explore box's cursor completes.
func TestBrowserPromQLHelpers(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 800, 600, 60*time.Second)
	mux := http.NewServeMux()
	mux.Handle("GET /js/", http.StripPrefix("/js/", http.FileServer(http.Dir("../internal/web/ui/js"))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><title>promql.js</title>"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.run("open", chromedp.Navigate(srv.URL+"/"))
	b.exec("import", `import("/js/promql.js").then(m => { window.P = m; })`)
	b.waitJS(5*time.Second, "module", `window.P`)

	call := func(expr string) string {
		t.Helper()
		return js[string](b, `JSON.stringify(`+expr+`)`)
	}
	eq := func(expr, want string) {
		t.Helper()
		if got := call(expr); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
	arg := func(s string) string { // s as JSON.stringify writes it
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(buf.String(), "\n")
	}

	// Quoting: JSON's escapes are PromQL's.
	eq(`P.quote('a"b\\c\n')`, arg(`"a\"b\\c\n"`))
	eq(`P.regexLiteral("a.b|c(d)[e]{1}^$*+?\\")`, arg(`a\.b\|c\(d\)\[e\]\{1\}\^\$\*\+\?\\`))

	// A chart's query.
	eq(`P.chartQuery("web-1", [{metric: "cpu_usage_percent", match: {cpu: "total"}}])`, arg(`cpu_usage_percent{machine="web-1",cpu="total"}`))
	eq(`P.chartQuery("web-1", [{metric: "cpu_usage_percent", match: {cpu: "0"}}, {metric: "cpu_usage_percent", match: {cpu: "1"}}])`,
		arg(`cpu_usage_percent{machine="web-1",cpu=~"0|1"}`))
	eq(`P.chartQuery("m", [{metric: "memory_used_bytes", match: {}}, {metric: "memory_total_bytes", match: {}}])`,
		arg(`memory_used_bytes{machine="m"} or memory_total_bytes{machine="m"}`))
	eq(`P.chartQuery("m", [{metric: "disk_read_bytes_per_second", match: {device: "sda"}}, {metric: "disk_write_bytes_per_second", match: {device: "sda"}}])`,
		arg(`disk_read_bytes_per_second{machine="m",device="sda"} or disk_write_bytes_per_second{machine="m",device="sda"}`))
	eq(`P.chartQuery('a"b', [{metric: "x", match: {mountpoint: "/m\\n(1)"}}, {metric: "x", match: {mountpoint: "/a.b"}}])`,
		arg(`x{machine="a\"b",mountpoint=~"/m\\\\n\\(1\\)|/a\\.b"}`))
	eq(`P.exploreURL('x{a="b"}', {key: "1h"})`, arg(`/explore?q=x%7Ba%3D%22b%22%7D&range=1h`))
	eq(`P.exploreURL("x", {from: 1000.4, to: 2000})`, arg(`/explore?q=x&from=1000&to=2000`))
	eq(`P.seriesText({__name__: "up", b: "2", a: 'q"'})`, arg(`up{a="q\"", b="2"}`))
	eq(`P.seriesText({})`, arg(`{}`))

	// Completion contexts.
	eq(`P.completion("cpu_us")`, `{"kind":"metric","prefix":"cpu_us","from":0}`)
	eq(`P.completion("sum(rate(cpu")`, `{"kind":"metric","prefix":"cpu","from":9}`)
	eq(`P.completion("x[5m")`, `null`)
	eq(`P.completion("x offset 5m")`, `null`)
	eq(`P.completion("cpu_usage_percent{")`, `{"kind":"label","prefix":"","from":18,"selector":true,"scope":"cpu_usage_percent{}"}`)
	eq(`P.completion('cpu_usage_percent{machine="a,b",cp')`, `{"kind":"label","prefix":"cp","from":32,"selector":true,"scope":"cpu_usage_percent{machine=\"a,b\"}"}`)
	eq(`P.completion('{machine="we')`, `{"kind":"value","label":"machine","prefix":"we","from":10,"quote":"\"","scope":""}`)
	eq(`P.completion('up{job="a",machine=~"w\\"e')`, `{"kind":"value","label":"machine","prefix":"w\\\"e","from":21,"quote":"\"","scope":"up{job=\"a\"}"}`)
	eq(`P.completion('up{machine="a"} + on(')`, `{"kind":"label","prefix":"","from":21,"scope":""}`)
	eq(`P.completion("sum by (mach")`, `{"kind":"label","prefix":"mach","from":8,"scope":""}`)
	eq(`P.completion('up{machine="a"}')`, `null`)
	eq(`P.completion('up{machine="a" ')`, `null`)
	eq(`P.completion('"cpu')`, `null`)
	eq(`P.completion("# cpu")`, `null`)

	// Escaping a picked value for either quote; ranking.
	eq(`P.escapeIn('a"b\\c', '"')`, arg(`a\"b\\c`))
	eq(`P.escapeIn("it's \"q\"", "'")`, arg(`it\'s "q"`))
	eq(`P.rank(["load1", "cpu_usage_percent", "disk_io_time_percent", "load15"], "load", 10)`, `["load1","load15"]`)
	eq(`P.rank(["memory_usage_percent", "cpu_usage_percent", "usage"], "usage", 10)`, `["cpu_usage_percent","memory_usage_percent"]`)
	b.checkClean()
}
