package promapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// t0 is the start of every test's data.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestAPI opens a real store holding web1 and web2's cpu_usage_percent
// (one sample a second for 10 minutes, value i and 2i) and a gauge with
// NaN and ±Inf samples, and serves the API over it.
func newTestAPI(t testing.TB, edit func(*Options)) http.Handler {
	t.Helper()
	s, err := store.Open(store.Options{Dir: t.TempDir(), Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	app := s.Appender(context.Background())
	for i := range 600 {
		ts := t0.Add(time.Duration(i) * time.Second).UnixMilli()
		// In this order: the head lists series as they were created.
		for m, machine := range []string{"web1", "web2"} {
			if _, err := app.Append(0, labels.FromStrings("__name__", "cpu_usage_percent", "machine", machine, "cpu", "total"), ts, float64(m+1)*float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := app.Append(0, labels.FromStrings("__name__", "odd", "machine", "web1", "kind", []string{"nan", "pinf", "ninf"}[i]), t0.UnixMilli(), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	o := Options{Queryable: s.Queryable(), Now: func() time.Time { return t0.Add(5 * time.Minute) }}
	if edit != nil {
		edit(&o)
	}
	mux := http.NewServeMux()
	for _, rt := range New(o).Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	return mux
}

// get answers GET path?params (POST form when post) and its status.
func get(t testing.TB, h http.Handler, post bool, path string, params url.Values) (int, string) {
	t.Helper()
	var r *http.Request
	if post {
		r = httptest.NewRequest(http.MethodPost, path, strings.NewReader(params.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if !json.Valid(w.Body.Bytes()) {
		t.Errorf("%s: body is not JSON: %s", path, w.Body)
	}
	return w.Code, strings.TrimSpace(w.Body.String())
}

func TestQueryShapes(t *testing.T) {
	h := newTestAPI(t, nil)
	f := func(path string, post bool, params url.Values, wantStatus int, want string) {
		t.Helper()
		status, body := get(t, h, post, path, params)
		if status != wantStatus || body != want {
			t.Errorf("%s %v:\n got %d %s\nwant %d %s", path, params, status, body, wantStatus, want)
		}
	}
	v := func(kv ...string) url.Values {
		u := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			u.Add(kv[i], kv[i+1])
		}
		return u
	}
	// Instant vector at an explicit time (unix seconds, the milliseconds
	// written in three digits as Prometheus writes them) and at "now".
	f("/api/v1/query", false, v("query", `cpu_usage_percent{machine="web2"}`, "time", "1767225610.5"), 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"cpu_usage_percent","cpu":"total","machine":"web2"},"value":[1767225610.500,"20"]}]}}`)
	f("/api/v1/query", true, v("query", `sum(cpu_usage_percent)`), 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767225900,"900"]}]}}`)
	// NaN and infinities as Prometheus writes them, in the order the
	// series were created (the head's order, as Prometheus answers an
	// instant query from its head; the rollup tiers hold nothing there, so
	// nothing is merged in).
	f("/api/v1/query", false, v("query", `odd`, "time", "2026-01-01T00:00:00Z"), 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"odd","kind":"nan","machine":"web1"},"value":[1767225600,"NaN"]},{"metric":{"__name__":"odd","kind":"pinf","machine":"web1"},"value":[1767225600,"+Inf"]},{"metric":{"__name__":"odd","kind":"ninf","machine":"web1"},"value":[1767225600,"-Inf"]}]}}`)
	f("/api/v1/query", false, v("query", `1+1`, "time", "100"), 200,
		`{"status":"success","data":{"resultType":"scalar","result":[100,"2"]}}`)
	f("/api/v1/query", false, v("query", `nothing_here`, "time", "100"), 200,
		`{"status":"success","data":{"resultType":"vector","result":[]}}`)
	// Range query: a matrix.
	f("/api/v1/query_range", true, v("query", `cpu_usage_percent{machine="web1"} offset 1m`, "start", "1767225720", "end", "1767225780", "step", "30s"), 200,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"cpu_usage_percent","cpu":"total","machine":"web1"},"values":[[1767225720,"60"],[1767225750,"90"],[1767225780,"120"]]}]}}`)
	// limit truncates with a warning.
	f("/api/v1/query", false, v("query", `cpu_usage_percent`, "time", "1767225610", "limit", "1"), 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"cpu_usage_percent","cpu":"total","machine":"web1"},"value":[1767225610,"10"]}]},"warnings":["results truncated due to limit"]}`)

	// Errors: Prometheus' types, statuses and messages.
	f("/api/v1/query", false, v("query", `sum(`), 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}`)
	f("/api/v1/query", false, v("query", `up`, "time", "yesterday"), 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"}`)
	f("/api/v1/query_range", false, v("query", `up`, "start", "10", "end", "5", "step", "1"), 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}`)
	f("/api/v1/query_range", false, v("query", `up`, "start", "0", "end", "5", "step", "0"), 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"}`)
	f("/api/v1/query_range", false, v("query", `up`, "start", "0", "end", "100000", "step", "1s"), 400,
		`{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}`)
	f("/api/v1/query_range", false, v("query", `up`, "start", "0", "end", "5", "step", "1e300"), 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"1e300\" to a valid duration. It overflows int64"}`)
	f("/api/v1/query", false, v("query", `label_replace(cpu_usage_percent, "machine", "x", "", "")`, "time", "1767225610"), 422,
		`{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}`)
}

// TestAppendValue: query values are written as Prometheus' API writes
// them (web/api/v1's codec over util/jsonutil).
func TestAppendValue(t *testing.T) {
	f := func(v parser.Value, want string) {
		t.Helper()
		b, err := appendValue(nil, v)
		if err != nil || string(b) != want || !json.Valid(b) {
			t.Errorf("%#v:\n got %s (%v)\nwant %s", v, b, err, want)
		}
	}
	ls := labels.FromStrings("__name__", "x", "q", `a"<b>`)
	f(promql.Scalar{T: 5, V: 1e-7}, `{"resultType":"scalar","result":[0.005,"1e-07"]}`)
	f(promql.Scalar{T: -1050, V: 1e21}, `{"resultType":"scalar","result":[-1.050,"1e+21"]}`)
	f(promql.String{T: 1000, V: "s\"\n"}, `{"resultType":"string","result":[1,"s\"\n"]}`)
	f(promql.Vector(nil), `{"resultType":"vector","result":[]}`)
	f(promql.Matrix{}, `{"resultType":"matrix","result":[]}`)
	f(promql.Vector{{Metric: ls, T: 1767225610040, F: math.Inf(-1)}, {T: 0, F: -0.25}},
		`{"resultType":"vector","result":[{"metric":{"__name__":"x","q":"a\"\u003cb\u003e"},"value":[1767225610.040,"-Inf"]},{"metric":{},"value":[0,"-0.25"]}]}`)
	f(promql.Matrix{{Metric: ls, Floats: []promql.FPoint{{T: 1, F: math.NaN()}, {T: 1999, F: 123456789}}}},
		`{"resultType":"matrix","result":[{"metric":{"__name__":"x","q":"a\"\u003cb\u003e"},"values":[[0.001,"NaN"],[1.999,"123456789"]]}]}`)
}

func TestQueryLimits(t *testing.T) {
	h := newTestAPI(t, func(o *Options) { o.MaxSamples = 100 })
	status, body := get(t, h, false, "/api/v1/query", url.Values{"query": {`count_over_time(cpu_usage_percent[5m])`}, "time": {"1767225900"}})
	want := `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}`
	if status != 422 || body != want {
		t.Errorf("over MaxSamples: %d %s, want 422 %s", status, body, want)
	}
	status, body = get(t, h, false, "/api/v1/query", url.Values{"query": {`cpu_usage_percent`}, "time": {"1767225900"}, "timeout": {"0.000000001"}})
	if status != 503 || !strings.Contains(body, `"errorType":"timeout"`) {
		t.Errorf("timeout=1ns: %d %s, want 503 timeout", status, body)
	}
}

// TestQueryMaxSeries: a query selecting or answering more than MaxSeries
// series, and a /series answer over it, fail with errorType execution
// (422); limit below it still truncates.
func TestQueryMaxSeries(t *testing.T) {
	h := newTestAPI(t, func(o *Options) { o.MaxSeries = 1 })
	const msg = `query selects more than 1 series (the hub's --query-max-series); narrow the selector or raise the limit"}`
	for _, c := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query", url.Values{"query": {`cpu_usage_percent`}, "time": {"1767225900"}}},
		{"/api/v1/query", url.Values{"query": {`sum(cpu_usage_percent)`}, "time": {"1767225900"}}},
		{"/api/v1/query_range", url.Values{"query": {`max(rate(cpu_usage_percent[1m]))`}, "start": {"1767225700"}, "end": {"1767225900"}, "step": {"10"}}},
		{"/api/v1/series", url.Values{"match[]": {`cpu_usage_percent`}}},
	} {
		// The engine prefixes the selection's error with its step.
		want := `{"status":"error","errorType":"execution","error":"expanding series: ` + msg
		if c.path == "/api/v1/series" {
			want = `{"status":"error","errorType":"execution","error":"` + msg
		}
		if status, body := get(t, h, false, c.path, c.params); status != 422 || body != want {
			t.Errorf("%s %v: %d %s, want 422 %s", c.path, c.params, status, body, want)
		}
	}
	f := func(path string, params url.Values) {
		t.Helper()
		if status, body := get(t, h, false, path, params); status != 200 {
			t.Errorf("%s %v: %d %s, want 200", path, params, status, body)
		}
	}
	f("/api/v1/query", url.Values{"query": {`cpu_usage_percent{machine="web1"}`}, "time": {"1767225900"}})
	f("/api/v1/series", url.Values{"match[]": {`cpu_usage_percent`}, "limit": {"1"}})
	// One selected series, more answered: count_values makes a series of
	// each distinct value of a range.
	h = newTestAPI(t, func(o *Options) { o.MaxSeries = 2 })
	if status, body := get(t, h, false, "/api/v1/query", url.Values{"query": {`count_values("v", cpu_usage_percent{machine="web1"})`}, "time": {"1767225900"}}); status != 200 {
		t.Errorf("count_values of one series: %d %s", status, body)
	}
	status, body := get(t, h, false, "/api/v1/query_range", url.Values{"query": {`count_values("v", cpu_usage_percent{machine="web1"})`}, "start": {"1767225800"}, "end": {"1767225900"}, "step": {"10"}})
	if status != 422 || !strings.Contains(body, "more than 2 series") {
		t.Errorf("count_values over a range: %d %s, want 422 too many series", status, body)
	}
}

func TestSeriesAndLabels(t *testing.T) {
	h := newTestAPI(t, nil)
	f := func(path string, params url.Values, wantStatus int, want string) {
		t.Helper()
		status, body := get(t, h, false, path, params)
		if status != wantStatus || body != want {
			t.Errorf("%s %v:\n got %d %s\nwant %d %s", path, params, status, body, wantStatus, want)
		}
	}
	f("/api/v1/series", url.Values{"match[]": {`cpu_usage_percent`, `odd{kind="nan"}`}}, 200,
		`{"status":"success","data":[{"__name__":"cpu_usage_percent","cpu":"total","machine":"web1"},{"__name__":"cpu_usage_percent","cpu":"total","machine":"web2"},{"__name__":"odd","kind":"nan","machine":"web1"}]}`)
	f("/api/v1/series", url.Values{"match[]": {`cpu_usage_percent`}, "limit": {"1"}}, 200,
		`{"status":"success","data":[{"__name__":"cpu_usage_percent","cpu":"total","machine":"web1"}],"warnings":["results truncated due to limit"]}`)
	f("/api/v1/series", url.Values{}, 400, `{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}`)
	f("/api/v1/series", url.Values{"match[]": {`{machine=~".*"}`}}, 400,
		`{"status":"error","errorType":"bad_data","error":"match[] must contain at least one non-empty matcher"}`)
	f("/api/v1/labels", url.Values{}, 200, `{"status":"success","data":["__name__","cpu","kind","machine"]}`)
	f("/api/v1/labels", url.Values{"match[]": {`cpu_usage_percent`}}, 200, `{"status":"success","data":["__name__","cpu","machine"]}`)
	f("/api/v1/label/machine/values", url.Values{}, 200, `{"status":"success","data":["web1","web2"]}`)
	f("/api/v1/label/kind/values", url.Values{"limit": {"2"}}, 200, `{"status":"success","data":["nan","ninf"],"warnings":["results truncated due to limit"]}`)
	f("/api/v1/label/nosuch/values", url.Values{}, 200, `{"status":"success","data":[]}`)
	f("/api/v1/label/machine/values", url.Values{"start": {"soon"}}, 400,
		`{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": invalid time value for 'start': cannot parse \"soon\" to a valid timestamp"}`)
	f("/api/v1/metadata", url.Values{"metric": {"load1"}}, 200,
		`{"status":"success","data":{"load1":[{"type":"gauge","help":"1-minute load average (runnable and uninterruptible tasks).","unit":""}]}}`)
	f("/api/v1/metadata", url.Values{"metric": {"pressure_some_seconds_total"}}, 200,
		`{"status":"success","data":{"pressure_some_seconds_total":[{"type":"counter","help":"Cumulative time at least one task stalled on the resource since boot (PSI).","unit":"seconds"}]}}`)
	f("/api/v1/metadata", url.Values{"metric": {"nosuch"}}, 200, `{"status":"success","data":{}}`)
	f("/api/v1/metadata", url.Values{"limit": {"0"}}, 200, `{"status":"success","data":{}}`)
	f("/api/v1/metadata", url.Values{"limit": {"x"}}, 400, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`)
	for _, c := range []struct {
		limit string
		want  int
	}{{"", len(metric.Catalogue)}, {"-1", len(metric.Catalogue)}, {"2", 2}} {
		_, body := get(t, h, false, "/api/v1/metadata", url.Values{"limit": {c.limit}})
		var resp struct{ Data map[string][]metadataEntry }
		if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Data) != c.want || resp.Data["cpu_usage_percent"] == nil && c.want > 2 {
			t.Errorf("metadata limit=%q: %d families (%v), want %d", c.limit, len(resp.Data), err, c.want)
		}
	}
	status, body := get(t, h, false, "/api/v1/status/buildinfo", nil)
	if status != 200 || !strings.Contains(body, `"goVersion":"go`) || !strings.Contains(body, `"version":`) {
		t.Errorf("buildinfo: %d %s", status, body)
	}
}

// heldQueryable is the store's Queryable whose Querier waits for release
// after telling entered, to hold a query inside the engine.
type heldQueryable struct {
	storage.Queryable
	entered chan struct{}
	release chan struct{}
}

func (h heldQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Queryable.Querier(mint, maxt)
}

// TestQueryConcurrency: with every query slot busy, a further query waits
// within its timeout and then answers 503 timeout; the held one completes.
func TestQueryConcurrency(t *testing.T) {
	held := heldQueryable{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := newTestAPI(t, func(o *Options) {
		held.Queryable = o.Queryable
		o.Queryable = held
		o.MaxConcurrent = 1
	})
	first := make(chan int)
	go func() {
		status, _ := get(t, h, false, "/api/v1/query", url.Values{"query": {`cpu_usage_percent`}, "time": {"1767225610"}})
		first <- status
	}()
	<-held.entered
	status, body := get(t, h, false, "/api/v1/query", url.Values{"query": {`cpu_usage_percent`}, "time": {"1767225610"}, "timeout": {"0.05"}})
	want := `{"status":"error","errorType":"timeout","error":"query timed out waiting for one of 1 query slots: every slot is busy"}`
	if status != 503 || body != want {
		t.Errorf("query with the only slot busy: %d %s, want 503 %s", status, body, want)
	}
	close(held.release)
	if status := <-first; status != 200 {
		t.Errorf("held query: %d", status)
	}
}
