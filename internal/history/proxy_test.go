package history

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
	"github.com/sysmonstm/sysmonstm/internal/web"
)

// proxyServer serves c's proxy routes.
func proxyServer(t *testing.T, c *Client) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for _, rt := range c.ProxyRoutes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// fetch does a request and returns status and body.
func fetch(t *testing.T, method, u string, form url.Values, header http.Header) (int, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if form != nil {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestProxyEqualsDirect: the PromQL API through the hub's proxy answers
// what the TSDB answers directly, errors (status and Prometheus error
// body) included, on VictoriaMetrics and Prometheus.
func TestProxyEqualsDirect(t *testing.T) {
	start, samples := testData(t)
	es := testEngines(t, samples)
	ts := func(d time.Duration) string { return strconv.FormatInt(start.Add(d).Unix(), 10) }
	reqs := []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/api/v1/query", url.Values{"query": {`sum by (cpu) (cpu_usage_percent{machine="m1"})`}, "time": {ts(time.Hour)}}},
		{"POST", "/api/v1/query", url.Values{"query": {`max_over_time(cpu_usage_percent[1h])`}, "time": {ts(2 * time.Hour)}}},
		{"POST", "/api/v1/query_range", url.Values{"query": {`avg(cpu_usage_percent)`}, "start": {ts(0)}, "end": {ts(time.Hour)}, "step": {"60"}}},
		{"GET", "/api/v1/series", url.Values{"match[]": {`{machine="m1"}`}, "start": {ts(0)}, "end": {ts(time.Hour)}}},
		{"GET", "/api/v1/labels", url.Values{"start": {ts(0)}, "end": {ts(time.Hour)}}},
		{"GET", "/api/v1/label/cpu/values", nil},
		{"GET", "/api/v1/query", url.Values{"query": {`sum(`}, "time": {ts(0)}}}, // 400 bad_data (422 on VictoriaMetrics)
		{"GET", "/api/v1/query_range", url.Values{"query": {`up`}}},              // 400: no start
	}
	for _, e := range es {
		p := proxyServer(t, newClient(t, e, nil))
		for _, r := range reqs {
			wantCode, want := fetch(t, r.method, e.url+r.path, r.form, nil)
			gotCode, got := fetch(t, r.method, p.URL+r.path, r.form, http.Header{"Authorization": {"Bearer hub-session"}, "Cookie": {"s=1"}})
			if gotCode != wantCode || !sameJSON(want, got) {
				t.Errorf("%s %s %s: proxy %d %.300s; direct %d %.300s", e.name, r.method, r.path, gotCode, got, wantCode, want)
			}
			if wantCode == 200 && len(want) < 36 {
				t.Errorf("%s %s: a near-empty answer proves little: %s", e.name, r.path, want)
			}
		}
	}
}

// sameJSON compares two answers as JSON values, ignoring VictoriaMetrics'
// per-request statistics.
func sameJSON(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	delete(x, "stats")
	delete(y, "stats")
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestAuth: VictoriaMetrics behind basic auth is read with the credentials
// file or the URL's user info, and refused without them (503, a hint,
// no secret in the message).
func TestAuth(t *testing.T) {
	bin := testutil.NeedBinary(t, "victoria-metrics", "apt-get install victoria-metrics")
	addr := testutil.FreeAddr(t)
	testutil.StartProcess(t, "victoria-metrics", bin, "http://"+addr+"/health",
		"-httpListenAddr", addr, "-storageDataPath", filepath.Join(t.TempDir(), "vm"), "-loggerLevel", "WARN",
		"-httpAuth.username", "hub", "-httpAuth.password", "s3cret")
	file := filepath.Join(t.TempDir(), "basic")
	if err := os.WriteFile(file, []byte("hub:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"query": {"vector(1)"}}
	for _, o := range []Options{{URL: "http://" + addr, BasicAuthFile: file}, {URL: "http://hub:s3cret@" + addr}} {
		p := proxyServer(t, newClient(t, engine{}, func(x *Options) { *x = o }))
		if code, body := fetch(t, "GET", p.URL+"/api/v1/query", q, nil); code != 200 {
			t.Errorf("%s: %d %s", o.URL, code, body)
		}
	}
	c := newClient(t, engine{url: "http://hub:wrong@" + addr}, nil)
	_, err := c.Query(t.Context(), testQuery())
	if !isUnavailable(err) || !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	if code, body := fetch(t, "GET", proxyServer(t, c).URL+"/api/v1/query", q, nil); code != 401 {
		t.Errorf("proxy with a wrong password: %d %s, want VictoriaMetrics' 401 passed through", code, body)
	}
}

// TestUnavailable: a TSDB that is down or never answers makes history and
// export answer 503 with a clear message within the timeout, the proxy
// 503 with errorType unavailable; the live view still answers.
func TestUnavailable(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	down := testutil.FreeAddr(t)
	for _, tc := range []struct{ url, want string }{
		{"http://" + down, "unreachable"},
		{"http://u:pw@" + hung.Addr().String(), "no answer within 300ms"},
	} {
		reg := prometheus.NewRegistry()
		c := newClient(t, engine{url: tc.url}, func(o *Options) { o.Timeout = 300 * time.Millisecond; o.Registerer = reg })
		lv, err := live.New(live.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := web.New(web.Options{Live: lv, History: c, Routes: c.ProxyRoutes()})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		for _, path := range []string{"/api/machines/m1/history?metric=cpu_usage_percent", "/api/export?machine=m1"} {
			began := time.Now()
			code, body := fetch(t, "GET", ts.URL+path, nil, nil)
			if code != http.StatusServiceUnavailable || !strings.Contains(string(body), tc.want) || strings.Contains(string(body), "pw") {
				t.Errorf("%s %s: %d %s", tc.url, path, code, body)
			}
			if d := time.Since(began); d > 10*time.Second {
				t.Errorf("%s: answered after %s", path, d)
			}
		}
		code, body := fetch(t, "GET", ts.URL+"/api/v1/query", url.Values{"query": {"up"}}, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"errorType":"unavailable"`) {
			t.Errorf("proxy: %d %s", code, body)
		}
		if code, body := fetch(t, "GET", ts.URL+"/api/machines", nil, nil); code != 200 {
			t.Errorf("live view: %d %s", code, body)
		}
		// history, export (the first request each) and the proxy
		if n := promtest.ToFloat64(c.requests.WithLabelValues("unavailable")); n != 3 {
			t.Errorf("sysmonstm_history_requests_total{result=\"unavailable\"} = %v, want 3", n)
		}
		ts.Close()
		srv.Close()
	}
}
