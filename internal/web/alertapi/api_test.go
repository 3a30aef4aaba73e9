package alertapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/alert"
	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// apiServer serves the API over h's engine as user "alice" (admin).
func apiServer(t *testing.T, h *harness) *httptest.Server {
	t.Helper()
	api, err := New(Options{Rules: h.e, Alerts: h.e, Silences: h.e, Notifiers: h.e, Sender: h.opts.Sender})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range api.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithPrincipal(r.Context(), auth.Principal{User: "alice", Role: auth.RoleAdmin})
		mux.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// call sends a request and decodes the JSON answer into out (when not
// nil); it returns the status and the raw body.
func call(t *testing.T, method, url, body string, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: error without JSON content type: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

func expect(t *testing.T, method, url, body string, status int, contains string) {
	t.Helper()
	code, b := call(t, method, url, body, nil)
	if code != status || !strings.Contains(b, contains) {
		t.Fatalf("%s %s %s: %d %s, want %d containing %q", method, url, body, code, b, status, contains)
	}
}

func TestRulesAPI(t *testing.T) {
	h := newHarness(t, alert.Options{})
	srv := apiServer(t, h)
	u := srv.URL + "/api/rules"

	var created alert.Rule
	code, body := call(t, "POST", u, `{"name":"Root disk","metric":"filesystem_usage_percent{mountpoint=\"/\"}","op":">","threshold":90,"clear":85,"for":"5m","severity":"critical","machines":["web-*"]}`, &created)
	if code != 201 || created.ID == "" || created.Metric != "filesystem_usage_percent" || created.Matchers["mountpoint"] != "/" || created.CreatedAt.IsZero() {
		t.Fatalf("create: %d %s", code, body)
	}
	var raw map[string]any
	json.Unmarshal([]byte(body), &raw)
	for _, k := range []string{"id", "name", "kind", "metric", "matchers", "machines", "machine_labels", "op", "threshold", "clear", "for", "aggregation", "severity", "description", "notifiers", "enabled", "builtin", "provisioned", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("rule JSON lacks %q: %s", k, body)
		}
	}
	var list []alert.Rule
	if code, _ := call(t, "GET", u, "", &list); code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %+v", code, list)
	}
	var got alert.Rule
	call(t, "GET", u+"/"+created.ID, "", &got)
	if got.Name != "Root disk" || got.Clear == nil || *got.Clear != 85 {
		t.Fatalf("get: %+v", got)
	}

	// Validation errors name the field.
	expect(t, "POST", u, `{"name":"x","metric":"cpu","op":">"}`, 400, `"error":"threshold: required`)
	expect(t, "POST", u, `{"name":"x","metric":"cpu","op":">","threshold":1,"notifiers":["nope"]}`, 400, `notifiers: unknown notifier \"nope\"`)
	expect(t, "POST", u, `not json`, 400, `body: invalid JSON`)
	expect(t, "POST", u, `{"name":"x","metric":"cpu","op":">","threshold":1,"id":"`+created.ID+`"}`, 409, "is taken")
	expect(t, "POST", u, `{"name":"`+strings.Repeat("x", 300<<10)+`"}`, 413, "larger than")
	code, _ = call(t, "POST", u, "", nil)
	if code != 400 {
		t.Fatalf("empty body: %d", code)
	}

	// PUT replaces; the id in the body must match.
	var upd alert.Rule
	code, body = call(t, "PUT", u+"/"+created.ID, `{"name":"Root disk","metric":"filesystem_usage_percent","matchers":{"mountpoint":"/"},"op":">","threshold":95,"severity":"warning"}`, &upd)
	if code != 200 || upd.Threshold != 95 || upd.ID != created.ID || !upd.CreatedAt.Equal(created.CreatedAt) || upd.Clear != nil {
		t.Fatalf("put: %d %s", code, body)
	}
	expect(t, "PUT", u+"/"+created.ID, `{"id":"other","name":"x","metric":"cpu","op":">","threshold":1}`, 400, "id: \\\"other\\\" does not match")
	expect(t, "PUT", u+"/nope", `{"name":"x","metric":"cpu","op":">","threshold":1}`, 404, `rule \"nope\" not found`)
	expect(t, "DELETE", u+"/nope", "", 404, "not found")
	expect(t, "GET", u+"/nope", "", 404, "not found")
	if code, _ := call(t, "DELETE", u+"/"+created.ID, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	call(t, "GET", u, "", &list)
	if len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
}

func TestPreviewAPI(t *testing.T) {
	h := newHarness(t, alert.Options{})
	srv := apiServer(t, h)
	for i, m := range []string{"web-1", "web-2", "db-1"} {
		h.live.Connect(live.MachineInfo{ID: m, Labels: metric.Labels{{Name: "env", Value: "prod"}}})
		if m != "db-1" {
			h.observe(m, h.series("cpu_usage_percent", "cpu", "total"), float64(50+40*i))
		}
	}
	var p alert.Preview
	code, body := call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"cpu_usage_percent{cpu=\"total\"}","op":">","threshold":80,"machine_labels":{"env":"prod"}}`, &p)
	if code != 200 || p.Machines != 3 || len(p.Matches) != 3 || p.Truncated {
		t.Fatalf("preview: %d %s", code, body)
	}
	states := map[string]string{}
	for _, m := range p.Matches {
		states[m.Machine] = m.State
	}
	if states["web-1"] != "ok" || states["web-2"] != "would fire" || states["db-1"] != "no data" {
		t.Fatalf("preview states %v", states)
	}
	if !strings.Contains(body, `"value":null`) || !strings.Contains(body, `"labels":{"cpu":"total"}`) {
		t.Fatalf("preview body %s", body)
	}
	expect(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"cpu","op":"!","threshold":1}`, 400, "op: ")
	// Offline preview.
	h.clk.Add(2 * time.Minute)
	h.observe("web-1", h.series("cpu_usage_percent", "cpu", "total"), 1)
	code, body = call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"o","kind":"offline","for":"1m","machines":["web-*"]}`, &p)
	if code != 200 || p.Machines != 2 || p.Matches[0].State != "ok" || p.Matches[1].State != "would fire" {
		t.Fatalf("offline preview %d %s", code, body)
	}
	// The list is capped at 500 matches.
	for i := 0; i < 520; i++ {
		h.observe("big", h.series("x", "i", strings.Repeat("a", i%30)+string(rune('a'+i%26))+strings.Repeat("z", i/26)), 1)
	}
	call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"x","op":">","threshold":0}`, &p)
	if len(p.Matches) != 500 || !p.Truncated {
		t.Fatalf("cap: %d matches truncated %v", len(p.Matches), p.Truncated)
	}
}

func TestAlertsAPI(t *testing.T) {
	h := newHarness(t, alert.Options{})
	srv := apiServer(t, h)
	h.createRule(`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90,"severity":"critical"}`)
	h.createRule(`{"id":"mem","name":"mem","metric":"mem","op":">","threshold":90,"for":"1h"}`)
	h.observe("web-1", h.series("cpu"), 95)
	h.observe("web-2", h.series("cpu"), 95)
	h.observe("web-1", h.series("mem"), 95)
	h.step()
	u := srv.URL + "/api/alerts"

	var as []alert.Alert
	call(t, "GET", u, "", &as)
	if len(as) != 3 || as[0].State != alert.StateFiring || as[2].State != alert.StatePending {
		t.Fatalf("default list (firing then pending): %+v", as)
	}
	call(t, "GET", u+"?state=firing&machine=web-2", "", &as)
	if len(as) != 1 || as[0].Machine != "web-2" {
		t.Fatalf("filtered: %+v", as)
	}
	call(t, "GET", u+"?severity=warning", "", &as)
	if len(as) != 1 || as[0].RuleID != "mem" {
		t.Fatalf("severity filter: %+v", as)
	}
	call(t, "GET", u+"?rule=cpu&state=pending", "", &as)
	if len(as) != 0 {
		t.Fatalf("rule+state filter: %+v", as)
	}
	expect(t, "GET", u+"?state=open", "", 400, `state: \"open\"`)
	expect(t, "GET", u+"?severity=page", "", 400, "severity:")
	expect(t, "GET", u+"?limit=0", "", 400, "limit:")

	// The JSON shape.
	code, body := call(t, "GET", u+"?machine=web-2", "", nil)
	var raw []map[string]any
	json.Unmarshal([]byte(body), &raw)
	if code != 200 || len(raw) != 1 {
		t.Fatalf("%d %s", code, body)
	}
	for _, k := range []string{"id", "rule_id", "rule_name", "machine", "metric", "labels", "severity", "state", "value", "threshold", "op", "description", "started_at", "fired_at", "resolved_at", "updated_at", "acknowledged", "ack", "silenced", "silenced_by"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("alert JSON lacks %q: %s", k, body)
		}
	}
	id := raw[0]["id"].(string)

	// Ack and un-ack record the principal.
	var a alert.Alert
	code, body = call(t, "POST", u+"/"+id+"/ack", `{"comment":"looking"}`, &a)
	if code != 200 || !a.Acknowledged || a.Ack.By != "alice" || a.Ack.Comment != "looking" {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, _ := call(t, "POST", u+"/"+id+"/ack", "", &a); code != 200 {
		t.Fatalf("ack without body: %d", code)
	}
	expect(t, "POST", u+"/"+id+"/ack", `{"comment":1}`, 400, "comment: must be a string")
	expect(t, "POST", u+"/nope/ack", ``, 404, `alert \"nope\" not found`)
	call(t, "DELETE", u+"/"+id+"/ack", "", &a)
	if a.Acknowledged || a.Ack != nil {
		t.Fatalf("unack: %+v", a)
	}
	// Resolve web-2: visible under state=resolved (before and after the
	// flush), no longer ackable.
	h.clk.Add(time.Second)
	h.observe("web-2", h.series("cpu"), 10)
	call(t, "GET", u+"?state=resolved", "", &as)
	if len(as) != 1 || as[0].ID != id || as[0].ResolvedAt == nil {
		t.Fatalf("resolved before flush: %+v", as)
	}
	h.step()
	call(t, "GET", u+"?state=all", "", &as)
	if len(as) != 3 || as[2].State != alert.StateResolved {
		t.Fatalf("all: %+v", as)
	}
	call(t, "GET", u+"/"+id, "", &a)
	if a.State != alert.StateResolved {
		t.Fatalf("get resolved: %+v", a)
	}
	expect(t, "POST", u+"/"+id+"/ack", ``, 409, "is resolved")
	expect(t, "GET", u+"/nope", ``, 404, "not found")
}

func TestSilencesAPI(t *testing.T) {
	h := newHarness(t, alert.Options{})
	srv := apiServer(t, h)
	h.createRule(`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90}`)
	h.observe("web-1", h.series("cpu"), 95)
	h.step()
	u := srv.URL + "/api/silences"
	var s alert.Silence
	code, body := call(t, "POST", u, `{"matchers":{"rule_id":"cpu","machine":"web-*"},"duration":"2h","comment":"deploy"}`, &s)
	if code != 201 || s.ID == "" || !s.Active || s.CreatedBy != "alice" || !s.EndsAt.Equal(h.clk.Now().Add(2*time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("create: %d %s", code, body)
	}
	for _, k := range []string{`"matchers":{"rule_id":"cpu","machine":"web-*"}`, `"starts_at"`, `"ends_at"`, `"comment":"deploy"`, `"created_by":"alice"`, `"created_at"`, `"active":true`} {
		if !strings.Contains(body, k) {
			t.Fatalf("silence JSON %s lacks %s", body, k)
		}
	}
	var a alert.Alert
	as := h.alerts()
	call(t, "GET", srv.URL+"/api/alerts/"+as[0].ID, "", &a)
	if !a.Silenced || *a.SilencedBy != s.ID {
		t.Fatalf("alert not silenced at once: %+v", a)
	}
	expect(t, "POST", u, `{"duration":"1h"}`, 400, "matchers: at least one")
	var list []alert.Silence
	call(t, "GET", u, "", &list)
	if len(list) != 1 || list[0].ID != s.ID {
		t.Fatalf("list %+v", list)
	}
	code, body = call(t, "DELETE", u+"/"+s.ID, "", &s)
	if code != 200 || s.Active || !s.EndsAt.Equal(h.clk.Now().Truncate(time.Millisecond)) {
		t.Fatalf("expire: %d %s", code, body)
	}
	call(t, "GET", u+"/"+s.ID, "", &s)
	if s.Active {
		t.Fatal("expired silence still active")
	}
	call(t, "GET", srv.URL+"/api/alerts/"+as[0].ID, "", &a)
	if a.Silenced {
		t.Fatalf("alert still silenced: %+v", a)
	}
	expect(t, "DELETE", u+"/nope", "", 404, `silence \"nope\" not found`)
}

// webhookSink is a real HTTP server that records webhook bodies.
type webhookSink struct {
	mu     sync.Mutex
	bodies [][]byte
	status int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	st := s.status
	s.mu.Unlock()
	if st != 0 {
		w.WriteHeader(st)
	}
}

func (s *webhookSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func TestNotifiersAPI(t *testing.T) {
	disp, err := notify.NewDispatcher(notify.DispatcherOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, alert.Options{Sender: disp})
	srv := apiServer(t, h)
	sink := &webhookSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	u := srv.URL + "/api/notifiers"

	var n map[string]any
	code, body := call(t, "POST", u, `{"name":"ops hook","type":"webhook","url":"`+hook.URL+`/secret-token","headers":{"X-Key":"k1"},"severities":["critical"]}`, &n)
	if code != 201 || n["id"] == "" || n["url"] != notify.Redacted || n["provisioned"] != false || n["status"] == nil {
		t.Fatalf("create: %d %s", code, body)
	}
	if strings.Contains(body, "secret-token") || strings.Contains(body, "k1") {
		t.Fatalf("secret in answer: %s", body)
	}
	id := n["id"].(string)
	expect(t, "POST", u, `{"name":"x","type":"pager"}`, 400, `type: unknown`)
	expect(t, "POST", u, `{"type":"webhook","url":"https://example.net"}`, 400, `name: required`)
	expect(t, "POST", u, `{"name":"x","type":"webhook","url":"https://example.net","severities":["page"]}`, 400, `severities[0]: unknown \"page\"`)
	expect(t, "POST", u, `{"name":"x","type":"webhook","url":"https://example.net","bogus":1}`, 400, `bogus: unknown field`)

	// PUT with the redacted values keeps the stored secrets.
	code, body = call(t, "PUT", u+"/"+id, `{"name":"ops","type":"webhook","url":"<redacted>","headers":{"X-Key":"<redacted>"},"severities":["critical","warning"],"provisioned":false,"status":{}}`, &n)
	if code != 200 || n["name"] != "ops" {
		t.Fatalf("put: %d %s", code, body)
	}
	stored, _ := h.e.Notifier(id)
	if stored.Config.URL != hook.URL+"/secret-token" || stored.Config.Headers["X-Key"] != "k1" {
		t.Fatalf("secrets lost on update: %+v", stored.Config)
	}

	// The test endpoint delivers through the real dispatcher.
	code, body = call(t, "POST", u+"/"+id+"/test", "", nil)
	if code != 200 || sink.count() != 1 {
		t.Fatalf("test: %d %s, %d deliveries", code, body, sink.count())
	}
	var payload map[string]any
	json.Unmarshal(sink.bodies[0], &payload)
	if payload["test"] != true {
		t.Fatalf("test payload %s", sink.bodies[0])
	}
	sink.mu.Lock()
	sink.status = 400
	sink.mu.Unlock()
	expect(t, "POST", u+"/"+id+"/test", "", 502, "test notification failed")
	var list []map[string]any
	call(t, "GET", u, "", &list)
	st := list[0]["status"].(map[string]any)
	if len(list) != 1 || st["sent"].(float64) != 1 || st["last_error"] == "" {
		t.Fatalf("status after a failure: %+v", list)
	}

	// A notifier in use cannot be deleted.
	h.createRule(`{"id":"r1","name":"uses it","metric":"cpu","op":">","threshold":1,"notifiers":["` + id + `"]}`)
	expect(t, "DELETE", u+"/"+id, "", 409, "used by the rules uses it")
	h.e.DeleteRule(t.Context(), "r1")
	if code, _ := call(t, "DELETE", u+"/"+id, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	expect(t, "GET", u+"/"+id, "", 404, "not found")
	expect(t, "POST", u+"/"+id+"/test", "", 404, "not found")
}

func TestProvisioning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "alerts.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
notifiers:
  - id: ops
    name: Ops webhook
    type: webhook
    url: https://hooks.example.net/T0KEN
    severities: [critical]
rules:
  - id: root-disk
    name: Root disk full
    metric: filesystem_usage_percent{mountpoint="/"}
    op: ">"
    threshold: 95
    for: 10m
    severity: critical
    notifiers: [ops]
  - id: gone-later
    name: Temporary
    kind: offline
    for: 2m
`)
	clk := newClock(t0)
	dbDir := filepath.Join(dir, "data")
	h := openHarness(t, dbDir, clk, alert.Options{Provisioning: file})
	srv := apiServer(t, h)
	var r alert.Rule
	call(t, "GET", srv.URL+"/api/rules/root-disk", "", &r)
	if !r.Provisioned || r.Threshold != 95 || r.For != 10*time.Minute || r.Matchers["mountpoint"] != "/" || r.Notifiers[0] != "ops" {
		t.Fatalf("provisioned rule %+v", r)
	}
	expect(t, "PUT", srv.URL+"/api/rules/root-disk", `{"name":"x","metric":"cpu","op":">","threshold":1}`, 409, "provisioned from the alerts config file")
	expect(t, "DELETE", srv.URL+"/api/rules/root-disk", "", 409, "provisioned")
	expect(t, "PUT", srv.URL+"/api/notifiers/ops", `{"name":"x","type":"webhook","url":"https://x.example"}`, 409, "provisioned")
	expect(t, "DELETE", srv.URL+"/api/notifiers/ops", "", 409, "provisioned")
	var n map[string]any
	call(t, "GET", srv.URL+"/api/notifiers/ops", "", &n)
	if n["provisioned"] != true || n["url"] != notify.Redacted {
		t.Fatalf("provisioned notifier %+v", n)
	}
	created := r.CreatedAt
	h.stop()

	// Re-sync at the next start: changed, removed, unchanged.
	write(`
notifiers:
  - {id: ops, name: Ops webhook, type: webhook, url: "https://hooks.example.net/T0KEN", severities: [critical, warning]}
rules:
  - {id: root-disk, name: Root disk full, metric: filesystem_usage_percent, matchers: {mountpoint: /}, op: ">", threshold: 97, for: 10m, severity: critical, notifiers: [ops]}
`)
	clk.Add(time.Hour)
	h2 := openHarness(t, dbDir, clk, alert.Options{Provisioning: file})
	if _, ok := h2.e.Rule("gone-later"); ok {
		t.Fatal("a rule removed from the file survived")
	}
	r, _ = h2.e.Rule("root-disk")
	if r.Threshold != 97 || !r.CreatedAt.Equal(created) || !r.UpdatedAt.After(created) {
		t.Fatalf("re-synced rule %+v", r)
	}

	// Invalid files stop the start with a precise error.
	for _, c := range []struct{ yaml, want string }{
		{"rules:\n  - {id: a, name: a, metric: cpu, op: '>'}\n", "rules[0]: threshold: required"},
		{"rules:\n  - {name: a, metric: cpu, op: '>', threshold: 1}\n", "rules[0]: id: required"},
		{"rules:\n  - {id: a, name: a, metric: cpu, op: '>', threshold: 1, notifiers: [x]}\n", `rule "a": notifiers: unknown notifier "x"`},
		{"rules:\n  - {id: a, name: a, kind: offline}\n  - {id: a, name: b, kind: offline}\n", `rules[1]: id: "a" is used twice`},
		{"rules:\n  - {id: a, name: a, kind: offline, builtin: true}\n", `rules[0]: builtin: set by the hub`},
		{"notifiers:\n  - {id: n, name: n, type: webhook, url: 'ftp://x'}\n", `notifiers[0] (id "n"): url:`},
		{"notifiers:\n  - {name: n, type: webhook, url: 'https://x.example'}\n", `notifiers[0]: id: required`},
		{"alerts: []\n", "field alerts not found"},
	} {
		write(c.yaml)
		_, err := alert.New(alert.Options{DB: h2.db, Machines: h2.live, Provisioning: file})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}

// TestPreviewIncrease: the preview shows an increase only where the engine
// tracks one for the same aggregation and window, never a counter's raw
// value.
func TestPreviewIncrease(t *testing.T) {
	h := newHarness(t, alert.Options{Defaults: true})
	srv := apiServer(t, h)
	s := h.series("container_restarts_total", "container", "web")
	for i, v := range []float64{40, 41, 42, 43} { // high raw value, increase 3
		if i > 0 {
			h.clk.Add(time.Second)
		}
		h.observe("host-1", s, v)
	}
	h.observe("host-2", h.series("container_restarts_total", "container", "db"), 50)

	var p alert.Preview
	code, body := call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"container_restarts_total","op":">=","threshold":3,"aggregation":"increase","window":"15m"}`, &p)
	if code != 200 || len(p.Matches) != 2 || !strings.Contains(p.Note, "increase over 15m") {
		t.Fatalf("preview: %d %s", code, body)
	}
	for _, m := range p.Matches {
		want := map[string]float64{"host-1": 3, "host-2": 0}[m.Machine]
		st := map[string]string{"host-1": "would fire", "host-2": "ok"}[m.Machine]
		if m.Value == nil || *m.Value != want || m.State != st {
			t.Fatalf("preview of %s: %s", m.Machine, body)
		}
	}
	// Another window: the engine knows no increase over it.
	code, body = call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"container_restarts_total","op":">=","threshold":3,"aggregation":"increase","window":"5m"}`, &p)
	if code != 200 || len(p.Matches) != 2 || p.Matches[0].Value != nil || p.Matches[0].State != "unknown" || p.Matches[1].State != "unknown" {
		t.Fatalf("preview without a window: %d %s", code, body)
	}
	// avg/max/min say that they show the latest sample.
	p = alert.Preview{}
	call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"container_restarts_total","op":">","threshold":1,"aggregation":"avg","window":"1m"}`, &p)
	if p.Note != "values are each series' latest sample, not its avg over 1m" || *p.Matches[0].Value != 43 {
		t.Fatalf("avg preview: %+v", p)
	}
	p = alert.Preview{}
	call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"container_restarts_total","op":">","threshold":1}`, &p)
	if p.Note != "" {
		t.Fatalf("last preview note %q", p.Note)
	}
	// With the default deleted, nothing tracks the 15m increase any more
	// once the machine's rules are rebuilt.
	if err := h.e.DeleteRule(context.Background(), "builtin-container-restarting"); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Second)
	h.observe("host-1", s, 43)
	call(t, "POST", srv.URL+"/api/rules/preview", `{"name":"p","metric":"container_restarts_total","op":">=","threshold":3,"aggregation":"increase","window":"15m"}`, &p)
	if p.Matches[0].Machine != "host-1" || p.Matches[0].State != "unknown" {
		t.Fatalf("preview after delete: %+v", p)
	}
}

// TestNotifierTestWithoutSender: with notifications off the test endpoint
// answers 503 and the notifiers list without a delivery record.
func TestNotifierTestWithoutSender(t *testing.T) {
	h := newHarness(t, alert.Options{})
	api, err := New(Options{Rules: h.e, Alerts: h.e, Silences: h.e, Notifiers: h.e})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range api.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var n map[string]any
	if code, body := call(t, "POST", srv.URL+"/api/notifiers", `{"id":"ops","name":"ops","type":"webhook","url":"https://hooks.example.net/x"}`, &n); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if st, _ := n["status"].(map[string]any); st == nil || st["sent"].(float64) != 0 {
		t.Fatalf("status of a notifier without a sender: %+v", n)
	}
	expect(t, "POST", srv.URL+"/api/notifiers/ops/test", "", 503, "notifications are not configured on this hub")
	expect(t, "POST", srv.URL+"/api/notifiers/nope/test", "", 404, `notifier \"nope\" not found`)
}

// TestNotifierTypesAPI checks GET /api/notifier-types answers notify's
// channel table — every type, in order, with its fields — and does not
// shadow a notifier's own path.
func TestNotifierTypesAPI(t *testing.T) {
	h := newHarness(t, alert.Options{})
	srv := apiServer(t, h)
	var types []struct {
		Type   string `json:"type"`
		Label  string `json:"label"`
		Fields []struct {
			Name     string `json:"name"`
			Kind     string `json:"kind"`
			Required bool   `json:"required"`
			Redacted bool   `json:"redacted"`
			Default  any    `json:"default"`
		} `json:"fields"`
	}
	if code, body := call(t, "GET", srv.URL+"/api/notifier-types", "", &types); code != 200 {
		t.Fatalf("GET /api/notifier-types: %d %s", code, body)
	}
	var got []string
	fields := map[string]string{}
	for _, ty := range types {
		got = append(got, ty.Type)
		if ty.Label == "" {
			t.Errorf("type %s without label", ty.Type)
		}
		for _, f := range ty.Fields {
			fields[ty.Type+"."+f.Name] = fmt.Sprintf("%s required=%v redacted=%v default=%v", f.Kind, f.Required, f.Redacted, f.Default)
		}
	}
	if want := notify.Types(); !slices.Equal(got, want) {
		t.Fatalf("types %v, want %v", got, want)
	}
	for k, want := range map[string]string{
		"webhook.url":                "url required=true redacted=true default=<nil>",
		"ntfy.url":                   "url required=true redacted=false default=<nil>",
		"ntfy.token":                 "secret required=false redacted=true default=<nil>",
		"email.smtp_port":            "number required=true redacted=false default=587",
		"email.tls":                  "choice required=true redacted=false default=starttls",
		"email.to":                   "list required=true redacted=false default=<nil>",
		"email.password":             "secret required=false redacted=true default=<nil>",
		"webhook.headers":            "headers required=false redacted=true default=<nil>",
		"email.insecure_skip_verify": "bool required=false redacted=false default=<nil>",
	} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q", k, fields[k], want)
		}
	}
	expect(t, "GET", srv.URL+"/api/notifiers/types", "", 404, `notifier \"types\" not found`)
}
