package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// exportRow is one point the fake history exports.
type exportRow struct {
	name string
	ls   metric.Labels
	t    int64
	v    float64
}

// fakeHistory stands in for the store: fixed answers, recorded queries.
type fakeHistory struct {
	mu        sync.Mutex
	result    *store.Result
	err       error
	rows      []exportRow
	exportErr error // returned after the rows
	queries   []store.Query
	panicMsg  string
}

func (f *fakeHistory) Query(_ context.Context, q store.Query) (*store.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.result, f.err
}

func (f *fakeHistory) Export(_ context.Context, q store.Query, fn store.ExportFunc) error {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	rows, err := f.rows, f.exportErr
	f.mu.Unlock()
	for _, r := range rows {
		if q.Metric != "" && r.name != q.Metric {
			continue
		}
		if err := fn(r.name, r.ls, r.t, r.v); err != nil {
			return err
		}
	}
	return err
}

func (f *fakeHistory) lastQuery(t *testing.T) store.Query {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		t.Fatal("history not queried")
	}
	return f.queries[len(f.queries)-1]
}

// clientErr is a store error that is the caller's fault.
type clientErr struct{ msg string }

func (e clientErr) Error() string     { return e.msg }
func (e clientErr) ClientError() bool { return true }

type env struct {
	live    *live.State
	hist    *fakeHistory
	reg     *prometheus.Registry
	srv     *Server
	ts      *httptest.Server
	ready   bool
	readyMu sync.Mutex
}

const hostile = "<script>alert(1)</script>\",;\n=cmd|'"

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := newBareEnv(t, mod)
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(func() {
		e.srv.Close() // first: WebSocket handlers say goodbye (idempotent)
		e.ts.Close()
	})
	return e
}

// newBareEnv is newEnv without a listener: the caller serves e.srv's
// handler where it likes (an in-memory listener inside a synctest bubble).
func newBareEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := &env{hist: &fakeHistory{}, reg: prometheus.NewRegistry(), ready: true}
	lv, err := live.New(live.Options{Registerer: e.reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e.live = lv
	opts := Options{
		Live: lv, History: e.hist, Gatherer: e.reg, Registerer: e.reg,
		Ready: func() error {
			e.readyMu.Lock()
			defer e.readyMu.Unlock()
			if e.ready {
				return nil
			}
			return errors.New("not ready: disk full: 3.0 MiB free, below the 256.0 MiB reserve")
		},
		Now: func() time.Time { return now },
		Ingest: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]int{"accepted": 1})
		}),
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Close)

	lv.Connect(live.MachineInfo{
		ID: "web-1", Hostname: "web-1.example", Labels: metric.Labels{{Name: "env", Value: "prod"}},
		OS: "linux", CPUCores: 4, MemoryTotalBytes: 8 << 30, IntervalMs: 1000,
	})
	lv.Update("web-1", now.UnixMilli(), []*live.Series{
		live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}}),
		live.NewSeries("load1", nil),
	}, []float64{12.5, 0.42})
	lv.Connect(live.MachineInfo{ID: "evil", Hostname: hostile, Labels: metric.Labels{{Name: "note", Value: hostile}}})
	return e
}

// get fetches path and decodes the JSON body into v (when not nil).
func (e *env) get(t *testing.T, path string, v any) (*http.Response, []byte) {
	t.Helper()
	return e.do(t, http.MethodGet, path, v)
}

func (e *env) do(t *testing.T, method, path string, v any) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return res, body
}

// wantError checks a JSON error answer.
func (e *env) wantError(t *testing.T, path string, status int, contains string) {
	t.Helper()
	var body map[string]any
	res, raw := e.get(t, path, &body)
	if res.StatusCode != status {
		t.Errorf("GET %s: status %d, want %d (%s)", path, res.StatusCode, status, raw)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	msg, _ := body["error"].(string)
	if len(body) != 1 || msg == "" || !strings.Contains(msg, contains) {
		t.Errorf("GET %s: body %s, want an error containing %q", path, raw, contains)
	}
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t, nil)
	var body map[string]string
	if res, _ := e.get(t, "/health", &body); res.StatusCode != 200 || body["status"] != "ok" {
		t.Fatalf("/health: %d %v", res.StatusCode, body)
	}
	if res, _ := e.get(t, "/ready", &body); res.StatusCode != 200 || body["status"] != "ready" {
		t.Fatalf("/ready: %d %v", res.StatusCode, body)
	}
	e.readyMu.Lock()
	e.ready = false
	e.readyMu.Unlock()
	e.wantError(t, "/ready", http.StatusServiceUnavailable, "not ready: disk full: 3.0 MiB free")
}

func TestMachines(t *testing.T) {
	e := newEnv(t, nil)
	var list []map[string]any
	res, raw := e.get(t, "/api/machines", &list)
	if res.StatusCode != 200 || len(list) != 2 {
		t.Fatalf("status %d body %s", res.StatusCode, raw)
	}
	if list[0]["id"] != "evil" || list[1]["id"] != "web-1" {
		t.Fatalf("not sorted by id: %s", raw)
	}
	m := list[1]
	for _, k := range []string{"id", "hostname", "labels", "online", "last_seen", "info"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing: %v", k, m)
		}
	}
	if _, ok := m["metrics"]; ok {
		t.Errorf("list carries metrics: %v", m)
	}
	if m["last_seen"] != "2026-11-22T12:00:00Z" || m["online"] != true {
		t.Errorf("machine = %v", m)
	}
	if _, err := time.Parse(time.RFC3339, m["last_seen"].(string)); err != nil {
		t.Error(err)
	}
	if labels := m["labels"].(map[string]any); labels["env"] != "prod" {
		t.Errorf("labels = %v", labels)
	}
	if info := m["info"].(map[string]any); info["os"] != "linux" || info["cpu_cores"] != 4.0 {
		t.Errorf("info = %v", info)
	}
	// Hostile strings travel escaped and decode back intact.
	if strings.Contains(string(raw), "<script>") {
		t.Errorf("markup not escaped in %s", raw)
	}
	if list[0]["hostname"] != hostile {
		t.Errorf("hostname = %q", list[0]["hostname"])
	}
}

func TestMachinesEmpty(t *testing.T) {
	lv, _ := live.New(live.Options{})
	srv, err := New(Options{Live: lv, History: &fakeHistory{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/machines", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}

func TestMachine(t *testing.T) {
	e := newEnv(t, nil)
	var m map[string]any
	res, raw := e.get(t, "/api/machines/web-1", &m)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	metrics, ok := m["metrics"].([]any)
	if !ok || len(metrics) != 2 {
		t.Fatalf("metrics = %s", raw)
	}
	first := metrics[0].(map[string]any)
	if first["name"] != "cpu_usage_percent" || first["value"] != 12.5 || first["labels"].(map[string]any)["cpu"] != "total" {
		t.Fatalf("first metric = %v", first)
	}
	var ev map[string]any
	if _, raw := e.get(t, "/api/machines/evil", &ev); !strings.Contains(string(raw), `"metrics":[]`) {
		t.Fatalf("machine without values: %s", raw)
	}
	e.wantError(t, "/api/machines/nope", http.StatusNotFound, "unknown machine")
	e.wantError(t, "/api/machines/", http.StatusNotFound, "")
	e.wantError(t, "/api/machines/%3Cscript%3E", http.StatusNotFound, "unknown machine")
}

func TestHistory(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.result = &store.Result{
		Tier: store.TierRaw, Step: 15 * time.Second,
		Series: []store.Series{{
			Labels: metric.Labels{{Name: "cpu", Value: "total"}, {Name: "machine", Value: "web-1"}},
			Points: []store.Point{{T: 1000, Avg: 1.5, Min: 1.5, Max: 1.5, Count: 1}, {T: 16000, Avg: 2, Min: 2, Max: 2, Count: 1}},
		}},
	}
	var out struct {
		Metric, Machine, Tier string
		Step                  float64
		Series                []struct {
			Labels   map[string]string
			Points   [][2]float64
			Min, Max [][2]float64
		}
	}
	res, raw := e.get(t, fmt.Sprintf("/api/machines/web-1/history?metric=cpu_usage_percent&from=2026-11-22T11:00:00Z&to=%d&step=15s", now.Unix()), &out)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	q := e.hist.lastQuery(t)
	if q.Metric != "cpu_usage_percent" || q.Machine != "web-1" || q.Step != 15*time.Second ||
		!q.From.Equal(time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)) || !q.To.Equal(now) {
		t.Fatalf("query = %+v", q)
	}
	if out.Metric != "cpu_usage_percent" || out.Machine != "web-1" || out.Tier != "raw" || out.Step != 15 || len(out.Series) != 1 {
		t.Fatalf("out = %s", raw)
	}
	s := out.Series[0]
	if s.Labels["cpu"] != "total" || len(s.Points) != 2 || s.Points[1] != [2]float64{16000, 2} {
		t.Fatalf("series = %s", raw)
	}
	if strings.Contains(string(raw), `"min"`) || strings.Contains(string(raw), `"max"`) {
		t.Fatalf("raw single samples carry a band: %s", raw)
	}

	// Rollup tier: min/max band.
	e.hist.result = &store.Result{Tier: store.Tier1m, Step: time.Minute, Series: []store.Series{{
		Labels: metric.Labels{{Name: "machine", Value: "web-1"}},
		Points: []store.Point{{T: 60000, Avg: 2, Min: 1, Max: 9, Count: 60}},
	}}}
	res, raw = e.get(t, "/api/machines/web-1/history?metric=load1", &out)
	if res.StatusCode != 200 || out.Tier != "1m" || out.Step != 60 {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	if s := out.Series[0]; s.Min[0] != [2]float64{60000, 1} || s.Max[0] != [2]float64{60000, 9} || s.Points[0] != [2]float64{60000, 2} {
		t.Fatalf("band = %s", raw)
	}
	// Defaults: to=now, from=to-1h, step 0 (store picks).
	q = e.hist.lastQuery(t)
	if !q.To.Equal(now) || !q.From.Equal(now.Add(-time.Hour)) || q.Step != 0 {
		t.Fatalf("defaults: %+v", q)
	}
	// step=0 lets the store pick.
	if res, raw := e.get(t, "/api/machines/web-1/history?metric=load1&step=0", nil); res.StatusCode != 200 {
		t.Fatalf("step=0: %d %s", res.StatusCode, raw)
	}
	e.get(t, "/api/machines/web-1/history?metric=load1&step=30", nil)
	if q = e.hist.lastQuery(t); q.Step != 30*time.Second {
		t.Fatalf("step in seconds: %+v", q)
	}
	// Relative times.
	e.get(t, "/api/machines/web-1/history?metric=load1&from=-15m&to=now", nil)
	if q = e.hist.lastQuery(t); !q.From.Equal(now.Add(-15*time.Minute)) || !q.To.Equal(now) {
		t.Fatalf("relative: %+v", q)
	}
	// Empty result is an empty array, not null.
	e.hist.result = &store.Result{Tier: store.TierRaw, Step: time.Second}
	if _, raw = e.get(t, "/api/machines/web-1/history?metric=nothing", nil); !strings.Contains(string(raw), `"series":[]`) {
		t.Fatalf("empty: %s", raw)
	}
}

func TestHistoryErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.result = &store.Result{Tier: store.TierRaw}
	base := "/api/machines/web-1/history?metric=load1"
	e.wantError(t, "/api/machines/nope/history?metric=load1", 404, "unknown machine")
	e.wantError(t, "/api/machines/web-1/history", 400, "metric")
	e.wantError(t, base+"&from=yesterday", 400, "from")
	e.wantError(t, base+"&to=2026-13-01T00:00:00Z", 400, "to")
	e.wantError(t, base+fmt.Sprintf("&from=%d", now.UnixMilli()), 400, "milliseconds")
	e.wantError(t, base+"&from=now&to=-1h", 400, "after")
	e.wantError(t, base+"&step=-5s", 400, "step")
	e.wantError(t, base+"&step=fast", 400, "step")
	e.wantError(t, base+"&from=-30d&step=1s", 400, "points")

	e.hist.err = clientErr{"query: too many series"}
	e.wantError(t, base, 400, "too many series")
	e.hist.err = fmt.Errorf("read chunk /var/lib/secret: %w", errors.New("io error"))
	e.wantError(t, base, 500, "query failed")
	if _, raw := e.get(t, base, nil); strings.Contains(string(raw), "secret") {
		t.Fatalf("internal error leaked: %s", raw)
	}
	e.hist.err = context.DeadlineExceeded
	e.wantError(t, base, 503, "timed out")
	e.hist.err = fmt.Errorf("wrapped: %w", unavailableErr{"history TSDB http://vm:8428: unreachable"})
	e.wantError(t, base, 503, "history TSDB http://vm:8428: unreachable")
}

// unavailableErr is a history backend that cannot answer now.
type unavailableErr struct{ msg string }

func (e unavailableErr) Error() string     { return e.msg }
func (e unavailableErr) Unavailable() bool { return true }

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.panicMsg = "boom at /secret/path"
	e.wantError(t, "/api/machines/web-1/history?metric=load1", 500, "internal error")
	if _, raw := e.get(t, "/api/machines/web-1/history?metric=load1", nil); strings.Contains(string(raw), "boom") || strings.Contains(string(raw), "goroutine") {
		t.Fatalf("panic leaked: %s", raw)
	}
	// The server keeps serving.
	if res, _ := e.get(t, "/health", nil); res.StatusCode != 200 {
		t.Fatal("server dead after panic")
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t, nil)
	e.wantError(t, "/nope", 404, "not found")
	e.wantError(t, "/api/machines/web-1/extra/path", 404, "not found")
	e.wantError(t, "/api/v1/query", 404, "not found") // reserved, not served yet
	res, raw := e.do(t, http.MethodPost, "/health", nil)
	if res.StatusCode != 405 || res.Header.Get("Allow") == "" || !strings.Contains(string(raw), `"error":"method not allowed"`) {
		t.Fatalf("POST /health: %d %v %s", res.StatusCode, res.Header, raw)
	}
	res, raw = e.do(t, http.MethodPut, "/api/machines/web-1", nil)
	if res.StatusCode != 405 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("PUT machine: %d %s", res.StatusCode, raw)
	}
}

func TestIngestMounted(t *testing.T) {
	e := newEnv(t, nil)
	res, raw := e.do(t, http.MethodPost, "/api/v1/ingest", nil)
	if res.StatusCode != 200 || !strings.Contains(string(raw), `"accepted":1`) {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	if res, _ := e.do(t, http.MethodGet, "/api/v1/ingest", nil); res.StatusCode != 405 {
		t.Fatalf("GET ingest: %d", res.StatusCode)
	}
	e2 := newEnv(t, func(o *Options) { o.Ingest = nil })
	e2.wantError(t, "/api/v1/ingest", 404, "not found")
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	res, raw := e.get(t, "/metrics", nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, name := range []string{"sysmonstm_connected_agents 2", "sysmonstm_websocket_clients 0", "sysmonstm_websocket_dropped_clients_total 0"} {
		if !strings.Contains(string(raw), name) {
			t.Errorf("/metrics lacks %q:\n%s", name, raw)
		}
	}
}

func TestIndexPage(t *testing.T) {
	e := newEnv(t, nil)
	res, raw := e.get(t, "/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); csp != CSP {
		t.Fatalf("CSP = %q", csp)
	}
	if !strings.Contains(string(raw), `<script src="/app.js"></script>`) || strings.Count(string(raw), "<script") != 1 {
		t.Fatalf("index must load app.js and have no inline script:\n%s", raw)
	}
	for _, page := range []string{"/explore", "/explore?q=up&range=1h"} {
		res, body := e.get(t, page, nil)
		if res.StatusCode != 200 || string(body) != string(raw) {
			t.Errorf("%s: status %d, want the index page", page, res.StatusCode)
		}
	}
	res, raw = e.get(t, "/app.js", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/app.js: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(string(raw), "innerHTML") || !strings.Contains(string(raw), "textContent") {
		t.Fatal("app.js must render with textContent only")
	}
}

func TestNewValidates(t *testing.T) {
	lv, _ := live.New(live.Options{})
	if _, err := New(Options{History: &fakeHistory{}}); err == nil {
		t.Error("no Live accepted")
	}
	if _, err := New(Options{Live: lv}); err == nil {
		t.Error("no History accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Live: lv, History: &fakeHistory{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Live: lv, History: &fakeHistory{}, Registerer: reg}); err == nil {
		t.Error("double registration accepted")
	}
}

func TestEveryResponseCarriesSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/", "/api/machines", "/api/nope", "/health", "/ui/js/dom.js"} {
		res, _ := e.get(t, path, nil)
		h := res.Header
		if h.Get("Content-Security-Policy") != CSP || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s (%d): security headers missing: %v", path, res.StatusCode, h)
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || strings.Contains(CSP, "unsafe") {
			t.Errorf("%s: CSP %q", path, h.Get("Content-Security-Policy"))
		}
	}
}
