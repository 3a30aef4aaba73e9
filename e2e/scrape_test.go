package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// needNodeExporter returns the path of Debian's prometheus-node-exporter
// (1.5); the test skips without it, except in CI (CI=true) where it fails.
func needNodeExporter(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus-node-exporter is required in CI (apt-get install prometheus-node-exporter): %v", err)
		}
		t.Skip("prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)")
	}
	return p
}

// startNodeExporter runs node_exporter with the cpu, meminfo and loadavg
// collectors on a free loopback port and returns its /metrics URL.
func startNodeExporter(t *testing.T, bin string) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := &proc{t: t, name: "node_exporter", out: &syncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
			"--collector.cpu", "--collector.meminfo", "--collector.loadavg")
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start node_exporter: %v", err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.kill(syscall.SIGKILL) })
		u := "http://" + addr + "/metrics"
		var gone error
		testutil.WaitFor(t, 10*time.Second, "node_exporter to serve", func() error {
			if gone = p.exited(); gone != nil {
				return nil
			}
			code, err := httpGet(u)
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d", code)
			}
			return err
		})
		if gone == nil {
			return u
		}
		if attempt == 2 { // the port was taken between Close and the exporter's bind
			t.Fatalf("node_exporter: %v\n%s", gone, p.out.String())
		}
	}
}

// exporterValue reads the value of the series line (name{labels} as the
// exporter writes it) from the exposition at u.
func exporterValue(t *testing.T, u, series string) float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("%s not served at %s", series, u)
	return 0
}

// vector runs an instant PromQL query on the hub and returns each
// series' labels and value.
func vector(t *testing.T, hub *hubProc, q string) ([]map[string]string, []float64) {
	t.Helper()
	a := promQuery(t, "http://"+hub.http, "/api/v1/query", url.Values{"query": {q}})
	if a.HTTPStatus != 200 || a.Data.ResultType != "vector" {
		t.Fatalf("query %s: status %d, result type %q", q, a.HTTPStatus, a.Data.ResultType)
	}
	var ls []map[string]string
	var vs []float64
	for _, r := range a.Data.Result {
		var s struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r, &s); err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		ls, vs = append(ls, s.Metric), append(vs, v)
	}
	return ls, vs
}

// one runs q and returns its single value, or an error while there is not
// exactly one series.
func one(t *testing.T, hub *hubProc, q string) (float64, error) {
	t.Helper()
	_, vs := vector(t, hub, q)
	if len(vs) != 1 {
		return 0, fmt.Errorf("%s: %d series", q, len(vs))
	}
	return vs[0], nil
}

// TestScrapeNodeExporter: an agent scrapes a real node_exporter, an
// application's client_golang histogram and a dead port; PromQL over the
// hub sees node_exporter's series with machine, job and instance, at the
// values node_exporter serves, rate() and histogram_quantile() work as on
// Prometheus, the dead target has up 0 and its error counted, and a hub
// killed and restarted loses no scrape (the samples travel the agent's
// acknowledged, replayed stream).
func TestScrapeNodeExporter(t *testing.T) {
	neURL := startNodeExporter(t, needNodeExporter(t))

	reg := prometheus.NewRegistry()
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "app_latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1, 10}})
	rate := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app:requests:rate5m", Help: "A recording-rule style name."})
	rate.Set(42.5)
	reg.MustRegister(lat, rate)
	// A large exporter: more series than the default sample_limit, each
	// with several labels, all accepted by the hub under its default caps.
	big := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		bw := bufio.NewWriter(w)
		fmt.Fprintln(bw, "# TYPE big_series gauge")
		for i := range bigSeries {
			fmt.Fprintf(bw, "big_series{shard=\"%d\",pool=\"p%d\",role=\"r%d\"} %d\n", i, i%7, i%3, i)
		}
		_ = bw.Flush()
	})
	bigSrv := httptest.NewServer(big)
	defer bigSrv.Close()
	for _, v := range []float64{0.05, 0.05, 0.05, 0.05, 0.5, 0.5, 0.5, 0.5} {
		lat.Observe(v)
	}
	app := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()

	dir := t.TempDir()
	hub := startHub(t, dir, "", "")
	startAgent(t, hub, "scraped",
		"--scrape", neURL+";job=node;interval=1s",
		"--scrape", app.URL+"/metrics;job=app;interval=1s",
		"--scrape", dead+";job=broken;interval=1s",
		"--scrape", bigSrv.URL+"/metrics;job=big;interval=2s;sample_limit=20000")

	const m = `machine="scraped"`
	testutil.WaitFor(t, 20*time.Second, "node_exporter series in the hub", func() error {
		ls, _ := vector(t, hub, `node_cpu_seconds_total{`+m+`,job="node",mode="idle"}`)
		if len(ls) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	ls, _ := vector(t, hub, `node_cpu_seconds_total{`+m+`,job="node",mode="idle"}`)
	inst := strings.TrimSuffix(strings.TrimPrefix(neURL, "http://"), "/metrics")
	if ls[0]["instance"] != inst || ls[0]["cpu"] == "" {
		t.Errorf("labels %v, want instance %s and cpu", ls[0], inst)
	}

	// A constant gauge equals what node_exporter serves; a counter is at
	// most a scrape interval (plus the query's latency) behind.
	if got, err := one(t, hub, `node_memory_MemTotal_bytes{`+m+`,job="node"}`); err != nil || got != exporterValue(t, neURL, "node_memory_MemTotal_bytes") {
		t.Errorf("node_memory_MemTotal_bytes: hub %v (%v), node_exporter %v", got, err, exporterValue(t, neURL, "node_memory_MemTotal_bytes"))
	}
	got, err := one(t, hub, `node_cpu_seconds_total{`+m+`,job="node",cpu="0",mode="idle"}`)
	served := exporterValue(t, neURL, `node_cpu_seconds_total{cpu="0",mode="idle"}`)
	if err != nil || got > served || served-got > 3 {
		t.Errorf("node_cpu_seconds_total{cpu=0,mode=idle}: hub %v (%v), node_exporter now %v", got, err, served)
	}

	testutil.WaitFor(t, 15*time.Second, "rate() over scraped counters", func() error {
		_, vs := vector(t, hub, `sum(rate(node_cpu_seconds_total{`+m+`,job="node"}[5s]))`)
		if len(vs) != 1 || vs[0] <= 0 {
			return fmt.Errorf("rate %v", vs)
		}
		return nil
	})
	// 4 of 8 observations ≤ 0.1, all ≤ 1: the 0.75 quantile is
	// interpolated to 0.1 + 0.9 × 2/4 = 0.55, as Prometheus computes it.
	if q, err := one(t, hub, `histogram_quantile(0.75, app_latency_seconds_bucket{`+m+`,job="app"})`); err != nil || math.Abs(q-0.55) > 1e-9 {
		t.Errorf("histogram_quantile(0.75) = %v (%v), want 0.55", q, err)
	}
	if n, err := one(t, hub, `app_latency_seconds_count{`+m+`,job="app"}`); err != nil || n != 8 {
		t.Errorf("app_latency_seconds_count = %v (%v), want 8", n, err)
	}
	if v, err := one(t, hub, `app:requests:rate5m{`+m+`,job="app"}`); err != nil || v != 42.5 {
		t.Errorf("app:requests:rate5m = %v (%v), want 42.5", v, err)
	}
	testutil.WaitFor(t, 20*time.Second, "every series of the large exporter", func() error {
		n, err := one(t, hub, `count(big_series{`+m+`,job="big"})`)
		if err == nil && n != bigSeries {
			err = fmt.Errorf("%v of %d series", n, bigSeries)
		}
		return err
	})

	for _, c := range []struct {
		q    string
		want func(float64) bool
	}{
		{`up{` + m + `,job="node"}`, func(v float64) bool { return v == 1 }},
		{`up{` + m + `,job="broken"}`, func(v float64) bool { return v == 0 }},
		{`scrape_errors_total{` + m + `,job="broken",reason="connect"}`, func(v float64) bool { return v >= 1 }},
		{`scrape_errors_total{` + m + `,job="node",reason="connect"}`, func(v float64) bool { return v == 0 }},
		{`scrape_samples_scraped{` + m + `,job="node"}`, func(v float64) bool { return v > 10 }},
	} {
		if v, err := one(t, hub, c.q); err != nil || !c.want(v) {
			t.Errorf("%s = %v (%v)", c.q, v, err)
		}
	}

	// Kill the hub; the agent keeps scraping into its buffer and replays
	// after the restart: up{job="node"} has a sample every second across
	// the outage.
	hub.kill(syscall.SIGKILL)
	killedAt := time.Now()
	time.Sleep(4 * time.Second)
	hub = startHub(t, dir, hub.http, hub.grpc)
	testutil.WaitFor(t, 40*time.Second, "the agent to catch up", func() error {
		ts := rawTimes(t, hub, `up{`+m+`,job="node"}[10s]`)
		if len(ts) == 0 || time.Since(time.UnixMilli(ts[len(ts)-1])) > 3*time.Second || ts[len(ts)-1] < killedAt.Add(5*time.Second).UnixMilli() {
			return fmt.Errorf("newest up sample %v (killed at %d)", ts, killedAt.UnixMilli())
		}
		return nil
	})
	window := time.Since(killedAt) + 5*time.Second
	ts := rawTimes(t, hub, fmt.Sprintf(`up{%s,job="node"}[%ds]`, m, int(window.Seconds())))
	if len(ts) == 0 || ts[0] >= killedAt.UnixMilli() || ts[len(ts)-1] < killedAt.Add(5*time.Second).UnixMilli() {
		t.Fatalf("up samples %v do not span the outage from %d", ts, killedAt.UnixMilli())
	}
	for i := 1; i < len(ts); i++ {
		if ts[i]-ts[i-1] != 1000 {
			t.Errorf("up{job=node}: samples at %s then %s: a gap across the hub's outage (killed at %s)",
				time.UnixMilli(ts[i-1]).Format(time.TimeOnly), time.UnixMilli(ts[i]).Format(time.TimeOnly), killedAt.Format(time.TimeOnly))
		}
	}
}

// bigSeries is how many series the large exporter serves.
const bigSeries = 15_000

// rawTimes runs a range-vector query for one series and returns its sample
// timestamps, ms since the epoch.
func rawTimes(t *testing.T, hub *hubProc, q string) []int64 {
	t.Helper()
	a := promQuery(t, "http://"+hub.http, "/api/v1/query", url.Values{"query": {q}})
	if a.HTTPStatus != 200 || a.Data.ResultType != "matrix" {
		t.Fatalf("query %s: status %d, result type %q", q, a.HTTPStatus, a.Data.ResultType)
	}
	if len(a.Data.Result) != 1 {
		return nil
	}
	var s struct {
		Values [][2]any `json:"values"`
	}
	if err := json.Unmarshal(a.Data.Result[0], &s); err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(s.Values))
	for i, v := range s.Values {
		f, ok := v[0].(float64)
		if !ok {
			t.Fatalf("timestamp %v", v[0])
		}
		out[i] = int64(math.Round(f * 1000))
	}
	return out
}
