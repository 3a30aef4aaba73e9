package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// hookDelivery is one webhook request received by the test's server.
type hookDelivery struct {
	at      time.Time
	payload hookPayload
}

// hookPayload is the documented webhook JSON (docs/alerts.md, "Channels").
type hookPayload struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Test    bool   `json:"test"`
	Alerts  []struct {
		ID           string            `json:"id"`
		RuleID       string            `json:"rule_id"`
		RuleName     string            `json:"rule_name"`
		Machine      string            `json:"machine"`
		Metric       string            `json:"metric"`
		Labels       map[string]string `json:"labels"`
		Severity     string            `json:"severity"`
		State        string            `json:"state"`
		Value        float64           `json:"value"`
		Threshold    float64           `json:"threshold"`
		Op           string            `json:"op"`
		Description  string            `json:"description"`
		StartedAt    string            `json:"started_at"`
		ResolvedAt   string            `json:"resolved_at"`
		Acknowledged bool              `json:"acknowledged"`
		Silenced     bool              `json:"silenced"`
	} `json:"alerts"`
}

// hookSink is a webhook receiver: a real HTTP server recording deliveries.
type hookSink struct {
	t   *testing.T
	srv *httptest.Server
	ch  chan hookDelivery
	n   atomic.Int64
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{t: t, ch: make(chan hookDelivery, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		b, _ := io.ReadAll(r.Body)
		var p hookPayload
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &p) != nil {
			t.Errorf("webhook: %s %s %q", r.Method, r.Header.Get("Content-Type"), b)
		}
		s.n.Add(1)
		s.ch <- hookDelivery{at, p}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// next waits for the next delivery.
func (s *hookSink) next(timeout time.Duration, what string) hookDelivery {
	s.t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(timeout):
		s.t.Fatalf("no webhook within %s: %s", timeout, what)
	}
	return hookDelivery{}
}

// none asserts that nothing is delivered for d.
func (s *hookSink) none(d time.Duration, why string) {
	s.t.Helper()
	select {
	case got := <-s.ch:
		s.t.Fatalf("%s, yet a webhook came: %+v", why, got.payload)
	case <-time.After(d):
	}
}

// alertsClient talks to a hub's API as admin (when the hub has logins).
type alertsClient struct {
	t     *testing.T
	base  string
	token string
}

// newAlertsClient logs in as admin with password; a hub without
// /api/auth/login is used anonymously.
func newAlertsClient(t *testing.T, hub *hubProc, password string) *alertsClient {
	c := &alertsClient{t: t, base: "http://" + hub.http}
	var out struct {
		Token string `json:"token"`
	}
	if code := c.do("POST", "/api/auth/login", map[string]string{"username": "admin", "password": password}, &out); code == http.StatusOK {
		c.token = out.Token
	} else if code != http.StatusNotFound {
		t.Fatalf("login: status %d", code)
	}
	return c
}

// do sends a JSON request and decodes a 2xx answer into v; it returns the
// status.
func (c *alertsClient) do(method, path string, body, v any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, truncate(string(b)), err)
		}
	}
	if resp.StatusCode/100 != 2 && v != nil {
		c.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, truncate(string(b)))
	}
	return resp.StatusCode
}

// must is do that fails the test unless the status is want.
func (c *alertsClient) must(want int, method, path string, body, v any) {
	c.t.Helper()
	if code := c.do(method, path, body, v); code != want {
		c.t.Fatalf("%s %s: status %d, want %d", method, path, code, want)
	}
}

// e2eAlert is the subset of an alert object the test reads.
type e2eAlert struct {
	ID           string `json:"id"`
	RuleID       string `json:"rule_id"`
	Machine      string `json:"machine"`
	State        string `json:"state"`
	Acknowledged bool   `json:"acknowledged"`
	Ack          *struct {
		By      string `json:"by"`
		Comment string `json:"comment"`
	} `json:"ack"`
	Silenced bool `json:"silenced"`
}

// temperature feeds e2e_temp_celsius{room="lab"} for machines over HTTP
// ingest every 250 ms, as a script would.
type temperature struct {
	mu     sync.Mutex
	values map[string]float64
}

func (tp *temperature) set(machine string, v float64) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.values[machine] = v
}

func (tp *temperature) run(t *testing.T, hub *hubProc, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		tp.mu.Lock()
		snap := make(map[string]float64, len(tp.values))
		for m, v := range tp.values {
			snap[m] = v
		}
		tp.mu.Unlock()
		for m, v := range snap {
			if err := ingest(t, hub, m, []ingestSample{{Name: "e2e_temp_celsius", Labels: map[string]string{"room": "lab"}, Value: v}}); err != nil {
				t.Logf("ingest: %v", err)
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// TestAlertsEndToEnd: a real hub, a rule created through the API, samples
// over HTTP ingest, a webhook received by a real server: firing with the
// documented payload (and the crossing-to-delivery latency), repeats until
// acknowledged, a silence that suppresses until it is expired, the
// resolution, live alert events and state kept across a restart.
func TestAlertsEndToEnd(t *testing.T) {
	t.Parallel()
	const password = "e2e-alerts-admin-pw"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	sink := newHookSink(t)
	dir := t.TempDir()
	hubArgs := []string{"--alerts-repeat-interval", "2s", "--alerts-group-wait", "200ms"}
	hub := startHub(t, dir, "", "", hubArgs...)
	api := newAlertsClient(t, hub, password)

	// The defaults exist; they route to no channel here (the webhook takes
	// only rules that name it).
	var rules []struct {
		ID      string `json:"id"`
		Builtin bool   `json:"builtin"`
	}
	api.must(200, "GET", "/api/rules", nil, &rules)
	if len(rules) < 8 || !rules[0].Builtin {
		t.Fatalf("default rules: %+v", rules)
	}
	var notifier struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	api.must(201, "POST", "/api/notifiers", map[string]any{"name": "e2e hook", "type": "webhook", "url": sink.srv.URL + "/hook"}, &notifier)
	if notifier.URL != "<redacted>" {
		t.Fatalf("notifier URL answered as %q", notifier.URL)
	}
	var rule struct {
		ID string `json:"id"`
	}
	api.must(201, "POST", "/api/rules", map[string]any{
		"name": "lab too hot", "metric": `e2e_temp_celsius{room="lab"}`, "op": ">", "threshold": 80, "clear": 70,
		"for": "1s", "severity": "critical", "notifiers": []string{notifier.ID},
		"description": "{{labels.room}} on {{machine}} is {{value}} °C",
	}, &rule)
	if code := api.do("POST", "/api/rules", map[string]any{"name": "bad", "metric": "x", "op": ">"}, nil); code != 400 {
		t.Fatalf("invalid rule: status %d", code)
	}

	ws, wsCtx := dialHubWS(t, hub, 2*time.Minute)
	wsEvents := make(chan string, 100)
	go func() {
		for {
			_, b, err := ws.Read(wsCtx)
			if err != nil {
				return
			}
			var m struct {
				Type  string `json:"type"`
				Alert struct {
					State   string `json:"state"`
					Machine string `json:"machine"`
				} `json:"alert"`
			}
			if json.Unmarshal(b, &m) == nil && m.Type == "alert" {
				wsEvents <- m.Alert.Machine + " " + m.Alert.State
			}
		}
	}()

	temps := &temperature{values: map[string]float64{"lab-1": 20}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); temps.run(t, hub, stop) }()
	defer func() { close(stop); <-done }()
	testutil.WaitFor(t, 15*time.Second, "lab-1 known to the hub", func() error {
		if code := getJSON(t, "http://"+hub.http+"/api/machines/lab-1", nil); code != 200 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})

	// Crossing → firing webhook.
	crossed := time.Now()
	temps.set("lab-1", 90)
	d := sink.next(15*time.Second, "firing")
	latency := d.at.Sub(crossed)
	t.Logf("threshold crossing → webhook delivery: %s (for 1s, samples every 250ms, group wait 200ms)", latency.Round(time.Millisecond))
	if latency < time.Second {
		t.Fatalf("fired after %s, before `for` (1s) elapsed", latency)
	}
	p := d.payload
	if p.Version != "1" || p.Status != "firing" || p.Test || len(p.Alerts) != 1 || !strings.HasPrefix(p.Title, "[FIRING:1] lab too hot on lab-1") {
		t.Fatalf("firing payload %+v", p)
	}
	a := p.Alerts[0]
	if a.RuleID != rule.ID || a.RuleName != "lab too hot" || a.Machine != "lab-1" || a.Metric != "e2e_temp_celsius" ||
		a.Labels["room"] != "lab" || a.Severity != "critical" || a.State != "firing" || a.Value != 90 ||
		a.Threshold != 80 || a.Op != ">" || a.Description != "lab on lab-1 is 90 °C" || a.StartedAt == "" || a.ResolvedAt != "" {
		t.Fatalf("alert in payload %+v", a)
	}
	alertID := a.ID
	if !strings.HasSuffix(p.URL, "/alerts") {
		t.Fatalf("payload url %q", p.URL)
	}

	// Unacknowledged: repeated every 2s.
	if r := sink.next(10*time.Second, "repeat"); r.payload.Status != "firing" || r.payload.Alerts[0].ID != alertID {
		t.Fatalf("repeat %+v", r.payload)
	}
	var acked e2eAlert
	api.must(200, "POST", "/api/alerts/"+alertID+"/ack", map[string]string{"comment": "on it"}, &acked)
	if !acked.Acknowledged || acked.Ack == nil || acked.Ack.Comment != "on it" || (api.token != "" && acked.Ack.By != "admin") {
		t.Fatalf("ack answer %+v", acked)
	}
	drain(sink, 300*time.Millisecond) // a repeat already on its way
	sink.none(5*time.Second, "acknowledged alerts are not repeated")
	var list []e2eAlert
	api.must(200, "GET", "/api/alerts?state=firing&machine=lab-1", nil, &list)
	if len(list) != 1 || list[0].ID != alertID || !list[0].Acknowledged {
		t.Fatalf("firing alerts %+v", list)
	}

	// A silence suppresses a second machine's alert until it is expired.
	var sil struct {
		ID     string `json:"id"`
		Active bool   `json:"active"`
	}
	api.must(201, "POST", "/api/silences", map[string]any{"matchers": map[string]any{"rule_id": rule.ID, "machine": "lab-2*"}, "duration": "1h", "comment": "e2e"}, &sil)
	if !sil.Active {
		t.Fatalf("silence %+v", sil)
	}
	temps.set("lab-2", 95)
	testutil.WaitFor(t, 15*time.Second, "silenced alert on lab-2", func() error {
		api.must(200, "GET", "/api/alerts?machine=lab-2", nil, &list)
		if len(list) != 1 || list[0].State != "firing" || !list[0].Silenced {
			return fmt.Errorf("alerts of lab-2: %+v", list)
		}
		return nil
	})
	sink.none(3*time.Second, "a silenced alert is not notified")
	api.must(200, "DELETE", "/api/silences/"+sil.ID, nil, &sil)
	if d := sink.next(10*time.Second, "after the silence expired"); d.payload.Alerts[0].Machine != "lab-2" || d.payload.Status != "firing" {
		t.Fatalf("after expiry: %+v", d.payload)
	}

	// Below the clear threshold: resolved.
	temps.set("lab-1", 65)
	for {
		d := sink.next(10*time.Second, "resolved")
		if d.payload.Status == "resolved" {
			if d.payload.Alerts[0].ID != alertID || d.payload.Alerts[0].ResolvedAt == "" || d.payload.Alerts[0].State != "resolved" {
				t.Fatalf("resolved payload %+v", d.payload)
			}
			break
		}
		if d.payload.Alerts[0].Machine != "lab-2" {
			t.Fatalf("unexpected %+v", d.payload)
		}
	}
	api.must(200, "GET", "/api/alerts?state=resolved", nil, &list)
	if len(list) != 1 || list[0].ID != alertID || list[0].Acknowledged {
		t.Fatalf("resolved alerts %+v", list)
	}
	seen := map[string]bool{}
	for len(wsEvents) > 0 {
		seen[<-wsEvents] = true
	}
	for _, want := range []string{"lab-1 pending", "lab-1 firing", "lab-1 resolved", "lab-2 firing"} {
		if !seen[want] {
			t.Fatalf("live stream lacks alert event %q; saw %v", want, seen)
		}
	}
	var metrics string
	if code := func() int {
		req, _ := http.NewRequest("GET", "http://"+hub.http+"/metrics", nil)
		if api.token != "" {
			req.Header.Set("Authorization", "Bearer "+api.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return resp.StatusCode
	}(); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if err := containsAll(metrics, `sysmonstm_alerts{severity="critical",state="firing"} 1`, "sysmonstm_alert_evaluations_total", `sysmonstm_alert_notifications_total{result="sent"}`); err != nil {
		t.Fatalf("/metrics: %v", err)
	}

	// Agents' gRPC batches are evaluated the same way.
	startAgent(t, hub, "agent-a")
	var agentRule struct {
		ID string `json:"id"`
	}
	api.must(201, "POST", "/api/rules", map[string]any{
		"name": "agent cpu seen", "metric": `cpu_usage_percent{cpu="total"}`, "op": ">=", "threshold": 0,
		"machines": []string{"agent-*"}, "severity": "warning",
	}, &agentRule)
	testutil.WaitFor(t, 20*time.Second, "an alert on the agent's cpu", func() error {
		api.must(200, "GET", "/api/alerts?state=firing&machine=agent-a&rule="+agentRule.ID, nil, &list)
		if len(list) != 1 {
			return fmt.Errorf("firing alerts of agent-a: %+v", list)
		}
		return nil
	})

	// lab-2 still fires; a restart keeps it without re-notifying.
	api.must(200, "GET", "/api/alerts?machine=lab-2", nil, &list)
	lab2 := list[0].ID
	api.must(200, "POST", "/api/alerts/"+lab2+"/ack", nil, nil) // no repeats during the restart
	drain(sink, 500*time.Millisecond)
	hub.kill(syscall.SIGTERM)
	hub2 := startHub(t, dir, hub.http, hub.grpc, hubArgs...)
	api2 := newAlertsClient(t, hub2, password)
	api2.must(200, "GET", "/api/alerts?machine=lab-2", nil, &list)
	if len(list) != 1 || list[0].ID != lab2 || list[0].State != "firing" || !list[0].Acknowledged {
		t.Fatalf("after restart: %+v", list)
	}
	sink.none(3*time.Second, "a restart does not re-send a notified alert")
}

// drain discards deliveries arriving within d.
func drain(s *hookSink, d time.Duration) {
	deadline := time.After(d)
	for {
		select {
		case <-s.ch:
		case <-deadline:
			return
		}
	}
}
