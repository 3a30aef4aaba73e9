package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// rwSeriesOfLabels builds a remote-write series from name/value pairs.
func rwTS(samples []prompb.Sample, kv ...string) prompb.TimeSeries {
	ts := prompb.TimeSeries{Samples: samples}
	for i := 0; i+1 < len(kv); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ts
}

func rwBody(t testing.TB, series ...prompb.TimeSeries) []byte {
	t.Helper()
	b, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// rwPost sends body to h as Prometheus does; hdr are extra header pairs
// (a "" value removes the header).
func rwPost(h http.Handler, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// rwError is a response's error message ("" when none).
func rwError(rec *httptest.ResponseRecorder) string {
	var out struct{ Error string }
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return out.Error
}

// stored returns every raw series matching ms with its samples.
func (e *env) stored(ms ...*labels.Matcher) map[string][][2]float64 {
	e.t.Helper()
	q, err := e.st.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		e.t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, ms...)
	out := map[string][][2]float64{}
	for set.Next() {
		ser := set.At()
		it := ser.Iterator(nil)
		var pts [][2]float64
		for it.Next() != 0 {
			t, v := it.At()
			pts = append(pts, [2]float64{float64(t), v})
		}
		out[ser.Labels().String()] = pts
	}
	if err := set.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func nameIs(n string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, "__name__", n) }

// Series are stored with exactly the labels sent (no machine label added),
// stale markers included; the machine label's value groups them into a
// dashboard machine marked remote_write, whose live values leave stale
// markers out.
func TestRemoteWriteStoresLabelsAsSent(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	h := e.srv.RemoteWriteHandler()
	t0 := tick(0)
	body := rwBody(t,
		rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}, {Value: 2, Timestamp: t0 + 1000}},
			"__name__", "up", "instance", "localhost:9090", "job", "prometheus"),
		rwTS([]prompb.Sample{{Value: 5, Timestamp: t0}, {Value: math.Float64frombits(value.StaleNaN), Timestamp: t0 + 1000}},
			"__name__", "go_goroutines", "instance", "localhost:9090", "job", "prometheus"),
		rwTS([]prompb.Sample{{Value: math.Inf(1), Timestamp: t0}}, "__name__", "job:up:sum", "job", "prometheus"),
		rwTS([]prompb.Sample{{Value: 7, Timestamp: t0}}, "__name__", "node_load1", "machine", "db-1", "instance", "db-1:9100"),
	)
	rec := rwPost(h, body)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := e.stored(labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	want := map[string]int{
		`{__name__="up", instance="localhost:9090", job="prometheus"}`:            2,
		`{__name__="go_goroutines", instance="localhost:9090", job="prometheus"}`: 2,
		`{__name__="job:up:sum", job="prometheus"}`:                               1,
		`{__name__="node_load1", instance="db-1:9100", machine="db-1"}`:           1,
	}
	if len(got) != len(want) {
		t.Fatalf("stored %v", got)
	}
	for k, n := range want {
		if len(got[k]) != n {
			t.Fatalf("%s: %v, want %d samples (all: %v)", k, got[k], n, got)
		}
	}
	if v := got[`{__name__="go_goroutines", instance="localhost:9090", job="prometheus"}`][1][1]; !value.IsStaleNaN(v) {
		t.Fatalf("stale marker stored as %v", v)
	}
	if n := testutil.ToFloat64(e.srv.m.ingested); n != 6 {
		t.Fatalf("ingested %v, want 6", n)
	}
	if n := testutil.ToFloat64(e.srv.m.rwSamples); n != 6 {
		t.Fatalf("remote_write_samples_received %v, want 6", n)
	}
	if n := testutil.ToFloat64(e.srv.m.rwRequests.WithLabelValues("204")); n != 1 {
		t.Fatalf("requests{204} %v", n)
	}

	m, ok := e.live.Machine("localhost:9090")
	if !ok || m.Info.Source != live.SourceRemoteWrite {
		t.Fatalf("machine localhost:9090: %+v %v", m, ok)
	}
	vals := map[string]float64{}
	for _, v := range m.Metrics {
		vals[v.Name+fmt.Sprint(v.Labels)] = v.Value
	}
	if len(vals) != 1 || vals["up[{job prometheus}]"] != 2 {
		t.Fatalf("live values %v, want up{job=prometheus}=2 only (stale go_goroutines left out)", vals)
	}
	if !e.live.Known("db-1:9100") || e.live.Known("") {
		t.Fatal("db-1:9100 not a machine, or a machine without id")
	}
}

// Each reason a sample can never be stored answers 400 naming it, stores
// the request's other samples, and counts the refused ones by reason.
func TestRemoteWriteRejectsInvalidSamples(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	h := e.srv.RemoteWriteHandler()
	t0 := tick(0)
	good := rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "ok_total", "instance", "a")
	many := []string{"__name__", "wide"}
	for i := range 31 {
		many = append(many, fmt.Sprintf("l%02d", i), "v")
	}
	for _, c := range []struct {
		name   string
		ts     prompb.TimeSeries
		reason string
		msg    string
	}{
		{"no name", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "job", "x"), reasonInvalidSeries, "no __name__ label"},
		{"bad name", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "1up"), reasonInvalidSeries, "invalid metric name"},
		{"bad label", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "a", "bad-label", "x"), reasonInvalidSeries, `invalid label name "bad-label"`},
		{"reserved label", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "a", "__meta_x", "x"), reasonInvalidSeries, "invalid label name"},
		{"repeated label", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "a", "job", "x", "job", "y"), reasonInvalidSeries, `label "job" repeated`},
		{"bad utf8", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "a", "job", "\xff"), reasonInvalidSeries, "not valid UTF-8"},
		{"long value", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "a", "job", strings.Repeat("x", 1025)), reasonInvalidSeries, "limit 1024"},
		{"too many labels", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, many...), reasonInvalidSeries, "31 labels, limit 30"},
		{"reserved name", rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "sysmonstm_agent_seq"), reasonReservedName, "reserved for the hub"},
		{"too new", rwTS([]prompb.Sample{{Value: 1, Timestamp: time.Now().Add(time.Hour).UnixMilli()}}, "__name__", "a"), reasonTooNew, "in the future"},
		{"too old", rwTS([]prompb.Sample{{Value: 1, Timestamp: time.Now().Add(-3 * time.Hour).UnixMilli()}}, "__name__", "a"), reasonTooOld, "older than 2h"},
		{"native histogram", prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{{Timestamp: t0}}}, reasonUnsupported, "native histograms are not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.dropped(c.reason)
			stored := testutil.ToFloat64(e.srv.m.ingested)
			rec := rwPost(h, rwBody(t, good, c.ts))
			if rec.Code != http.StatusBadRequest || !strings.Contains(rwError(rec), c.msg) || !strings.Contains(rwError(rec), "1 samples not stored") {
				t.Fatalf("%d %s, want 400 naming %q", rec.Code, rec.Body, c.msg)
			}
			if d := e.dropped(c.reason) - before; d != 1 {
				t.Fatalf("dropped{%s} +%v, want +1", c.reason, d)
			}
			if d := testutil.ToFloat64(e.srv.m.ingested) - stored; d != 1 {
				t.Fatalf("ingested +%v, want the valid sample stored", d)
			}
		})
	}
	if pts := e.stored(nameIs("ok_total")); len(pts) != 1 {
		t.Fatalf("valid series: %v", pts)
	}
}

// Bodies that are not remote write 1.0 are refused as a whole, with a
// status saying whether the sender could ever succeed.
func TestRemoteWriteRefusesBadBodies(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.MaxBodyBytes = 1 << 10 })
	h := e.srv.RemoteWriteHandler()
	valid := rwBody(t, rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}}, "__name__", "a"))
	raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}}, "__name__", "a")}}).Marshal()
	big := make([]prompb.TimeSeries, 200)
	for i := range big {
		big[i] = rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}}, "__name__", fmt.Sprintf("series_%d_%s", i, strings.Repeat("x", 30)))
	}
	bomb := snappy.Encode(nil, make([]byte, 9<<10)) // 9 KiB of zeros: a few hundred bytes compressed
	for _, c := range []struct {
		name string
		body []byte
		hdr  []string
		code int
		msg  string
	}{
		{"no encoding", valid, []string{"Content-Encoding", ""}, 415, "Content-Encoding"},
		{"gzip", valid, []string{"Content-Encoding", "gzip"}, 415, "snappy"},
		{"remote write 2", valid, []string{"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 415, "remote write 2.0 is not supported"},
		{"json", valid, []string{"Content-Type", "application/json"}, 415, "application/x-protobuf"},
		{"not snappy", raw, nil, 400, "not snappy-compressed"},
		{"not protobuf", snappy.Encode(nil, []byte("hello, world")), nil, 400, "not a protobuf prometheus.WriteRequest"},
		{"body too large", rwBody(t, big...), nil, 413, "body larger than 1024 bytes"},
		{"decompression bomb", bomb, nil, 413, "decompressed body too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := rwPost(h, c.body, c.hdr...)
			if rec.Code != c.code || !strings.Contains(rwError(rec), c.msg) {
				t.Fatalf("%d %s, want %d naming %q", rec.Code, rec.Body, c.code, c.msg)
			}
		})
	}
	if n := len(e.stored(nameIs("a"))); n != 0 {
		t.Fatalf("stored %d series from refused bodies", n)
	}
	if rec := rwPost(h, valid); rec.Code != http.StatusNoContent {
		t.Fatalf("valid body after refusals: %d %s", rec.Code, rec.Body)
	}
}

// Remote write takes agent tokens as HTTP ingest does; a token bound to a
// machine may only write series grouped under that machine, and a request
// with any other is refused as a whole.
func TestRemoteWriteAuth(t *testing.T) {
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		switch {
		case token == "fleet":
			return nil
		case token != "bound":
			return errors.New("unknown token")
		case machine != "web-1:9100":
			return fmt.Errorf("%w: bound to web-1:9100", ErrPermissionDenied)
		}
		return nil
	}, func(o *Options) {
		o.TokenAuth = func(_ context.Context, token string) error {
			if token != "fleet" && token != "bound" {
				return errors.New("unknown token")
			}
			return nil
		}
	})
	h := e.srv.RemoteWriteHandler()
	t0 := tick(0)
	mine := rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "up", "instance", "web-1:9100")
	other := rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "up", "instance", "db-1:9100")
	for _, c := range []struct {
		name string
		auth string
		body []byte
		code int
		msg  string
	}{
		{"no token", "", rwBody(t, mine), 401, "no token"},
		{"basic", "Basic YTpi", rwBody(t, mine), 401, "no token"},
		{"unknown token", "Bearer nope", rwBody(t, mine), 401, "token rejected"},
		{"bound, other machine", "Bearer bound", rwBody(t, mine, other), 403, `machine "db-1:9100"`},
		{"bound, own machine", "Bearer bound", rwBody(t, mine), 204, ""},
		{"fleet token", "Bearer fleet", rwBody(t, other), 204, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := rwPost(h, c.body, "Authorization", c.auth)
			if rec.Code != c.code || !strings.Contains(rwError(rec), c.msg) {
				t.Fatalf("%d %s, want %d naming %q", rec.Code, rec.Body, c.code, c.msg)
			}
		})
	}
	got := e.stored(nameIs("up"))
	if len(got) != 2 || len(got[`{__name__="up", instance="db-1:9100"}`]) != 1 {
		t.Fatalf("stored %v: the refused request stored something", got)
	}
}

// Over a series cap a request is answered 429 with Retry-After (so
// Prometheus retries it): the series the machine already has are stored,
// and a retry after the new series were freed stores the rest.
func TestRemoteWriteSeriesCap(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, t.TempDir(), nil, withSeriesCap(2), func(o *Options) { o.Now = clock; o.SeriesIdle = time.Minute })
	h := e.srv.RemoteWriteHandler()
	t0 := now.Add(-time.Minute).UnixMilli()
	series := func(names ...string) []prompb.TimeSeries {
		var out []prompb.TimeSeries
		for _, n := range names {
			out = append(out, rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", n, "instance", "busy:9100"))
		}
		return out
	}
	if rec := rwPost(h, rwBody(t, series("a", "b")...)); rec.Code != 204 {
		t.Fatalf("under the cap: %d %s", rec.Code, rec.Body)
	}
	rec := rwPost(h, rwBody(t, series("a", "c")...))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "series limit reached") {
		t.Fatalf("over the cap: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if e.refused(limitPerMachine) != 1 || e.dropped(reasonSeriesLimit) != 1 {
		t.Fatalf("refused %v dropped %v", e.refused(limitPerMachine), e.dropped(reasonSeriesLimit))
	}
	if len(e.stored(nameIs("c"))) != 0 {
		t.Fatal("refused series stored")
	}
	// A and b go idle; the retry stores c.
	now = now.Add(2 * time.Minute)
	e.srv.series.expire(now.UnixMilli())
	if rec := rwPost(h, rwBody(t, series("a", "c")...)); rec.Code != 204 {
		t.Fatalf("retry after idle: %d %s", rec.Code, rec.Body)
	}
	if len(e.stored(nameIs("c"))) != 1 {
		t.Fatal("retried series not stored")
	}
}

// While storage refuses writes the request is answered 503 with
// Retry-After and nothing is stored; once space is back the retry stores it.
func TestRemoteWriteWhileDiskFull(t *testing.T) {
	gate := &diskGate{}
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.Writable = gate.writable })
	h := e.srv.RemoteWriteHandler()
	body := rwBody(t, rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}, {Value: 2, Timestamp: tick(1)}}, "__name__", "a", "instance", "x"))
	gate.fill()
	rec := rwPost(h, body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "disk full") {
		t.Fatalf("while full: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if e.dropped(reasonDiskFull) != 2 || len(e.stored(nameIs("a"))) != 0 {
		t.Fatalf("dropped{disk_full} %v, stored %v", e.dropped(reasonDiskFull), e.stored(nameIs("a")))
	}
	gate.free()
	if rec := rwPost(h, body); rec.Code != 204 {
		t.Fatalf("after space freed: %d %s", rec.Code, rec.Body)
	}
	if pts := e.stored(nameIs("a")); len(pts[`{__name__="a", instance="x"}`]) != 2 {
		t.Fatalf("stored %v", pts)
	}
}

// With every request slot taken a request is answered 429 with
// Retry-After, before its body is read.
func TestRemoteWriteBusy(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.RemoteWriteConcurrency = 1 })
	h := e.srv.RemoteWriteHandler()
	e.srv.rwSlots <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := &readTracker{r: bytes.NewReader(rwBody(t, rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}}, "__name__", "a")))}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/write", body)
	req.Header.Set("Content-Encoding", "snappy")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || body.read.Load() {
		t.Fatalf("%d %q, body read %v", rec.Code, rec.Header().Get("Retry-After"), body.read.Load())
	}
	if n := testutil.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectBusy)); n != 1 {
		t.Fatalf("rejected{busy} %v", n)
	}
	<-e.srv.rwSlots
	if rec := rwPost(h, rwBody(t, rwTS([]prompb.Sample{{Value: 1, Timestamp: tick(0)}}, "__name__", "a"))); rec.Code != 204 {
		t.Fatalf("slot free: %d %s", rec.Code, rec.Body)
	}
}

// BenchmarkRemoteWrite: one request of 2,000 series with one sample each
// (loadgen's and Prometheus' usual batch), as the hub serves it: decode,
// validate, store in the real raw tier, update the live state. Every
// iteration writes the next second of the same series.
func BenchmarkRemoteWrite(b *testing.B) {
	e := newEnv(&testing.T{}, b.TempDir(), nil)
	defer e.stop()
	h := e.srv.RemoteWriteHandler()
	const machines, series = 20, 100
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	body := func(i int) []byte {
		var wr prompb.WriteRequest
		for m := range machines {
			for s := range series {
				wr.Timeseries = append(wr.Timeseries, rwTS([]prompb.Sample{{Value: float64(i), Timestamp: t0 + int64(i)*1000}},
					"__name__", fmt.Sprintf("metric_%d", s%10), "cpu", fmt.Sprint(s), "instance", fmt.Sprintf("host-%d:9100", m), "job", "node"))
			}
		}
		raw, _ := wr.Marshal()
		return snappy.Encode(nil, raw)
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = body(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%len(bodies) == 0 {
			b.StopTimer()
			t0 += int64(len(bodies)) * 1000
			for k := range bodies {
				bodies[k] = body(k)
			}
			b.StartTimer()
		}
		if rec := rwPost(h, bodies[i%len(bodies)]); rec.Code != http.StatusNoContent {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*machines*series), "ns/sample")
}

// Concurrent requests share the series cache, the store refs and the live
// state: each stores what it was sent (run with -race).
func TestRemoteWriteConcurrentRequests(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	h := e.srv.RemoteWriteHandler()
	const senders, requests = 4, 25
	done := make(chan string, senders)
	for g := range senders {
		go func() {
			for i := range requests {
				ts := tick(0) + int64(g*requests+i)
				body := rwBody(t, rwTS([]prompb.Sample{{Value: float64(i), Timestamp: ts}}, "__name__", "shared", "instance", "a"),
					rwTS([]prompb.Sample{{Value: 1, Timestamp: ts}}, "__name__", "own", "instance", "a", "sender", fmt.Sprint(g)))
				if rec := rwPost(h, body); rec.Code != http.StatusNoContent {
					done <- fmt.Sprintf("sender %d request %d: %d %s", g, i, rec.Code, rec.Body)
					return
				}
			}
			done <- ""
		}()
	}
	for range senders {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	if pts := e.stored(nameIs("shared"))[`{__name__="shared", instance="a"}`]; len(pts) != senders*requests {
		t.Fatalf("shared series: %d samples, want %d", len(pts), senders*requests)
	}
	if n := len(e.stored(nameIs("own"))); n != senders {
		t.Fatalf("%d own series, want %d", n, senders)
	}
}
