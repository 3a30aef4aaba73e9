package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestRemoteWriteFromPrometheus: a real Prometheus 2.42 scrapes itself
// every second and remote-writes into the hub with an agent token; the
// hub's query API then answers instant, range, aggregation, rate,
// histogram_quantile, offset and invalid queries exactly as that
// Prometheus answers them on its own data, promtool query works against
// both alike, and the scraped target is a dashboard machine of source
// remote_write.
func TestRemoteWriteFromPrometheus(t *testing.T) {
	prom, promtool := needPrometheus(t)
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", "rw-admin-pw")
	hub := startHub(t, t.TempDir(), "", "")
	hubURL := "http://" + hub.http

	dir := t.TempDir()
	var promAddr string
	promURL := runPrometheusAt(t, prom, filepath.Join(dir, "prometheus.yml"), filepath.Join(dir, "data"), func(addr string) string {
		promAddr = addr
		return fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    authorization: {credentials: %q}
    queue_config: {batch_send_deadline: 200ms, retry_on_http_429: true, min_backoff: 50ms}
    metadata_config: {send: false}
`, addr, hubURL, hub.token)
	})

	// Query at a scrape's timestamp + 500 ms, so no range boundary falls on
	// a sample (Prometheus 2's closed and the hub's left-open range
	// selectors then hold the same samples), once the hub has 25 s of
	// samples and a few more scrapes after the query time.
	var first, at float64
	testutil.WaitFor(t, 90*time.Second, "25 s of remote-written samples in the hub", func() error {
		a := promQuery(t, hubURL, "/api/v1/query", url.Values{"query": {`timestamp(up{job="prometheus"})`}})
		if len(a.Data.Result) != 1 {
			return fmt.Errorf("hub answers %d series for up", len(a.Data.Result))
		}
		var s struct{ Value [2]any }
		if err := json.Unmarshal(a.Data.Result[0], &s); err != nil {
			return err
		}
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if first == 0 {
			first = v
		}
		if v-first < 30 {
			return fmt.Errorf("%.0f s of samples", v-first)
		}
		at = v - 3 + 0.5
		return nil
	})
	atS := strconv.FormatFloat(at, 'f', 3, 64)
	start := strconv.FormatFloat(at-12, 'f', 3, 64)

	queries := []string{
		`up`,
		`prometheus_tsdb_head_series`,
		`prometheus_http_requests_total{handler="/metrics"}`,
		`sum by (job) (scrape_samples_scraped)`,
		`count by (__name__) ({__name__=~"prometheus_tsdb_.*"})`,
		`rate(prometheus_tsdb_head_samples_appended_total[5s])`,
		`sum by (code) (rate(prometheus_http_requests_total[6s]))`,
		`histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))`,
		`histogram_quantile(0.5, rate(prometheus_http_request_duration_seconds_bucket{handler="/metrics"}[10s]))`,
		`prometheus_tsdb_head_samples_appended_total offset 5s`,
		`max_over_time(go_goroutines[8s])`,
		`topk(3, scrape_duration_seconds)`,
	}
	cmp := func(path string, params url.Values) {
		t.Helper()
		sameAnswer(t, path, params, promQuery(t, hubURL, path, params), promQuery(t, promURL, path, params))
	}
	for _, q := range queries {
		cmp("/api/v1/query", url.Values{"query": {q}, "time": {atS}})
		cmp("/api/v1/query_range", url.Values{"query": {q}, "start": {start}, "end": {atS}, "step": {"2s"}})
	}
	for _, q := range []string{`sum(`, `rate(up)`} {
		want := promQuery(t, promURL, "/api/v1/query", url.Values{"query": {q}, "time": {atS}})
		got := promQuery(t, hubURL, "/api/v1/query", url.Values{"query": {q}, "time": {atS}})
		if got.HTTPStatus != want.HTTPStatus || got.Status != "error" || got.ErrorType != want.ErrorType {
			t.Errorf("invalid %q: hub %d %s %s, prometheus %d %s %s", q, got.HTTPStatus, got.Status, got.ErrorType, want.HTTPStatus, want.Status, want.ErrorType)
		}
	}

	// promtool 2.42 has no --http.config.file: it authenticates to the hub
	// with the admin's password as HTTP Basic in the URL.
	authURL := strings.Replace(hubURL, "http://", "http://admin:rw-admin-pw@", 1)
	for _, args := range [][]string{
		{"query", "instant", "--time=" + atS, "URL", `sum by (job) (rate(prometheus_http_requests_total[6s]))`},
		{"query", "range", "--start=" + start, "--end=" + atS, "--step=2s", "URL", `prometheus_tsdb_head_series`},
	} {
		want, got := runPromtool(t, promtool, args, promURL), runPromtool(t, promtool, args, authURL)
		if got != want || !strings.Contains(got, `job="prometheus"`) && !strings.Contains(got, "prometheus_tsdb_head_series") {
			t.Errorf("promtool %v:\n  hub:\n%s\n  prometheus:\n%s", args, got, want)
		}
	}

	// The scraped target is a machine of the dashboard, pushed by remote
	// write, with its live values.
	var m machine
	if code := getJSON(t, hubURL+"/api/machines/"+url.PathEscape(promAddr), &m); code != 200 || m.Info["source"] != "remote_write" {
		t.Fatalf("machine %s: %d %+v", promAddr, code, m)
	}
	if v, ok := m.value("up", "job", "prometheus"); !ok || v != 1 {
		t.Errorf("live up{job=prometheus} = %v %v, want 1", v, ok)
	}
	// Its history (the dashboard's charts) selects its series by instance.
	var hist struct {
		Series []struct {
			Labels map[string]string `json:"labels"`
			Points [][]any           `json:"points"`
		} `json:"series"`
	}
	histURL := fmt.Sprintf("%s/api/machines/%s/history?metric=up&from=%.0f&to=%.0f&step=1s", hubURL, url.PathEscape(promAddr), first, at)
	if code := getJSON(t, histURL, &hist); code != 200 || len(hist.Series) != 1 || hist.Series[0].Labels["instance"] != promAddr || len(hist.Series[0].Points) < 20 {
		t.Errorf("history of up: %d %+v", code, hist)
	}
	if v := promValue(t, hubURL+"/metrics", `sysmonstm_remote_write_requests_total{code="204"}`); v < 10 {
		t.Errorf("sysmonstm_remote_write_requests_total{code=204} = %v", v)
	}
}
