package promapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// newFederateAPI serves /federate over a real live state; now is the clock
// of both.
func newFederateAPI(t testing.TB, now time.Time) (*live.State, http.Handler) {
	t.Helper()
	st, err := live.New(live.Options{Now: func() time.Time { return now }, MaxSeriesPerMachine: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	api := New(Options{Queryable: nil, Live: st, Now: func() time.Time { return now }})
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	return st, mux
}

func federateGet(h http.Handler, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/federate?"+query, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestFederate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st, h := newFederateAPI(t, now)
	ts := now.Add(-time.Second).UnixMilli()
	cpu0 := live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "0"}})
	cpuT := live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}})
	load := live.NewSeries("load1", nil)
	odd := live.NewSeries("filesystem_used_bytes", metric.Labels{{Name: "mountpoint", Value: "/mnt/\"x\"\\y\nz"}, {Name: "zone", Value: "ü"}})
	st.Update("web1", ts, []*live.Series{cpu0, cpuT, load, odd}, []float64{12.5, 7, 0.25, 1e21})
	st.Update("db1", ts-500, []*live.Series{cpuT, load}, []float64{99, 3})
	// A machine whose latest values are older than the lookback (5m).
	st.Update("gone", now.Add(-6*time.Minute).UnixMilli(), []*live.Series{load}, []float64{1})

	w := federateGet(h, url.Values{"match[]": {`{machine=~".+"}`}}.Encode())
	want := `# TYPE cpu_usage_percent untyped
cpu_usage_percent{cpu="total",machine="db1"} 99 1767268798500
cpu_usage_percent{cpu="0",machine="web1"} 12.5 1767268799000
cpu_usage_percent{cpu="total",machine="web1"} 7 1767268799000
# TYPE filesystem_used_bytes untyped
filesystem_used_bytes{machine="web1",mountpoint="/mnt/\"x\"\\y\nz",zone="ü"} 1e+21 1767268799000
# TYPE load1 untyped
load1{machine="db1"} 3 1767268798500
load1{machine="web1"} 0.25 1767268799000
`
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("federate every series: %d\n%s\nwant\n%s", w.Code, w.Body, want)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	// Two match[] are a union; the series in both appears once.
	w = federateGet(h, url.Values{"match[]": {`load1`, `{__name__="load1",machine="db1"}`, `cpu_usage_percent{cpu!="total",machine="web1"}`}}.Encode())
	want = `# TYPE cpu_usage_percent untyped
cpu_usage_percent{cpu="0",machine="web1"} 12.5 1767268799000
# TYPE load1 untyped
load1{machine="db1"} 3 1767268798500
load1{machine="web1"} 0.25 1767268799000
`
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("federate load1 and web1's cpu 0: %d\n%s\nwant\n%s", w.Code, w.Body, want)
	}

	for _, c := range []struct{ query, want string }{
		{"", "no match[] parameter provided"},
		{url.Values{"match[]": {`{machine=~".*"}`}}.Encode(), "match[] must contain at least one non-empty matcher"},
		{url.Values{"match[]": {`up{`}}.Encode(), "parse error"},
		{"match[]=%zz", "error parsing form values"},
	} {
		w := federateGet(h, c.query)
		if w.Code != 400 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("federate ?%s: %d %q, want 400 with %q", c.query, w.Code, w.Body, c.want)
		}
	}
}

// BenchmarkFederate1000x100: one scrape of every series of 1,000 machines
// with 100 series each.
func BenchmarkFederate1000x100(b *testing.B) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st, h := newFederateAPI(b, now)
	series := make([]*live.Series, 100)
	values := make([]float64, 100)
	for i := range series {
		series[i] = live.NewSeries(fmt.Sprintf("metric_%02d", i%20), metric.Labels{{Name: "device", Value: fmt.Sprintf("dev%d", i)}})
		values[i] = float64(i) * 1.5
	}
	for m := range 1000 {
		st.Update(fmt.Sprintf("machine-%04d", m), now.UnixMilli(), series, values)
	}
	q := url.Values{"match[]": {`{machine=~".+"}`}}.Encode()
	r := httptest.NewRequest(http.MethodGet, "/federate?"+q, nil)
	w := discardWriter{header: http.Header{}}
	h.ServeHTTP(&w, r)
	if w.n < 100_000*30 || w.status != 0 && w.status != 200 {
		b.Fatalf("scrape wrote %d bytes, status %d", w.n, w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.n = 0
		h.ServeHTTP(&w, r)
	}
	b.ReportMetric(float64(w.n), "bytes/scrape")
}

// discardWriter is an http.ResponseWriter that counts and discards.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return io.Discard.Write(p)
}
