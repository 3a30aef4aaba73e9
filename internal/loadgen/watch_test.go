package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

func TestWatcherReadsMetricsHead(t *testing.T) {
	w := &watcher{prefix: []byte(`"machine":"loadgen-`)}
	for _, c := range []struct {
		msg string
		ts  int64
		ok  bool
	}{
		{`{"type":"metrics","machine":"loadgen-07","ts":1700000000123,"metrics":[{"name":"a","labels":{},"value":1}]}`, 1700000000123, true},
		{`{"type":"metrics","machine":"other-1","ts":1700000000123,"metrics":[]}`, 0, false},
		{`{"type":"machine","machine":"loadgen-07","ts":1}`, 0, false},
		{`{"type":"metrics","machine":"loadgen-07","ts":12x,"metrics":[]}`, 0, false},
		{`{"type":"metrics","machine":"loadgen-07","ts":12`, 0, false},
		{``, 0, false},
	} {
		ts, ok := w.metricsTs([]byte(c.msg))
		if ts != c.ts || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.msg, ts, ok, c.ts, c.ok)
		}
	}
}

func TestLatencySummary(t *testing.T) {
	ms := make([]float64, 0, 200)
	for i := 200; i >= 1; i-- {
		ms = append(ms, float64(i)/2)
	}
	got := latencySummary(ms)
	if got.Events != 200 || got.P50Ms != 50 || got.P99Ms != 99 || got.MaxMs != 100 {
		t.Fatalf("%+v", got)
	}
	if e := latencySummary(nil); e.Events != 0 || e.MaxMs != 0 {
		t.Fatalf("%+v", e)
	}
}

// FuzzWatcherMetricsTs feeds the live-stream head parser arbitrary
// messages: it never panics, and it takes only metrics events of the run's
// machines whose `"ts":` field is a number.
func FuzzWatcherMetricsTs(f *testing.F) {
	f.Add([]byte(`{"type":"metrics","machine":"loadgen-07","ts":1700000000123,"metrics":[]}`))
	f.Add([]byte(`{"type":"metrics","machine":"loadgen-","ts":-1,`))
	f.Add([]byte(`{"type":"metrics",`))
	w := &watcher{prefix: []byte(`"machine":"loadgen-`)}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ts, ok := w.metricsTs(msg)
		if !ok {
			return
		}
		i := bytes.Index(msg, []byte(`,"ts":`))
		if !bytes.HasPrefix(msg, append(append([]byte{}, metricsPrefix...), w.prefix...)) || i < 0 {
			t.Fatalf("ts %d taken from %q", ts, msg)
		}
		rest := msg[i+len(`,"ts":`):]
		if v, err := strconv.ParseInt(string(rest[:bytes.IndexByte(rest, ',')]), 10, 64); err != nil || v != ts {
			t.Fatalf("ts %d, the message says %q", ts, rest)
		}
	})
}

// The watcher reads whole messages of any size from a real WebSocket,
// keeping only their heads: large and small metrics events of the run's
// machines are measured, other messages are not.
func TestWatcherOverWebSocket(t *testing.T) {
	ts := time.Now().Add(-5 * time.Millisecond).UnixMilli()
	big := `{"type":"metrics","machine":"loadgen-1","ts":` + strconv.FormatInt(ts, 10) + `,"metrics":[` +
		strings.Repeat(`{"name":"x","labels":{},"value":1},`, 2000) + `{"name":"x","labels":{},"value":1}]}`
	msgs := []string{
		`{"type":"snapshot","machines":[` + strings.Repeat(`{"id":"loadgen-1"},`, 10_000) + `{}]}`,
		big,
		`{"type":"metrics","machine":"other-1","ts":` + strconv.FormatInt(ts, 10) + `,"metrics":[]}`,
		`{"type":"metrics","machine":"loadgen-2","ts":` + strconv.FormatInt(ts, 10) + `,"metrics":[]}`,
		``,
	}
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, m := range msgs {
			if err := c.Write(r.Context(), websocket.MessageText, []byte(m)); err != nil {
				t.Error(err)
				return
			}
		}
		close(sent)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := startWatch(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", "loadgen-", time.UnixMilli(ts), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	<-sent
	testutil.Until(t, 5*time.Second, "two events measured", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.lat) >= 2
	})
	cancel()
	got := w.result()
	if got.Events != 2 || got.Err != "" || got.P50Ms < 4 || got.MaxMs > 10_000 {
		t.Fatalf("result %+v: want the two metrics events of loadgen-* machines, each at least 5 ms late", got)
	}
	// Both events are stamped in the same second: one window of two.
	wantStart := time.UnixMilli(ts / 1000 * 1000).UTC().Format(time.RFC3339)
	if len(got.Windows) != 1 || got.Windows[0].Events != 2 || got.Windows[0].Start != wantStart || got.Windows[0].MaxMs != got.MaxMs {
		t.Fatalf("windows %+v: want one of 2 events from %s, max %v", got.Windows, wantStart, got.MaxMs)
	}
}

// BenchmarkWatcherRead compares the watcher's head-only read with reading
// each message whole (websocket.Conn.Read, as it did before): one op is one
// 70 KB metrics event (1,000 series) over loopback.
func BenchmarkWatcherRead(b *testing.B) {
	msg := []byte(`{"type":"metrics","machine":"loadgen-1","ts":1,"metrics":[` +
		strings.Repeat(`{"name":"bench_gauge","labels":{"i":"1"},"value":12345.678901},`, 1099) + `{}]}`)
	for _, whole := range []bool{false, true} {
		name := map[bool]string{false: "head", true: "whole"}[whole]
		b.Run(name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer c.CloseNow()
				for r.Context().Err() == nil {
					if c.Write(r.Context(), websocket.MessageText, msg) != nil {
						return
					}
				}
			}))
			defer srv.Close()
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			head := make([]byte, watchHead)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if whole {
					_, _, err = c.Read(ctx)
				} else {
					_, err = readHead(ctx, c, head)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWatcherWindowsCountLateEvents checks the per-window counts of events
// over the two targets: a run of windows meets a p99 target when at most
// 1 % of its events are over it.
func TestWatcherWindowsCountLateEvents(t *testing.T) {
	w := &watcher{window: 1000, done: make(chan struct{})}
	close(w.done)
	for i, ms := range []float64{1, 10, 10.5, 49, 50, 50.01, 300} { // stamped in the first second
		w.lat, w.ts = append(w.lat, ms), append(w.ts, 5000+int64(i))
	}
	w.lat, w.ts = append(w.lat, 60), append(w.ts, 6000) // the next second
	got := w.result().Windows
	if len(got) != 2 {
		t.Fatalf("windows %+v: want 2", got)
	}
	if g := got[0]; g.Events != 7 || g.Over10Ms != 5 || g.Over50Ms != 2 {
		t.Errorf("first window %+v: want 7 events, 5 over 10 ms (10.5, 49, 50, 50.01, 300), 2 over 50 ms", g)
	}
	if g := got[1]; g.Events != 1 || g.Over10Ms != 1 || g.Over50Ms != 1 {
		t.Errorf("second window %+v: want its one event of 60 ms over both", g)
	}
}
