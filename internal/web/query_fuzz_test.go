package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// FuzzQueryParams sends arbitrary query strings to the history and export
// endpoints of a server backed by a real (empty but for one machine) store:
// whatever the parameters, the answer is a 2xx/4xx with a well-formed body,
// never a 5xx, a panic or a hang.
func FuzzQueryParams(f *testing.F) {
	for _, seed := range []string{
		"metric=cpu_usage_percent&from=-1h&to=now&step=15s",
		"metric=load1&from=0&to=9999999999&step=1ms",
		"metric=x&from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
		"metric=%ff%fe&step=-5s",
		"metric=cpu&from=1e309&to=NaN&step=1e-9h",
		"machine=web-1&format=csv&from=-10m",
		"machine=web-1&format=json&metric=load1&from=-1d&to=-2d",
		"from=-9999999h&to=+9999999h&step=0",
		"metric=a{b=\"c\"}&from=now-1h",
	} {
		f.Add("/api/machines/web-1/history", seed)
		f.Add("/api/export", seed)
	}
	st, err := store.Open(store.Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	lv, err := live.New(live.Options{})
	if err != nil {
		f.Fatal(err)
	}
	lv.Connect(live.MachineInfo{ID: "web-1"})
	lv.Update("web-1", time.Now().UnixMilli(), []*live.Series{live.NewSeries("load1", metric.Labels{})}, []float64{1})
	srv, err := New(Options{Live: lv, History: st})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()

	f.Fuzz(func(t *testing.T, path, query string) {
		if path != "/api/export" {
			path = "/api/machines/web-1/history"
		}
		req := httptest.NewRequest(http.MethodGet, "http://hub"+path, nil)
		req.URL.RawQuery = query
		if _, err := url.ParseQuery(query); err != nil {
			req.URL.RawQuery = url.QueryEscape(query)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s?%s: status %d: %s", path, query, rec.Code, rec.Body.String())
		}
		ct := rec.Header().Get("Content-Type")
		if rec.Code >= 400 || strings.HasPrefix(ct, "application/json") {
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s?%s: status %d with a body that is not JSON: %q", path, query, rec.Code, rec.Body.String())
			}
		}
	})
}
