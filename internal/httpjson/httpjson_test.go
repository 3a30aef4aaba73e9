package httpjson

import (
	"encoding/json"
	"math"
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
