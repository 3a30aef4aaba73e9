package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

func TestForgetMachine(t *testing.T) {
	e := newEnv(t, nil)
	res, raw := e.do(t, http.MethodDelete, "/api/machines/web-1", nil)
	if res.StatusCode != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("DELETE: status %d, body %s", res.StatusCode, raw)
	}
	e.wantError(t, "/api/machines/web-1", http.StatusNotFound, "unknown machine")
	var ms []map[string]any
	e.get(t, "/api/machines", &ms)
	if len(ms) != 1 || ms[0]["id"] != "evil" {
		t.Fatalf("machines after forget: %v", ms)
	}
	var body map[string]string
	res, raw = e.do(t, http.MethodDelete, "/api/machines/web-1", &body)
	if res.StatusCode != http.StatusNotFound || body["error"] != "unknown machine" {
		t.Fatalf("second DELETE: status %d, body %s", res.StatusCode, raw)
	}
}

// A forgotten machine's stored history stays reachable; a machine with
// neither live state nor stored points is unknown.
func TestForgottenMachineHistory(t *testing.T) {
	e := newEnv(t, nil)
	if ok, err := e.live.Forget("web-1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	e.wantError(t, "/api/export?machine=web-1&from=-1h", http.StatusNotFound, "unknown machine")
	e.wantError(t, "/api/machines/web-1/history?metric=load1", http.StatusNotFound, "unknown machine")

	e.hist.rows = []exportRow{{name: "load1", ls: metric.Labels{{Name: "machine", Value: "web-1"}}, t: now.UnixMilli(), v: 0.42}}
	e.hist.result = &store.Result{Tier: store.TierRaw, Step: time.Second, Series: []store.Series{
		{Labels: metric.Labels{{Name: "machine", Value: "web-1"}}, Points: []store.Point{{T: now.UnixMilli(), Avg: 0.42, Min: 0.42, Max: 0.42, Count: 1}}},
	}}
	res, raw := e.get(t, "/api/export?machine=web-1&from=-1h", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), "web-1,load1,,0.42") {
		t.Fatalf("export of a forgotten machine: %d %s", res.StatusCode, raw)
	}
	res, raw = e.get(t, "/api/machines/web-1/history?metric=load1", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), "0.42") {
		t.Fatalf("history of a forgotten machine: %d %s", res.StatusCode, raw)
	}
}
