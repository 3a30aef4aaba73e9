package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// seriesOf counts the distinct series stored for machine, the hub's own
// sequence series left out.
func (e *env) seriesOf(machine string) int {
	e.t.Helper()
	q, err := e.st.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		e.t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil,
		labels.MustNewMatcher(labels.MatchEqual, "machine", machine),
		labels.MustNewMatcher(labels.MatchNotEqual, labels.MetricName, seqMetric))
	n := 0
	for set.Next() {
		n++
	}
	if err := set.Err(); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// defsRound defines ids 0..n-1 as series "bomb" with label round=r, i=id.
func (a *agentConn) defsRound(r, n int) {
	d := make([]*pb.SeriesDef, n)
	for i := range d {
		d[i] = &pb.SeriesDef{Id: uint32(i), Name: "bomb", Labels: []*pb.Label{
			{Name: "i", Value: fmt.Sprint(i)}, {Name: "round", Value: fmt.Sprint(r)}}}
	}
	a.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: d}}})
}

// batchAll writes value v for ids 0..n-1.
func (a *agentConn) batchAll(seq uint64, ts int64, n int, v float64) {
	ids := make([]uint32, n)
	vals := make([]float64, n)
	for i := range ids {
		ids[i], vals[i] = uint32(i), v
	}
	a.batch(seq, ts, ids, vals)
}

func (e *env) dropped(reason string) float64 {
	return testutil.ToFloat64(e.srv.m.dropped.WithLabelValues(reason))
}

func (e *env) refused(limit string) float64 {
	return testutil.ToFloat64(e.srv.m.refusedSeries.WithLabelValues(limit))
}

func withSeriesCap(n int) func(*Options) {
	return func(o *Options) { o.MaxSeriesPerStream = n }
}

// Re-defining the same ids with new labels on one stream made new series
// without end (issue #12: 105 k series under a 5 k cap). Each redefinition
// is a new series; past the cap they are refused and their values dropped,
// while the stream stays open and series the machine already has still work.
func TestRedefiningSeriesIdsCannotEscapeTheCap(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, withSeriesCap(200))
	a, err := e.connect("bomber", 1)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 10; r++ {
		a.defsRound(r, 100)
		a.batchAll(uint64(r+1), tick(r), 100, float64(r))
	}
	a.waitAck(10)
	// The cap counts the hub's sequence series too: 199 of the agent's.
	if n := e.seriesOf("bomber"); n != 199 {
		t.Fatalf("stored %d series, want 199 under a cap of 200", n)
	}
	if got := e.refused(limitPerMachine); got != 1000-199 {
		t.Errorf("refused{max_series_per_machine} = %v, want %d", got, 1000-199)
	}
	if got := e.dropped(reasonSeriesLimit); got != 1000-199 {
		t.Errorf("dropped{series_limit} = %v, want %d", got, 1000-199)
	}
	// A series the machine already has is admitted again, on the same stream.
	a.defsRound(0, 100)
	a.batchAll(11, tick(11), 100, 11)
	a.waitAck(11)
	if pts := e.points("bomb", "bomber"); len(pts) != 199+100 {
		t.Fatalf("stored %d points, want 299", len(pts))
	}
}

// Reconnecting gave a fresh series table and a fresh count. The count is
// per machine, over all its streams, and outlives them.
func TestReconnectingCannotEscapeTheCap(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, withSeriesCap(200))
	for r := 0; r < 10; r++ {
		a, err := e.connect("bomber", 7)
		if err != nil {
			t.Fatal(err)
		}
		a.defsRound(r, 100)
		a.batchAll(uint64(r+1), tick(r), 100, 1)
		a.waitAck(uint64(r + 1))
		a.cancel()
	}
	if n := e.seriesOf("bomber"); n != 199 {
		t.Fatalf("stored %d series over 10 connections, want 199 under a cap of 200", n)
	}
	// Another machine is not affected.
	b, _ := e.connect("good", 1)
	b.defsRound(0, 100)
	b.batchAll(1, tick(1), 100, 1)
	b.waitAck(1)
	if n := e.seriesOf("good"); n != 100 {
		t.Fatalf("good machine stored %d series, want 100", n)
	}
}

// A restarted hub rebuilds the count from the raw tier, so a restart does
// not reset the cap either.
func TestSeriesCapSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, nil, withSeriesCap(200))
	a, _ := e.connect("bomber", 1)
	a.defsRound(0, 150)
	a.batchAll(1, tick(1), 150, 1)
	a.waitAck(1)
	a.cancel()
	e.stop()

	e2 := newEnv(t, dir, nil, withSeriesCap(200))
	// 151 restored (150 + the sequence series of instance 1), plus the new
	// instance's sequence series: 48 of the 100 new series fit.
	b, err := e2.connect("bomber", 2)
	if err != nil {
		t.Fatal(err)
	}
	b.defsRound(1, 100)
	b.batchAll(1, tick(2), 100, 1)
	b.waitAck(1)
	if n := e2.seriesOf("bomber"); n != 198 {
		t.Fatalf("stored %d series after a restart, want 198 under a cap of 200", n)
	}
	if got := e2.refused(limitPerMachine); got != 52 {
		t.Errorf("refused = %v, want 52", got)
	}
	// A machine at its cap cannot open a stream as a new agent process: its
	// batches could not be tracked.
	for _, id := range []uint64{3, 4} {
		if _, err := e2.connect("bomber", id); id == 4 && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("stream of instance %d at the cap: %v, want ResourceExhausted", id, err)
		}
	}
}

// The hub-wide cap bounds all machines together.
func TestActiveSeriesCapIsGlobal(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.MaxActiveSeries = 150 })
	a, _ := e.connect("a", 1)
	a.defsRound(0, 100)
	a.batchAll(1, tick(1), 100, 1)
	a.waitAck(1)
	b, _ := e.connect("b", 1)
	b.defsRound(0, 100)
	b.batchAll(1, tick(1), 100, 1)
	b.waitAck(1)
	if na, nb := e.seriesOf("a"), e.seriesOf("b"); na != 100 || nb != 48 {
		t.Fatalf("stored a=%d b=%d series, want 100 and 48 under a hub-wide cap of 150", na, nb)
	}
	if got := e.refused(limitActive); got != 52 {
		t.Errorf("refused{max_active_series} = %v, want 52", got)
	}
	// A machine with its series reconnects as a new agent process even
	// with the hub at its cap: only its new series are refused.
	a.cancel()
	a2, err := e.connect("a", 2)
	if err != nil {
		t.Fatalf("reconnect with a new agent process at the hub-wide cap: %v", err)
	}
	a2.defsRound(0, 100)
	a2.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: []*pb.SeriesDef{{Id: 100, Name: "new_series"}}}}})
	a2.batchAll(1, tick(2), 101, 2)
	a2.waitAck(1)
	if pts := e.points("bomb", "a"); len(pts) != 200 {
		t.Fatalf("machine a stored %d points after reconnecting, want 200", len(pts))
	}
	if got := e.refused(limitActive); got != 53 {
		t.Errorf("refused{max_active_series} = %v after a new series, want 53", got)
	}
	code, out := post(t, e.srv.HTTPHandler(), `{"machine":"c","metrics":[{"name":"x","value":1}]}`)
	if code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(out["error"]), "limit for all machines") {
		t.Fatalf("HTTP ingest over the hub-wide cap: %d %v", code, out)
	}
}

// bombBody is one HTTP ingest body of n new series of machine.
func bombBody(machine string, from, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"machine":%q,"metrics":[`, machine)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"bomb","labels":{"v":"%d"},"value":1}`, from+i)
	}
	b.WriteString("]}")
	return b.String()
}

// POST /api/v1/ingest had no series limit at all (12 posts of 40 k new
// label values: 480 k series). It shares the machine's count with its
// streams; a request that stores nothing because of a cap gets 429.
func TestHTTPIngestSeriesCap(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, withSeriesCap(250))
	h := e.srv.HTTPHandler()
	a, _ := e.connect("box", 1)
	a.defsRound(0, 50)
	a.batchAll(1, tick(1), 50, 1)
	a.waitAck(1)

	code, out := post(t, h, bombBody("box", 0, 150))
	if code != 200 || out["accepted"] != 150.0 {
		t.Fatalf("first 150: %d %v", code, out)
	}
	// 49 fit (50 + the sequence series + 150 counted), 51 do not.
	code, out = post(t, h, bombBody("box", 150, 100))
	if code != 200 || out["accepted"] != 49.0 || out["rejected"] != 51.0 {
		t.Fatalf("partly over the cap: %d %v", code, out)
	}
	if errs := fmt.Sprint(out["errors"]); !strings.Contains(errs, "limit per machine") {
		t.Errorf("errors do not name the limit: %s", errs)
	}
	code, out = post(t, h, bombBody("box", 1000, 100))
	if code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(out["error"]), "limit per machine") {
		t.Fatalf("all over the cap: %d %v", code, out)
	}
	// Series the machine has are still taken.
	if code, out := post(t, h, bombBody("box", 0, 10)); code != 200 || out["accepted"] != 10.0 {
		t.Fatalf("known series: %d %v", code, out)
	}
	if n := e.seriesOf("box"); n != 249 {
		t.Fatalf("stored %d series, want 249", n)
	}
	if got := testutil.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectTooManySeries)); got != 1 {
		t.Errorf("rejected{too_many_series} = %v, want 1", got)
	}
	if got := e.dropped(reasonSeriesLimit); got != 151 {
		t.Errorf("dropped{series_limit} = %v, want 151", got)
	}
	// The stream cannot add series past the cap either.
	a.defsRound(1, 1)
	a.batchAll(2, tick(2), 1, 1)
	a.waitAck(2)
	if n := e.seriesOf("box"); n != 249 {
		t.Fatalf("stream added a series past the cap: %d", n)
	}
}

// Series that nobody writes for SeriesIdle stop counting.
func TestIdleSeriesStopCounting(t *testing.T) {
	var offset atomic.Int64 // ns added to the clock
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, t.TempDir(), nil, withSeriesCap(100), func(o *Options) { o.Now = now; o.SeriesIdle = time.Hour })
	h := e.srv.HTTPHandler()
	if code, out := post(t, h, bombBody("box", 0, 100)); code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	if code, _ := post(t, h, bombBody("box", 100, 1)); code != http.StatusTooManyRequests {
		t.Fatalf("at the cap: %d", code)
	}
	offset.Store(int64(30 * time.Minute))
	e.srv.series.expire(now().UnixMilli())
	if code, _ := post(t, h, bombBody("box", 100, 1)); code != http.StatusTooManyRequests {
		t.Fatalf("half an hour idle: %d, want 429", code)
	}
	offset.Store(int64(61 * time.Minute))
	e.srv.series.expire(now().UnixMilli())
	if code, out := post(t, h, bombBody("box", 100, 1)); code != 200 {
		t.Fatalf("after an idle hour: %d %v", code, out)
	}
	// A series held by an open stream never expires.
	a, _ := e.connect("held", 1)
	a.defsRound(0, 1)
	a.batchAll(1, now().Add(-time.Second).UnixMilli(), 1, 1)
	a.waitAck(1)
	offset.Store(int64(5 * time.Hour))
	e.srv.series.expire(now().UnixMilli())
	if n, _ := e.srv.series.counts("held"); n != 2 {
		t.Fatalf("open stream's series counted %d, want 2", n)
	}
}

// Agents could write sysmonstm_agent_seq, the hub's record of each agent's
// last stored batch: sysmonstm_* names are reserved for the hub.
func TestReservedNamesAreRefused(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	a, _ := e.connect("m", 0x2a)
	a.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: []*pb.SeriesDef{
		{Id: 0, Name: seqMetric, Labels: []*pb.Label{{Name: "instance", Value: "2b"}}},
		{Id: 1, Name: "load1"},
	}}}})
	a.batch(1, tick(1), []uint32{0, 1}, []float64{1e9, 1})
	a.waitAck(1)
	if got := testutil.ToFloat64(e.srv.m.invalidSeries); got != 1 {
		t.Errorf("invalid series = %v, want 1", got)
	}
	code, out := post(t, e.srv.HTTPHandler(), `{"machine":"m","metrics":[{"name":"sysmonstm_agent_seq","labels":{"instance":"2c"},"value":1e9}]}`)
	if code != 400 || !strings.Contains(fmt.Sprint(out["errors"]), "reserved for the hub") {
		t.Fatalf("HTTP ingest of a reserved name: %d %v", code, out)
	}
	if got := e.dropped(reasonReservedName); got != 1 {
		t.Errorf("dropped{reserved_name} = %v, want 1", got)
	}
	// Only the hub's own sequence series exists, with the real seq.
	pts := e.points(seqMetric, "m")
	if len(pts) != 1 || pts[0][1] != 1 {
		t.Fatalf("sequence series: %v", pts)
	}
}

// HTTP ingest counted too-old and too-new samples as invalid_series, and
// answered accepted: 2 when it stored one of two identical samples.
func TestHTTPIngestReasonsAndAcceptedCount(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	h := e.srv.HTTPHandler()
	now := time.Now()
	code, out := post(t, h, fmt.Sprintf(`{"machine":"m","metrics":[
		{"name":"a","value":1,"ts":%d},
		{"name":"a","value":1,"ts":%d},
		{"name":"a","value":2,"ts":%d},
		{"name":"old","value":1,"ts":%d},
		{"name":"future","value":1,"ts":%d}]}`,
		now.UnixMilli(), now.UnixMilli(), now.UnixMilli(), now.Add(-3*time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli()))
	if code != 200 || out["accepted"] != 1.0 || out["rejected"] != 4.0 {
		t.Fatalf("%d %v, want accepted 1, rejected 4", code, out)
	}
	if pts := e.points("a", "m"); len(pts) != 1 || pts[0][1] != 1 {
		t.Fatalf("stored %v", pts)
	}
	for reason, want := range map[string]float64{reasonTooOld: 1, reasonTooNew: 1, reasonDuplicate: 2, reasonInvalidSeries: 0} {
		if got := e.dropped(reason); got != want {
			t.Errorf("dropped{%s} = %v, want %v", reason, got, want)
		}
	}
}

// readTracker records whether a request body was read.
type readTracker struct {
	r    io.Reader
	read atomic.Bool
}

func (t *readTracker) Read(p []byte) (int, error) {
	t.read.Store(true)
	return t.r.Read(p)
}

// HTTP ingest read and decoded up to 4 MiB before it checked the token.
func TestHTTPIngestChecksTokenBeforeBody(t *testing.T) {
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, _ string) error {
		if token != "good" {
			return errors.New("unknown token")
		}
		return nil
	}, func(o *Options) {
		o.TokenAuth = func(_ context.Context, token string) error {
			if token != "good" {
				return errors.New("unknown token")
			}
			return nil
		}
	})
	h := e.srv.HTTPHandler()
	for _, c := range []struct {
		token string
		code  int
		read  bool
	}{{"bad", 401, false}, {"good", 200, true}} {
		body := &readTracker{r: strings.NewReader(`{"machine":"m","metrics":[{"name":"a","value":1}]}`)}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest", body)
		req.Header.Set("Authorization", "Bearer "+c.token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code || body.read.Load() != c.read {
			t.Errorf("token %q: %d, body read %v; want %d, read %v", c.token, rec.Code, body.read.Load(), c.code, c.read)
		}
	}
	if got := testutil.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectUnauthenticated)); got != 1 {
		t.Errorf("rejected{unauthenticated} = %v, want 1", got)
	}
}

// BenchmarkSeriesBookAdmit measures admitting new series and the heap the
// book holds per active series (reported as bytes/series).
func BenchmarkSeriesBookAdmit(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	book := newSeriesBook(n, n, time.Hour)
	for i := 0; i < n; i++ {
		if err := book.admit(fmt.Sprintf("m%d", i%1000), uint64(i)*0x9e3779b97f4a7c15, 1, admission{hold: true}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSeries := float64(after.HeapAlloc-before.HeapAlloc) / n
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = book.admit("m1", uint64(i%1000)*0x9e3779b97f4a7c15, 2, admission{})
	}
	b.ReportMetric(perSeries, "bytes/series")
}
