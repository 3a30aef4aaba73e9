package httpjson

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteAndError(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 201, map[string]string{"id": "x"})
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Body.String() != "{\"id\":\"x\"}\n" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	rec = httptest.NewRecorder()
	Error(rec, 404, `no machine "<b>"`)
	var e struct{ Error string }
	if rec.Code != 404 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error != `no machine "<b>"` {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	Write(rec, 200, math.NaN()) // not encodable: a 500 error, not a broken 200
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
		t.Fatalf("unencodable: %d %q", rec.Code, rec.Body.String())
	}
}

func TestNotFoundAnswersJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, _ *http.Request) { Write(w, 200, "ok") })
	h := NotFound(mux, "read-only")
	for _, c := range []struct {
		method, path string
		status       int
		msg          string
	}{{"GET", "/x", 200, ""}, {"GET", "/nope", 404, "not found"}, {"POST", "/x", 405, "read-only"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		var e struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != c.status || e.Error != c.msg || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q", c.method, c.path, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/x", nil))
	if rec.Header().Get("Allow") == "" {
		t.Error("405 lost its Allow header")
	}
}

func TestUpgradeErrorsBecomeJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	ew := &UpgradeErrors{ResponseWriter: rec}
	http.Error(ew, "websocket: origin not allowed", http.StatusForbidden)
	ew.Finish()
	var e struct{ Error string }
	if rec.Code != 403 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error != "websocket: origin not allowed" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}
