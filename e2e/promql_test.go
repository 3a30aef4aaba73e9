package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// needPrometheus returns the paths of the prometheus and promtool binaries
// (Prometheus 2.42, Debian's package); the test skips without them, except
// in CI (CI=true) where it fails.
func needPrometheus(t *testing.T) (prom, promtool string) {
	t.Helper()
	prom, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus and promtool are required in CI (apt-get install prometheus): %v %v", err1, err2)
		}
		t.Skip("prometheus or promtool not installed (apt-get install prometheus)")
	}
	return prom, promtool
}

// promSample is one sample written to both the hub and Prometheus.
type promSample struct {
	name    string
	labels  map[string]string
	ts      int64 // ms since epoch
	value   float64
	machine string
}

// promWorkload is 25 minutes of samples every 15 s, 3 s off the minute,
// ending before now: two
// machines' gauges with fractional values, counters (with a reset) and
// histogram buckets.
func promWorkload(base time.Time) []promSample {
	var out []promSample
	for i := range 100 {
		ts := base.Add(3*time.Second + time.Duration(i)*15*time.Second).UnixMilli()
		for m, machine := range []string{"db1", "web1"} {
			f := float64(m + 1)
			add := func(name string, v float64, kv ...string) {
				ls := map[string]string{}
				for j := 0; j < len(kv); j += 2 {
					ls[kv[j]] = kv[j+1]
				}
				out = append(out, promSample{name: name, labels: ls, ts: ts, value: v, machine: machine})
			}
			add("temperature_celsius", 40+f*math.Sin(float64(i)/7)+0.125*float64(i%5), "zone", "cpu")
			add("temperature_celsius", 30+f*float64(i%11)/3, "zone", "board")
			c := float64(i*i%1000) * f // grows, resets when i*i wraps past 1000
			add("requests_total", c, "code", "200")
			add("requests_total", float64(i)*0.5*f, "code", "500")
			for k, le := range []string{"0.1", "0.5", "1", "+Inf"} {
				add("latency_seconds_bucket", float64(i*(k+1))*f, "le", le)
			}
		}
	}
	return out
}

// openMetrics writes samples as OpenMetrics with explicit timestamps, the
// input of `promtool tsdb create-blocks-from openmetrics`.
func openMetrics(samples []promSample) []byte {
	sorted := append([]promSample(nil), samples...)
	key := func(s promSample) string {
		ks := make([]string, 0, len(s.labels))
		for k := range s.labels {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var b strings.Builder
		fmt.Fprintf(&b, `%s{machine=%q`, s.name, s.machine)
		for _, k := range ks {
			fmt.Fprintf(&b, `,%s=%q`, k, s.labels[k])
		}
		b.WriteString("}")
		return b.String()
	}
	// One metric family's samples stay together, each series' in time order.
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].name != sorted[j].name {
			return sorted[i].name < sorted[j].name
		}
		return key(sorted[i]) < key(sorted[j])
	})
	var b bytes.Buffer
	for _, s := range sorted {
		fmt.Fprintf(&b, "%s %v %.3f\n", key(s), s.value, float64(s.ts)/1000)
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// startPrometheus writes samples into a new Prometheus data directory with
// promtool and serves it with a real Prometheus on a free port.
func startPrometheus(t *testing.T, prom, promtool string, samples []promSample, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	om := filepath.Join(dir, "data.om")
	if err := os.WriteFile(om, openMetrics(samples), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return runPrometheus(t, prom, cfg, data, extra...)
}

// runPrometheus starts prometheus with cfg and data on a free loopback
// port and returns its base URL; it is stopped at the end of the test.
// Prometheus logs the address it was given, not the port it bound, so the
// port is picked here; another process taking it in between makes
// Prometheus exit at once, and the next attempt takes another.
func runPrometheus(t *testing.T, prom, cfg, data string, extra ...string) string {
	t.Helper()
	return runPrometheusAt(t, prom, cfg, data, nil, extra...)
}

// runPrometheusAt is runPrometheus whose configuration, when conf is not
// nil, is conf(its own address), written to cfg before each attempt (a
// Prometheus that scrapes itself), started with the extra flags.
func runPrometheusAt(t *testing.T, prom, cfg, data string, conf func(addr string) string, extra ...string) string {
	t.Helper()
	var lastOut string
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if conf != nil {
			if err := os.WriteFile(cfg, []byte(conf(addr)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var out syncBuffer
		cmd := exec.Command(prom, append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + data, "--web.listen-address=" + addr, "--storage.tsdb.retention.time=30d"}, extra...)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start prometheus: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		ready := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			select {
			case <-done:
			case <-time.After(100 * time.Millisecond):
				if code, err := httpGet("http://" + addr + "/-/ready"); err == nil && code == 200 {
					ready = true
				}
				if !ready {
					continue
				}
			}
			break
		}
		if ready {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
				if t.Failed() {
					t.Logf("--- output of prometheus ---\n%s", out.String())
				}
			})
			return "http://" + addr
		}
		_ = cmd.Process.Kill()
		<-done
		lastOut = out.String()
		if !strings.Contains(lastOut, "address already in use") {
			break
		}
	}
	t.Fatalf("prometheus did not become ready:\n%s", lastOut)
	return ""
}

// ingestSamples writes samples to the hub through POST /api/v1/ingest, one
// request per machine and timestamp.
func ingestSamples(t *testing.T, hub *hubProc, samples []promSample) {
	t.Helper()
	type metric struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
		TS     int64             `json:"ts"`
	}
	batches := map[string][]metric{}
	var order []string
	for _, s := range samples {
		k := fmt.Sprintf("%s@%d", s.machine, s.ts)
		if _, ok := batches[k]; !ok {
			order = append(order, k)
		}
		batches[k] = append(batches[k], metric{s.name, s.labels, s.value, s.ts})
	}
	for _, k := range order {
		machine, _, _ := strings.Cut(k, "@")
		body, _ := json.Marshal(map[string]any{"machine": machine, "metrics": batches[k]})
		req, err := http.NewRequest("POST", "http://"+hub.http+"/api/v1/ingest", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+hub.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"rejected":0`) {
			t.Fatalf("ingest %s: %d %s", k, resp.StatusCode, truncate(string(b)))
		}
	}
}

// promAnswer is a Prometheus API answer, normalised for comparison: the
// series of a vector or matrix sorted by labels.
type promAnswer struct {
	HTTPStatus int
	Status     string `json:"status"`
	ErrorType  string `json:"errorType"`
	Error      string `json:"error"`
	Data       struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

func promQuery(t *testing.T, base, path string, params url.Values) promAnswer {
	t.Helper()
	resp, err := http.PostForm(base+path, params)
	if err != nil {
		t.Fatalf("POST %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := promAnswer{HTTPStatus: resp.StatusCode}
	if a.Status != "" || json.Unmarshal(b, &a) != nil {
		// A scalar's result is one [t, "v"] pair, not a list of series.
		var sc struct {
			Data struct {
				ResultType string          `json:"resultType"`
				Result     json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatalf("%s%s %v: answer is not JSON: %s", base, path, params, truncate(string(b)))
		}
		a.Status, a.Data.ResultType, a.Data.Result = "success", sc.Data.ResultType, []json.RawMessage{sc.Data.Result}
	}
	// Timestamps compare as numbers (both write 1796400053.480 today;
	// the hub wrote .48 before it had its own encoder).
	for i, r := range a.Data.Result {
		var v any
		if err := json.Unmarshal(r, &v); err == nil {
			a.Data.Result[i], _ = json.Marshal(v)
		}
	}
	sort.Slice(a.Data.Result, func(i, j int) bool { return string(a.Data.Result[i]) < string(a.Data.Result[j]) })
	return a
}

// TestPromQLMatchesPrometheus: the same samples written to the hub (HTTP
// ingest) and to a real Prometheus 2.42 (promtool blocks) give the same
// answers to the same queries, errors included; promtool query works
// against the hub and prints what it prints for Prometheus.
func TestPromQLMatchesPrometheus(t *testing.T) {
	prom, promtool := needPrometheus(t)
	// Samples on a 15 s grid 3 s off the minute, queries and subquery steps
	// off that grid, so Prometheus 2's closed and the hub's (Prometheus 3
	// engine) left-open range selectors hold the same samples.
	base := time.Now().Add(-40 * time.Minute).Truncate(time.Minute)
	samples := promWorkload(base)
	promURL := startPrometheus(t, prom, promtool, samples)
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", "promql-admin-pw")
	hub := startHub(t, t.TempDir(), "", "")
	ingestSamples(t, hub, samples)
	hubURL := "http://" + hub.http

	at := fmt.Sprintf("%.3f", float64(base.Add(20*time.Minute+7*time.Second).UnixMilli())/1000)
	start := fmt.Sprintf("%d", base.Add(5*time.Minute+7*time.Second).Unix())
	end := fmt.Sprintf("%d", base.Add(24*time.Minute+7*time.Second).Unix())
	queries := []string{
		`temperature_celsius`,
		`temperature_celsius{zone="cpu", machine=~"web.*"}`,
		`sum by (machine) (temperature_celsius)`,
		`avg without (zone) (temperature_celsius) * 1.5`,
		`max_over_time(temperature_celsius[3m])`,
		`quantile_over_time(0.9, temperature_celsius[10m])`,
		`rate(requests_total[1m])`,
		`increase(requests_total[5m])`,
		`sum(rate(requests_total{code!="500"}[2m])) by (code)`,
		`resets(requests_total[10m])`,
		`histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))`,
		`histogram_quantile(0.5, rate(latency_seconds_bucket[5m]))`,
		`temperature_celsius offset 3m`,
		`deriv(temperature_celsius[5m])`,
		`topk(2, temperature_celsius)`,
		`count(temperature_celsius > 35)`,
		`temperature_celsius / on(machine) group_left temperature_celsius{zone="board"}`,
		`absent(nothing_here)`,
		`time()`,
		`1 / 0`,
		`-1 / 0`,
		`0 / 0`,
		`vector(1) + 2`,
		`max_over_time(rate(requests_total[1m])[5m:30s])`,
		`label_replace(temperature_celsius, "z", "$1", "zone", "(.*)")`,
	}
	invalid := []string{`sum(`, `rate(temperature_celsius)`, `foo{`, `temperature_celsius[5m]+1`, `label_replace(temperature_celsius, "machine", "x", "", "")`, ``}
	var promTime, hubTime time.Duration // the query set's latency on each, logged for docs/benchmarks.md
	cmp := func(path string, params url.Values) {
		t.Helper()
		t0 := time.Now()
		want := promQuery(t, promURL, path, params)
		t1 := time.Now()
		got := promQuery(t, hubURL, path, params)
		promTime, hubTime = promTime+t1.Sub(t0), hubTime+time.Since(t1)
		sameAnswer(t, path, params, got, want)
	}
	for _, q := range queries {
		cmp("/api/v1/query", url.Values{"query": {q}, "time": {at}})
		cmp("/api/v1/query_range", url.Values{"query": {q}, "start": {start}, "end": {end}, "step": {"30s"}})
	}
	t.Logf("%d instant and %d range queries: prometheus %s, hub %s", len(queries), len(queries), promTime, hubTime)
	for _, q := range invalid {
		want := promQuery(t, promURL, "/api/v1/query", url.Values{"query": {q}, "time": {at}})
		got := promQuery(t, hubURL, "/api/v1/query", url.Values{"query": {q}, "time": {at}})
		if got.HTTPStatus != want.HTTPStatus || got.Status != "error" || got.ErrorType != want.ErrorType {
			t.Errorf("invalid %q: hub %d %s %s, prometheus %d %s %s", q, got.HTTPStatus, got.Status, got.ErrorType, want.HTTPStatus, want.Status, want.ErrorType)
		}
	}
	for _, p := range []url.Values{
		{"query": {"up"}, "start": {end}, "end": {start}, "step": {"15s"}},
		{"query": {"up"}, "start": {start}, "end": {end}, "step": {"0"}},
		{"query": {"up"}, "start": {"0"}, "end": {end}, "step": {"1s"}},
	} {
		want := promQuery(t, promURL, "/api/v1/query_range", p)
		got := promQuery(t, hubURL, "/api/v1/query_range", p)
		if got.HTTPStatus != want.HTTPStatus || got.ErrorType != want.ErrorType {
			t.Errorf("query_range %v: hub %d %s, prometheus %d %s", p, got.HTTPStatus, got.ErrorType, want.HTTPStatus, want.ErrorType)
		}
	}

	// Series, labels and label values.
	for _, c := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/series", url.Values{"match[]": {`temperature_celsius`, `requests_total{code="500"}`}}},
		{"/api/v1/labels", url.Values{}},
		{"/api/v1/labels", url.Values{"match[]": {`latency_seconds_bucket`}}},
	} {
		wantS, gotS := rawAnswer(t, promURL, c.path, c.params), rawAnswer(t, hubURL, c.path, c.params)
		if gotS != wantS {
			t.Errorf("%s %v:\n  hub        %s\n  prometheus %s", c.path, c.params, truncate(gotS), truncate(wantS))
		}
	}
	for _, name := range []string{"machine", "zone", "le", "__name__"} {
		wantS, gotS := rawAnswer(t, promURL, "/api/v1/label/"+name+"/values", nil), rawAnswer(t, hubURL, "/api/v1/label/"+name+"/values", nil)
		if gotS != wantS {
			t.Errorf("label %s values:\n  hub        %s\n  prometheus %s", name, gotS, wantS)
		}
	}

	// promtool query instant, range, series and labels print the same for
	// both; the hub is asked with HTTP Basic credentials (promtool 2.42 has
	// no --http.config.file: Go's client sends a URL's user as Basic).
	basicURL := strings.Replace(hubURL, "http://", "http://admin:promql-admin-pw@", 1)
	for _, args := range [][]string{
		{"query", "instant", "--time=" + at, "URL", `sum by (machine) (rate(requests_total[2m]))`},
		{"query", "range", "--start=" + start, "--end=" + end, "--step=1m", "URL", `temperature_celsius{zone="cpu"}`},
		{"query", "series", "--match=temperature_celsius", "--match=requests_total{code=\"500\"}", "URL"},
		{"query", "labels", "URL", "zone"},
		{"query", "labels", "--match=latency_seconds_bucket", "URL", "le"},
	} {
		want, got := runPromtool(t, promtool, args, promURL), runPromtool(t, promtool, args, basicURL)
		// The VM engine's raw values differ past 12 significant digits
		// (sameAnswer compares them within 1e-9): promtool prints them all.
		exact := os.Getenv("SYSMONSTM_TEST_ENGINE") != "vm" || args[1] != "range"
		if exact && got != want || !strings.Contains(got, "machine=") && args[1] != "labels" || args[1] == "labels" && len(strings.Fields(got)) < 2 {
			t.Errorf("promtool %v:\n  hub:\n%s\n  prometheus:\n%s", args, got, want)
		}
	}

	// promtool with HTTP Basic (as Grafana's "Basic auth"): the user's
	// password is checked even on loopback, and a wrong one is refused.
	for _, c := range []struct {
		password string
		ok       bool
	}{{"promql-admin-pw", true}, {"wrong-password", false}} {
		u := strings.Replace(hubURL, "http://", "http://admin:"+c.password+"@", 1) // Go's client sends it as Basic
		out, err := exec.Command(promtool, "query", "instant", "--time="+at, u, `count(temperature_celsius)`).CombinedOutput()
		if (err == nil) != c.ok || (c.ok && !strings.Contains(string(out), "=> 4 @")) || (!c.ok && !strings.Contains(string(out), "401")) {
			t.Errorf("promtool with Basic password %q: err %v, output %s", c.password, err, out)
		}
	}
}

// TestPromQLLimitsMatchPrometheus: with the same sample limit, a query over
// it fails on the hub as on a real Prometheus 2.42 (422 execution, the same
// message), and invalid parameters answer the same status and errorType.
func TestPromQLLimitsMatchPrometheus(t *testing.T) {
	prom, promtool := needPrometheus(t)
	base := time.Now().Add(-40 * time.Minute).Truncate(time.Minute)
	samples := promWorkload(base)
	promURL := startPrometheus(t, prom, promtool, samples, "--query.max-samples=50")
	hub := startHub(t, t.TempDir(), "", "", "--query-max-samples", "50")
	ingestSamples(t, hub, samples)
	hubURL := "http://" + hub.http
	at := fmt.Sprintf("%d", base.Add(24*time.Minute).Unix())
	start := fmt.Sprintf("%d", base.Add(5*time.Minute).Unix())

	// Under the limit both answer; over it both refuse with one message.
	for _, c := range []struct {
		query string
		ok    bool
	}{{`count_over_time(temperature_celsius{machine="db1",zone="cpu"}[10m])`, true}, {`count_over_time(temperature_celsius[20m])`, false}} {
		p := url.Values{"query": {c.query}, "time": {at}}
		want, got := promQuery(t, promURL, "/api/v1/query", p), promQuery(t, hubURL, "/api/v1/query", p)
		if !reflect.DeepEqual(got, want) || (want.HTTPStatus == 200) != c.ok {
			t.Errorf("%s:\n  hub        %+v\n  prometheus %+v", c.query, got, want)
		}
	}
	want := promQuery(t, promURL, "/api/v1/query", url.Values{"query": {`count_over_time(temperature_celsius[20m])`}, "time": {at}})
	if want.HTTPStatus != 422 || want.ErrorType != "execution" || !strings.Contains(want.Error, "too many samples") {
		t.Errorf("prometheus over its sample limit: %+v", want)
	}

	for _, c := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query", url.Values{"query": {`sum(`}, "time": {at}}},
		{"/api/v1/query", url.Values{"query": {`up`}, "time": {"yesterday"}}},
		{"/api/v1/query", url.Values{"query": {`up`}, "time": {at}, "timeout": {"soon"}}},
		{"/api/v1/query", url.Values{"query": {`up`}, "time": {at}, "timeout": {"1e-9"}}},
		{"/api/v1/query_range", url.Values{"query": {`up`}, "start": {start}, "end": {at}, "step": {"-5"}}},
		{"/api/v1/query_range", url.Values{"query": {`up`}, "start": {start}, "end": {at}, "step": {"0.01"}}},
		{"/api/v1/query_range", url.Values{"query": {`up`}, "start": {"x"}, "end": {at}, "step": {"15"}}},
		{"/api/v1/query_range", url.Values{"query": {`up`}, "start": {start}, "end": {"1e400"}, "step": {"15"}}},
		{"/api/v1/series", url.Values{}},
		{"/api/v1/series", url.Values{"match[]": {`temperature_celsius{`}}},
		{"/api/v1/series", url.Values{"match[]": {`{zone=~".*"}`}}},
		{"/api/v1/series", url.Values{"match[]": {`temperature_celsius`}, "start": {"soon"}}},
		{"/api/v1/labels", url.Values{"match[]": {`1+1`}}},
	} {
		want, got := promQuery(t, promURL, c.path, c.params), promQuery(t, hubURL, c.path, c.params)
		if got.HTTPStatus != want.HTTPStatus || got.ErrorType != want.ErrorType || want.HTTPStatus == 200 {
			t.Errorf("%s %v: hub %d %s (%s), prometheus %d %s (%s)", c.path, c.params, got.HTTPStatus, got.ErrorType, got.Error, want.HTTPStatus, want.ErrorType, want.Error)
		}
	}
}

// sameAnswer fails t unless the hub's answer got is Prometheus' want, and
// when want holds no series (a comparison of nothing), unless the query
// asks for "nothing".
func sameAnswer(t *testing.T, path string, params url.Values, got, want promAnswer) {
	t.Helper()
	if want.HTTPStatus == 200 && len(want.Data.Result) == 0 && want.Data.ResultType != "scalar" && !strings.Contains(params.Get("query"), "nothing") {
		t.Errorf("%s %s: Prometheus answers no series; the query compares nothing", path, params.Get("query"))
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		// The VM raw tier engine keeps 12 significant digits of a value
		// (docs/metrics.md): its answers match to 1e-9.
		if os.Getenv("SYSMONSTM_TEST_ENGINE") == "vm" && approxSameJSON(gb, wb) {
			return
		}
		t.Errorf("%s %v:\n  hub        %s\n  prometheus %s", path, params, truncate(string(gb)), truncate(string(wb)))
	}
}

// approxSameJSON reports whether two JSON documents are the same but for
// numbers (or strings holding numbers) that differ by at most 1e-9 of the
// larger one, or 1e-12.
func approxSameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	var same func(x, y any) bool
	same = func(x, y any) bool {
		switch xv := x.(type) {
		case map[string]any:
			yv, ok := y.(map[string]any)
			if !ok || len(xv) != len(yv) {
				return false
			}
			for k := range xv {
				if !same(xv[k], yv[k]) {
					return false
				}
			}
			return true
		case []any:
			yv, ok := y.([]any)
			if !ok || len(xv) != len(yv) {
				return false
			}
			for i := range xv {
				if !same(xv[i], yv[i]) {
					return false
				}
			}
			return true
		case string:
			ys, ok := y.(string)
			if !ok {
				return false
			}
			if xv == ys {
				return true
			}
			xf, err1 := strconv.ParseFloat(xv, 64)
			yf, err2 := strconv.ParseFloat(ys, 64)
			return err1 == nil && err2 == nil && math.Abs(xf-yf) <= max(1e-12, 1e-9*max(math.Abs(xf), math.Abs(yf)))
		case float64:
			yf, ok := y.(float64)
			return ok && math.Abs(xv-yf) <= max(1e-12, 1e-9*max(math.Abs(xv), math.Abs(yf)))
		default:
			return reflect.DeepEqual(x, y)
		}
	}
	return same(x, y)
}

// runPromtool runs promtool with args, the argument "URL" replaced by u,
// and returns what it printed; it fails the test if promtool fails.
func runPromtool(t *testing.T, promtool string, args []string, u string) string {
	t.Helper()
	a := append([]string(nil), args...)
	for i := range a {
		if a[i] == "URL" {
			a[i] = u
		}
	}
	out, err := exec.Command(promtool, a...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", a, err, out)
	}
	return string(out)
}

// rawAnswer GETs base+path?params and returns the body: series and label
// answers are sorted by both servers.
func rawAnswer(t *testing.T, base, path string, params url.Values) string {
	t.Helper()
	resp, err := http.Get(base + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// TestFederateScrapedByPrometheus: a real Prometheus 2.42 scrapes the hub's
// /federate with honor_labels and then answers the same series, values
// and sample timestamps as the hub's own query API.
func TestFederateScrapedByPrometheus(t *testing.T) {
	prom, _ := needPrometheus(t)
	hub := startHub(t, t.TempDir(), "", "")
	ts := time.Now().Add(-2 * time.Second).UnixMilli()
	var samples []promSample
	for m, machine := range []string{"db1", "web1", "edge-ü"} {
		f := float64(m + 1)
		samples = append(samples,
			promSample{name: "cpu_usage_percent", labels: map[string]string{"cpu": "total"}, ts: ts, value: 12.5 * f, machine: machine},
			promSample{name: "memory_used_bytes", ts: ts - 250, value: 1.5e10 * f, machine: machine},
			promSample{name: "temperature_celsius", labels: map[string]string{"zone": `a "quoted" \ zone`}, ts: ts, value: -3.25 * f, machine: machine},
		)
	}
	ingestSamples(t, hub, samples)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: sysmonstm
    honor_labels: true
    metrics_path: /federate
    params: {"match[]": ['{machine=~".+"}']}
    static_configs: [{targets: [%q]}]
    metric_relabel_configs: [{action: labeldrop, regex: "job|instance"}]
`, hub.http)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	promURL := runPrometheus(t, prom, cfg, filepath.Join(dir, "data"))
	at := fmt.Sprintf("%.3f", float64(ts+1000)/1000)
	testutil.WaitFor(t, 30*time.Second, "prometheus scraped /federate", func() error {
		a := promQuery(t, promURL, "/api/v1/query", url.Values{"query": {`{machine=~".+"}`}, "time": {at}})
		if len(a.Data.Result) != len(samples) {
			return fmt.Errorf("prometheus has %d series, want %d", len(a.Data.Result), len(samples))
		}
		return nil
	})
	for _, q := range []string{`{machine=~".+"}`, `timestamp({machine=~".+"})`, `sum by (machine) (cpu_usage_percent)`} {
		params := url.Values{"query": {q}, "time": {at}}
		want, got := promQuery(t, promURL, "/api/v1/query", params), promQuery(t, "http://"+hub.http, "/api/v1/query", params)
		if !reflect.DeepEqual(got, want) || len(got.Data.Result) == 0 {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Errorf("%s:\n  hub        %s\n  prometheus %s", q, gb, wb)
		}
	}
}
