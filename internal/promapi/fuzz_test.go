package promapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// FuzzParams sends arbitrary query strings and form bodies to every
// endpoint: the API must answer Prometheus' envelope with a fitting status,
// never panic or answer an error with 200; /federate answers 200 or 400.
func FuzzParams(f *testing.F) {
	for _, seed := range []string{
		"query=up&time=1767225610.5",
		"query=sum(rate(cpu_usage_percent[1m]))&start=2026-01-01T00:00:00Z&end=1767225900&step=15s",
		"match[]={machine=\"web1\"}&start=-1e300&end=NaN&limit=3",
		"match[]=cpu_usage_percent&match[]=odd&limit=-1",
		"query=cpu_usage_percent[5m:1s]&time=9223372036854775807&timeout=1e-9",
		"query=%ff%00&step=1e309",
		"start=0001-01-01T00:00:00Z&end=9999-12-31T23:59:59Z",
		"query=max_over_time(cpu_usage_percent{__rollup__=\"max\"}[1h])&start=1767225600&end=1767229200&step=60",
		"match[]={__rollup__=~\".+\",machine=\"web1\"}&match[]=odd{__rollup__!=\"min\"}",
		"query=count_values(\"v\",cpu_usage_percent)&start=0&end=1e4&step=1&timeout=-1s",
		"metric=cpu_usage_percent&limit=1&limit_per_metric=2",
	} {
		for path := range byte(8) {
			f.Add(path, seed, seed)
		}
	}
	// A short timeout keeps the costliest fuzzed queries (subqueries over
	// huge ranges) from stalling the run; they answer 503 timeout.
	st, err := live.New(live.Options{})
	if err != nil {
		f.Fatal(err)
	}
	st.Update("web1", time.Now().UnixMilli(), []*live.Series{live.NewSeries("load1", nil), live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "0"}})}, []float64{1, 2})
	// MaxSeries 3 lets the fixture's series through and fails wider answers.
	h := newTestAPI(f, func(o *Options) { o.Timeout, o.Live, o.MaxSeries = time.Second, st, 3 })
	paths := []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/machine/values", "/api/v1/metadata", "/api/v1/status/buildinfo", "/federate"}
	f.Fuzz(func(t *testing.T, path byte, query, body string) {
		p := paths[int(path)%len(paths)]
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path, r.URL.RawQuery = p, query
		if body != "" {
			r.Method = http.MethodPost
			r.Body = httptestBody(body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusMethodNotAllowed || w.Code == http.StatusNotFound {
			return // a POST to a GET-only endpoint, answered by the mux
		}
		if p == "/federate" {
			// Text exposition or a plain-text error.
			if w.Code != 200 && w.Code != 400 {
				t.Fatalf("federate ?%q: status %d: %s", query, w.Code, w.Body)
			}
			return
		}
		var resp struct{ Status, ErrorType, Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s ?%q body %q: answer is not JSON (%v): %s", p, query, body, err, w.Body)
		}
		switch {
		case w.Code == 200 && resp.Status == "success":
		case w.Code != 200 && resp.Status == "error" && resp.ErrorType != "" && resp.Error != "":
			// Prometheus' status of each errorType.
			if want := map[string]int{"bad_data": 400, "execution": 422, "timeout": 503}[resp.ErrorType]; want != w.Code {
				t.Fatalf("%s ?%q body %q: %d %s", p, query, body, w.Code, w.Body)
			}
		default:
			t.Fatalf("%s ?%q body %q: status %d with %s", p, query, body, w.Code, w.Body)
		}
	})
}

func httptestBody(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
