package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	sutil "github.com/sysmonstm/sysmonstm/internal/testutil"
)

// receiver answers with the next of codes (then 204) and records the
// samples of accepted requests.
type receiver struct {
	mu      sync.Mutex
	codes   []int
	samples []int64 // timestamps accepted, in order
	auth    []string
	calls   atomic.Int64
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	if len(r.codes) > 0 {
		c := r.codes[0]
		r.codes = r.codes[1:]
		http.Error(w, "test answer", c)
		return
	}
	if req.Header.Get("Content-Encoding") != "snappy" || req.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		http.Error(w, "bad headers", 400)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.samples = append(r.samples, decodeRaw(raw)...)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.samples...)
}

// enqueue puts n one-sample commits (timestamps 1..n) into q via an encoder.
func enqueue(t *testing.T, q *Queue, from, to int) {
	t.Helper()
	e := &Encoder{}
	for i := from; i <= to; i++ {
		e.Reset()
		e.Add(labels.FromStrings("__name__", "x", "machine", "m"), int64(i), float64(i))
		if err := q.Append(snappy.Encode(nil, e.buf), 1, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func runSender(t *testing.T, opts SenderOptions) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := NewSender(opts)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	sutil.WaitFor(t, 20*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

func TestSenderRetriesThenDeliversInOrder(t *testing.T) {
	rcv := &receiver{codes: []int{503, 429, 500}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	q := openQ(t, t.TempDir(), 1<<30, 0, nil)
	defer q.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	stop := runSender(t, SenderOptions{Target: Target{URL: srv.URL + "/api/v1/write?token=secret"}, Queue: q, Metrics: m})
	defer stop()
	enqueue(t, q, 1, 50)
	waitFor(t, "50 samples", func() bool { return len(rcv.got()) == 50 })
	for i, ts := range rcv.got() {
		if ts != int64(i+1) {
			t.Fatalf("sample %d has ts %d: order or duplicates wrong: %v", i, ts, rcv.got())
		}
	}
	url := srv.URL + "/api/v1/write" // the query is redacted
	if got := testutil.ToFloat64(m.retries.WithLabelValues(url)); got != 3 {
		t.Fatalf("retries %v, want 3", got)
	}
	// The receiver has the samples before the sender has its answer
	// and counts them.
	waitFor(t, "50 samples counted sent", func() bool { return testutil.ToFloat64(m.sent.WithLabelValues(url)) == 50 })
	waitFor(t, "empty queue", func() bool { return q.Stats().PendingSamples == 0 })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sysmonstm_remote_write_pending_samples Samples in the target's queue not yet accepted by the receiver.
# TYPE sysmonstm_remote_write_pending_samples gauge
sysmonstm_remote_write_pending_samples{url="`+url+`"} 0
`), "sysmonstm_remote_write_pending_samples"); err != nil {
		t.Fatal(err)
	}
}

func TestSenderDropsA4xxBatch(t *testing.T) {
	rcv := &receiver{codes: []int{400}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	q := openQ(t, t.TempDir(), 1<<30, 0, nil)
	defer q.Close()
	enqueue(t, q, 1, 3) // one batch of 3 records: refused as a whole
	m := NewMetrics(nil)
	stop := runSender(t, SenderOptions{Target: Target{URL: srv.URL}, Queue: q, Metrics: m})
	defer stop()
	waitFor(t, "the refused batch counted", func() bool { return testutil.ToFloat64(m.failed.WithLabelValues(srv.URL)) == 3 })
	enqueue(t, q, 4, 5)
	waitFor(t, "later samples", func() bool { return len(rcv.got()) == 2 })
	if got := rcv.got(); got[0] != 4 || got[1] != 5 {
		t.Fatalf("got %v, want [4 5]", got)
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues(srv.URL)); got != 0 {
		t.Fatalf("a 400 was retried %v times", got)
	}
}

func TestSenderCredentialsFromFiles(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	basic := filepath.Join(dir, "basic")
	_ = os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	_ = os.WriteFile(basic, []byte("alice:pa:ss\n"), 0o600)

	for _, c := range []struct {
		target Target
		want   string
	}{
		{Target{URL: srv.URL, BearerTokenFile: tok}, "Bearer s3cret"},
		{Target{URL: srv.URL, BasicAuthFile: basic}, "Basic YWxpY2U6cGE6c3M="},
	} {
		q := openQ(t, t.TempDir(), 1<<30, 0, nil)
		before := rcv.calls.Load()
		stop := runSender(t, SenderOptions{Target: c.target, Queue: q})
		enqueue(t, q, 1, 1)
		waitFor(t, "a request", func() bool { return rcv.calls.Load() > before })
		stop()
		_ = q.Close()
		rcv.mu.Lock()
		got := rcv.auth[len(rcv.auth)-1]
		rcv.mu.Unlock()
		if got != c.want {
			t.Fatalf("Authorization %q, want %q", got, c.want)
		}
	}
}

// A receiver that is down: the sender retries and nothing is lost; once it
// is back everything arrives once.
func TestSenderSurvivesAnOutage(t *testing.T) {
	rcv := &receiver{}
	ln := httptest.NewUnstartedServer(rcv)
	addr := ln.Listener.Addr().String()
	_ = ln.Listener.Close() // nothing listens: connection refused
	q := openQ(t, t.TempDir(), 1<<30, 0, nil)
	defer q.Close()
	m := NewMetrics(nil)
	stop := runSender(t, SenderOptions{Target: Target{URL: "http://" + addr + "/w"}, Queue: q, Metrics: m})
	defer stop()
	enqueue(t, q, 1, 20)
	waitFor(t, "retries", func() bool { return testutil.ToFloat64(m.retries.WithLabelValues("http://"+addr+"/w")) >= 2 })
	if st := q.Stats(); st.PendingSamples != 20 || st.OldestTs != 1 {
		t.Fatalf("stats during the outage %+v", st)
	}
	srv := &http.Server{Handler: rcv}
	l2, err := listenAgain(addr)
	if err != nil {
		t.Skip("port taken meanwhile:", err)
	}
	go func() { _ = srv.Serve(l2) }()
	defer srv.Close()
	waitFor(t, "20 samples", func() bool { return len(rcv.got()) == 20 })
	if got := rcv.got(); got[0] != 1 || got[19] != 20 {
		t.Fatalf("got %v", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@vm.example.com:8428/api/v1/write?key=abc": "https://vm.example.com:8428/api/v1/write",
		"http://127.0.0.1:8428/api/v1/write":                       "http://127.0.0.1:8428/api/v1/write",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// decodeRaw returns the timestamps of an uncompressed WriteRequest, read
// with Prometheus' codec; nil when it does not decode.
func decodeRaw(raw []byte) []int64 {
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return nil
	}
	var out []int64
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			out = append(out, s.Timestamp)
		}
	}
	return out
}

func listenAgain(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// splitBatch keeps every sample once, a series in one shard and in order,
// and no request over the limit.
func TestSplitBatch(t *testing.T) {
	q := openQ(t, t.TempDir(), 1<<30, 0, nil)
	defer q.Close()
	e := &Encoder{}
	for commit := range 5 {
		e.Reset()
		for s := range 300 {
			e.Add(labels.FromStrings("__name__", "x", "machine", fmt.Sprint("m", s%7), "s", fmt.Sprint(s)), int64(commit+1), float64(s))
		}
		if err := q.Append(snappy.Encode(nil, e.buf), e.samples, 1); err != nil {
			t.Fatal(err)
		}
	}
	b, _, _ := q.Next()
	if len(b.Records) != 5 {
		t.Fatalf("%d records in the batch", len(b.Records))
	}
	shards, err := splitBatch(b, 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]int{}
	last := map[string]int64{}
	total := 0
	for sh, reqs := range shards {
		for _, r := range reqs {
			if r.samples > 100 {
				t.Fatalf("request of %d samples", r.samples)
			}
			raw, _ := snappy.Decode(nil, r.body)
			var wr prompb.WriteRequest
			if err := wr.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			if len(wr.Timeseries) != r.samples {
				t.Fatalf("request says %d samples, holds %d", r.samples, len(wr.Timeseries))
			}
			for _, ts := range wr.Timeseries {
				k := fmt.Sprint(ts.Labels)
				if s, ok := where[k]; ok && s != sh {
					t.Fatalf("series %s in shards %d and %d", k, s, sh)
				}
				where[k] = sh
				if ts.Samples[0].Timestamp <= last[k] {
					t.Fatalf("series %s out of order", k)
				}
				last[k] = ts.Samples[0].Timestamp
				total++
			}
		}
	}
	if total != 1500 || len(where) != 300 {
		t.Fatalf("%d samples of %d series, want 1500 of 300", total, len(where))
	}
	for sh, reqs := range shards {
		if len(reqs) == 0 {
			t.Fatalf("shard %d empty: the hash does not spread", sh)
		}
	}
}

// partialReceiver accepts the first accept requests and answers 503 to every
// later one; it counts each accepted sample by series and timestamp.
type partialReceiver struct {
	mu       sync.Mutex
	accept   int // -1: every request
	accepted int
	refused  int
	seen     map[string]int
}

func (r *partialReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.accept >= 0 && r.accepted >= r.accept {
		r.refused++
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, ts := range wr.Timeseries {
		var machine string
		for _, l := range ts.Labels {
			if l.Name == "machine" {
				machine = l.Value
			}
		}
		for _, s := range ts.Samples {
			r.seen[fmt.Sprintf("%s@%d", machine, s.Timestamp)]++
		}
	}
	r.accepted++
	w.WriteHeader(http.StatusNoContent)
}

func (r *partialReceiver) state() (accepted, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted, r.refused
}

// A record partly sent (some shards' requests accepted, the others failing)
// when the hub dies is not sent again whole after a restart: the requests
// already accepted are skipped, so each sample arrives exactly once, and
// the metrics count each once.
func TestSenderRestartMidRecordSendsEachSampleOnce(t *testing.T) {
	const machines, points = 100, 400 // 40,000 samples: 2 requests per shard
	dir := t.TempDir()
	q := openQ(t, dir, 1<<30, 0, nil)
	e := &Encoder{}
	e.Reset()
	for ts := 1; ts <= points; ts++ {
		for m := range machines {
			e.Add(labels.FromStrings("__name__", "x", "machine", fmt.Sprintf("m%03d", m)), int64(ts), 1)
		}
	}
	if err := q.Append(snappy.Encode(nil, e.buf), e.samples, e.minTs); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	down := &partialReceiver{accept: 3, seen: seen}
	srv := httptest.NewServer(down)
	m := NewMetrics(prometheus.NewRegistry())
	stop := runSender(t, SenderOptions{Target: Target{URL: srv.URL}, Queue: q, Metrics: m})
	waitFor(t, "3 requests accepted, the others refused", func() bool {
		a, r := down.state()
		return a == 3 && r >= 4
	})
	// The hub dies: the sender stops mid-record, nothing is committed.
	stop()
	srv.Close()
	sent1 := testutil.ToFloat64(m.sent.WithLabelValues(srv.URL))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	accepted1 := 0
	for _, n := range seen {
		accepted1 += n
	}
	if accepted1 == 0 || accepted1 >= machines*points || sent1 != float64(accepted1) {
		t.Fatalf("first receiver took %d of %d samples, sent metric %v: want part of them, counted once", accepted1, machines*points, sent1)
	}

	q = openQ(t, dir, 1<<30, 0, nil)
	defer q.Close()
	if got, want := q.Stats().PendingSamples, int64(machines*points-accepted1); got != want {
		t.Errorf("pending after restart = %d, want %d (the accepted part not counted)", got, want)
	}
	up := &partialReceiver{accept: -1, seen: seen}
	srv = httptest.NewServer(up)
	defer srv.Close()
	m = NewMetrics(prometheus.NewRegistry())
	stop = runSender(t, SenderOptions{Target: Target{URL: srv.URL}, Queue: q, Metrics: m})
	defer stop()
	waitFor(t, "the queue drained", func() bool { return q.Stats().PendingSamples == 0 })
	if sent2 := testutil.ToFloat64(m.sent.WithLabelValues(srv.URL)); sent1+sent2 != machines*points {
		t.Errorf("sent metric %v before and %v after the restart, want %d in all", sent1, sent2, machines*points)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(seen) != machines*points {
		t.Fatalf("%d distinct samples arrived, want %d", len(seen), machines*points)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("sample %s arrived %d times", k, n)
		}
	}
}

// The shard of a series is a fixed function of its labels, the same in
// every process (a restarted hub must cut a batch as before): these values
// are FNV-1a's, and must not change without changing splitVersion.
func TestSeriesShardIsFixed(t *testing.T) {
	want := []int{0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 1, 2}
	e := &Encoder{}
	var got []int
	for m := range len(want) {
		e.Reset()
		e.Add(labels.FromStrings("__name__", "x", "machine", fmt.Sprintf("m%03d", m)), 1, 1)
		ts, n := protowire.ConsumeBytes(e.buf[1:])
		if n < 0 {
			t.Fatal("bad encoding")
		}
		sh, samples, err := seriesShard(ts, sendShards)
		if err != nil || samples != 1 {
			t.Fatalf("seriesShard: %d samples, %v", samples, err)
		}
		got = append(got, sh)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("shards %v, want %v", got, want)
	}
}
