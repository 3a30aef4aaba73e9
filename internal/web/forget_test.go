package web

import (
	"net/http"
	"testing"
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
