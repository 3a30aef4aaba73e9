package ingest

import (
	"github.com/prometheus/client_golang/prometheus/testutil"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, h http.Handler, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %q", rec.Body.String())
	}
	return rec.Code, out
}

func TestHTTPIngest(t *testing.T) {
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		if token != "tok" {
			return fmt.Errorf("unknown token")
		}
		return nil
	})
	h := e.srv.HTTPHandler()
	auth := []string{"Authorization", "Bearer tok"}
	ts := time.Now().Add(-time.Minute).UnixMilli()

	code, out := post(t, h, fmt.Sprintf(`{"machine":"backup-box","metrics":[
		{"name":"backup_last_success_timestamp_seconds","value":1700000000},
		{"name":"backup_size_bytes","labels":{"job":"nightly"},"value":123456,"ts":%d}]}`, ts), auth...)
	if code != 200 || out["accepted"] != 2.0 || out["rejected"] != 0.0 {
		t.Fatalf("valid ingest: %d %v", code, out)
	}
	if pts := e.points("backup_size_bytes", "backup-box"); len(pts) != 1 || int64(pts[0][0]) != ts || pts[0][1] != 123456 {
		t.Fatalf("stored %v", pts)
	}
	if m, ok := e.live.Machine("backup-box"); !ok || len(m.Metrics) != 2 {
		t.Fatalf("live state after HTTP ingest: %+v", m)
	}

	// Partly invalid: the valid sample is kept, each bad one explained.
	code, out = post(t, h, `{"machine":"backup-box","metrics":[
		{"name":"ok_metric","value":1},
		{"name":"bad-name","value":1},
		{"name":"no_value"},
		{"name":"future","value":1,"ts":99999999999999},
		{"name":"labels","labels":{"__x":"1"},"value":1}]}`, auth...)
	if code != 200 || out["accepted"] != 1.0 || out["rejected"] != 4.0 {
		t.Fatalf("partial ingest: %d %v", code, out)
	}
	if errs, _ := out["errors"].([]any); len(errs) != 4 || !strings.Contains(fmt.Sprint(errs[0]), "metrics[1]") {
		t.Fatalf("errors %v", out["errors"])
	}

	for _, c := range []struct {
		name, body string
		hdr        []string
		want       int
	}{
		{"no token", `{"machine":"m","metrics":[{"name":"a","value":1}]}`, nil, 401},
		{"wrong token", `{"machine":"m","metrics":[{"name":"a","value":1}]}`, []string{"Authorization", "Bearer nope"}, 401},
		{"not JSON", `{"machine":`, auth, 400},
		{"unknown field", `{"machine":"m","metrics":[],"extra":1}`, auth, 400},
		{"no machine", `{"metrics":[{"name":"a","value":1}]}`, auth, 400},
		{"no metrics", `{"machine":"m","metrics":[]}`, auth, 400},
		{"all invalid", `{"machine":"m","metrics":[{"name":"1a","value":1}]}`, auth, 400},
		{"NaN as string", `{"machine":"m","metrics":[{"name":"a","value":"NaN"}]}`, auth, 400},
		{"two values", `{"machine":"m","metrics":[{"name":"a","value":1}]} {}`, auth, 400},
	} {
		if code, out := post(t, h, c.body, c.hdr...); code != c.want || out["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", c.name, code, out, c.want)
		}
	}

	big := `{"machine":"m","metrics":[` + strings.Repeat(`{"name":"a","value":1},`, 300_000) + `{"name":"a","value":1}]}`
	if code, _ := post(t, h, big, auth...); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", code)
	}
	// Refused requests are counted by reason: 2 without a valid token, 6
	// undecodable (the all-invalid one decodes; its sample is dropped and
	// counted in sysmonstm_dropped_samples_total), 1 too large.
	for reason, want := range map[string]float64{rejectUnauthenticated: 2, rejectMalformed: 6, rejectTooLarge: 1, rejectPermission: 0} {
		if got := testutil.ToFloat64(e.srv.m.rejected.WithLabelValues(reason)); got != want {
			t.Errorf("sysmonstm_rejected_requests_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/ingest", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodPost, "/api/v1/ingest", bytes.NewReader([]byte("machine=m")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d", rec.Code)
	}
}
