package notify

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWebhookPayload(t *testing.T) {
	rec := newRecorder(t)
	d, _, _ := testDispatcher(t, DispatcherOptions{})
	c := Config{ID: "n1", Name: "hook", Type: TypeWebhook, URL: rec.URL + "/hook/secret-token",
		Headers: map[string]string{"X-Api-Key": "k1", "authorization": "Bearer abc"}}
	m := sampleMessage(2, hostile)
	m.Test = true
	resolved := time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
	m.Alerts[1].State = StatusResolved
	m.Alerts[1].ResolvedAt = resolved
	m.Alerts[1].Acknowledged = true
	m.Alerts[1].AckedBy = "alice"
	m.Alerts[1].Value = math.NaN()
	if err := send(t, d, c, m); err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Path != "/hook/secret-token" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if r.Header.Get("X-Api-Key") != "k1" || r.Header.Get("Authorization") != "Bearer abc" {
		t.Errorf("extra headers not sent: %v", r.Header)
	}
	if !strings.HasPrefix(r.Header.Get("User-Agent"), "sysmonstm") {
		t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
	}
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
	}
	for _, k := range []string{"version", "status", "title", "url", "test", "alerts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("payload lacks %q", k)
		}
	}
	if raw["version"] != "1" || raw["status"] != "firing" || raw["test"] != true || raw["url"] != "https://hub.example/alerts" {
		t.Errorf("payload head %v", raw)
	}
	alerts := raw["alerts"].([]any)
	if len(alerts) != 2 {
		t.Fatalf("%d alerts", len(alerts))
	}
	first := alerts[0].(map[string]any)
	for _, k := range []string{"id", "rule_id", "rule_name", "machine", "metric", "labels", "severity", "state", "value", "threshold", "op", "description", "started_at", "acknowledged", "acked_by", "silenced"} {
		if _, ok := first[k]; !ok {
			t.Errorf("alert lacks %q", k)
		}
	}
	if _, ok := first["resolved_at"]; ok {
		t.Error("resolved_at present on a firing alert")
	}
	if first["started_at"] != "2025-03-01T10:00:00Z" || first["value"] != 97.25 || first["threshold"] != 90.0 || first["op"] != ">" {
		t.Errorf("first alert %v", first)
	}
	// JSON carries agent strings exactly (invalid UTF-8 replaced).
	wantMachine := string([]rune(hostile)) // each invalid byte becomes U+FFFD
	if first["machine"] != wantMachine {
		t.Errorf("machine %q, want %q", first["machine"], wantMachine)
	}
	second := alerts[1].(map[string]any)
	if second["resolved_at"] != "2025-03-01T10:05:00Z" || second["acknowledged"] != true || second["acked_by"] != "alice" || second["state"] != "resolved" {
		t.Errorf("second alert %v", second)
	}
	if second["value"] != nil {
		t.Errorf("NaN value encoded as %v, want null", second["value"])
	}
	if d.Status("n1").Sent != 1 {
		t.Errorf("status %+v", d.Status("n1"))
	}
}

func TestWebhookPayloadTruncates(t *testing.T) {
	p := NewWebhookPayload(sampleMessage(maxWebhookAlerts+7, "m"))
	if len(p.Alerts) != maxWebhookAlerts || p.TruncatedAlerts != 7 {
		t.Errorf("alerts %d truncated %d", len(p.Alerts), p.TruncatedAlerts)
	}
	b, _ := json.Marshal(NewWebhookPayload(Message{Status: StatusResolved}))
	if !strings.Contains(string(b), `"alerts":[]`) || strings.Contains(string(b), "truncated_alerts") {
		t.Errorf("empty payload %s", b)
	}
}
