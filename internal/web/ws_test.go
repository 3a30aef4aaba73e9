package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

type wsMessage struct {
	Type     string            `json:"type"`
	Machine  json.RawMessage   `json:"machine"`
	Ts       int64             `json:"ts"`
	Metrics  []json.RawMessage `json:"metrics"`
	Machines []struct {
		ID       string            `json:"id"`
		Hostname string            `json:"hostname"`
		Online   bool              `json:"online"`
		Metrics  []json.RawMessage `json:"metrics"`
		Labels   map[string]string `json:"labels"`
	} `json:"machines"`
	Error string `json:"error"`
}

func dialWS(t *testing.T, e *env, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.ts.URL+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readMsg(t *testing.T, c *websocket.Conn) (wsMessage, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m wsMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return m, b
}

// machineID returns the id of a metrics event ("machine": ID) or a machine
// event ("machine": {...}).
func (m wsMessage) machineID() string {
	var id string
	if json.Unmarshal(m.Machine, &id) == nil {
		return id
	}
	var obj struct{ ID string }
	_ = json.Unmarshal(m.Machine, &obj)
	return obj.ID
}

func writeMsg(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// gauge reads a metric from the registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestWSSnapshotThenLive(t *testing.T) {
	e := newEnv(t, nil)
	c := dialWS(t, e, nil)

	snap, raw := readMsg(t, c)
	if snap.Type != "snapshot" || len(snap.Machines) != 2 {
		t.Fatalf("snapshot = %s", raw)
	}
	if strings.Contains(string(raw), "<script>") {
		t.Fatalf("markup not escaped: %s", raw)
	}
	evil, web := snap.Machines[0], snap.Machines[1]
	if evil.Hostname != hostile || evil.Labels["note"] != hostile || evil.Metrics == nil {
		t.Fatalf("hostile machine = %+v", evil)
	}
	if web.ID != "web-1" || !web.Online || len(web.Metrics) != 2 {
		t.Fatalf("web-1 = %+v", web)
	}
	testutil.Until(t, 5*time.Second, "client gauge", func() bool { return gauge(t, e.reg, "sysmonstm_websocket_clients") == 1 })

	e.live.Update("web-1", now.UnixMilli()+1000, []*live.Series{live.NewSeries("load1", nil)}, []float64{0.9})
	m, raw := readMsg(t, c)
	want := fmt.Sprintf(`{"type":"metrics","machine":"web-1","ts":%d,"metrics":[{"name":"load1","labels":{},"value":0.9}]}`, now.UnixMilli()+1000)
	if string(raw) != want || m.Ts != now.UnixMilli()+1000 {
		t.Fatalf("metrics event\n got %s\nwant %s", raw, want)
	}

	e.live.Connect(live.MachineInfo{ID: "new-host", Hostname: "new"})
	m, raw = readMsg(t, c)
	if m.Type != "machine" || m.machineID() != "new-host" || !strings.Contains(string(raw), `"online":true`) {
		t.Fatalf("machine event = %s", raw)
	}

	c.Close(websocket.StatusNormalClosure, "")
	testutil.Until(t, 5*time.Second, "client gauge back to 0", func() bool { return gauge(t, e.reg, "sysmonstm_websocket_clients") == 0 })
}

// delayHistogram returns the count and sum of
// sysmonstm_live_delay_seconds{stage=stage}.
func delayHistogram(t *testing.T, reg *prometheus.Registry, stage string) (uint64, float64) {
	t.Helper()
	return testutil.Histogram(t, reg, "sysmonstm_live_delay_seconds", "stage", stage)
}

// The websocket stage of sysmonstm_live_delay_seconds is observed once per
// metrics event written to a client, from the moment the live state took
// the batch; snapshots and machine events are not observed.
func TestWSObservesLiveDelay(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now.Add(3 * time.Millisecond) } })
	c := dialWS(t, e, nil)
	readMsg(t, c) // snapshot
	if n, _ := delayHistogram(t, e.reg, live.DelayWebSocket); n != 0 {
		t.Fatalf("%d observations before any metrics event", n)
	}
	e.live.Update("web-1", now.UnixMilli()+1000, []*live.Series{live.NewSeries("load1", nil)}, []float64{0.9})
	if m, raw := readMsg(t, c); m.Type != "metrics" {
		t.Fatalf("got %s", raw)
	}
	testutil.Until(t, 5*time.Second, "one observation", func() bool { n, _ := delayHistogram(t, e.reg, live.DelayWebSocket); return n == 1 })
	if _, sum := delayHistogram(t, e.reg, live.DelayWebSocket); sum < 0.0029 || sum > 0.0031 {
		t.Errorf("observed %v s, want 0.003 (the live clock at Update to the web clock at the write)", sum)
	}
	e.live.Connect(live.MachineInfo{ID: "new-host", Hostname: "new"})
	if m, raw := readMsg(t, c); m.Type != "machine" {
		t.Fatalf("got %s", raw)
	}
	e.live.Update("web-1", now.UnixMilli()+2000, []*live.Series{live.NewSeries("load1", nil)}, []float64{1})
	readMsg(t, c)
	testutil.Until(t, 5*time.Second, "two observations", func() bool { n, _ := delayHistogram(t, e.reg, live.DelayWebSocket); return n >= 2 })
	if n, sum := delayHistogram(t, e.reg, live.DelayWebSocket); n != 2 || sum < 0.0059 || sum > 0.0061 {
		t.Errorf("%d observations, sum %v s: want the two metrics events' 3 ms each, nothing for the machine event", n, sum)
	}
}

// barrier sends an invalid message and waits for its error reply: the
// server reads client messages in order, so everything sent before is
// applied.
func barrier(t *testing.T, c *websocket.Conn) {
	t.Helper()
	writeMsg(t, c, `{bad`)
	for {
		if m, _ := readMsg(t, c); m.Type == "error" {
			return
		}
	}
}

func TestWSSubscribeFilter(t *testing.T) {
	e := newEnv(t, nil)
	c := dialWS(t, e, nil)
	readMsg(t, c) // snapshot
	writeMsg(t, c, `{"subscribe":["evil"]}`)
	barrier(t, c)

	sr := []*live.Series{live.NewSeries("load1", nil)}
	ts := now.UnixMilli()
	for i := int64(1); i <= 10; i++ {
		e.live.Update("web-1", ts+i, sr, []float64{1})
		e.live.Update("evil", ts+i, sr, []float64{2})
		if m, raw := readMsg(t, c); m.Type != "metrics" || m.machineID() != "evil" || m.Ts != ts+i {
			t.Fatalf("filtered stream: %s", raw)
		}
	}
	// Machine events always pass.
	e.live.Connect(live.MachineInfo{ID: "web-1"})
	if m, raw := readMsg(t, c); m.Type != "machine" || m.machineID() != "web-1" {
		t.Fatalf("machine event filtered: %s", raw)
	}
	// Empty list: everything again.
	writeMsg(t, c, `{"subscribe":[]}`)
	barrier(t, c)
	e.live.Update("web-1", ts+100, sr, []float64{1})
	if m, raw := readMsg(t, c); m.Type != "metrics" || m.machineID() != "web-1" {
		t.Fatalf("after clearing the filter: %s", raw)
	}
}

// dialPath is dialWS for another path (e.g. /ws?mode=summary).
func dialPath(t *testing.T, e *env, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestWSSummaryMode: /ws?mode=summary sends a compact snapshot and summary
// events, metrics and processes only of the machines the client subscribes
// to, and machine events as usual.
func TestWSSummaryMode(t *testing.T) {
	e := newEnv(t, nil)
	c := dialPath(t, e, "/ws?mode=summary")
	_, raw := readMsg(t, c)
	var snap struct {
		Type     string `json:"type"`
		Mode     string `json:"mode"`
		Machines []map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Type != "snapshot" || snap.Mode != "summary" || len(snap.Machines) != 2 || strings.Contains(string(raw), "<script>") {
		t.Fatalf("summary snapshot %s", raw)
	}
	evil, web := snap.Machines[0], snap.Machines[1]
	if string(web["id"]) != `"web-1"` || string(web["summary"]) != `{"cpu":12.5,"load1":0.42}` || string(web["online"]) != "true" ||
		web["metrics"] != nil || !strings.Contains(string(web["info"]), `"cpu_cores":4`) {
		t.Fatalf("web-1 in the summary snapshot: %s", raw)
	}
	if string(evil["summary"]) != `{}` {
		t.Fatalf("evil in the summary snapshot: %s", raw)
	}

	total := live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}})
	ts := now.UnixMilli()
	e.live.Update("web-1", ts+1000, []*live.Series{total}, []float64{50})
	if m, raw := readMsg(t, c); string(raw) != fmt.Sprintf(`{"type":"summary","machine":"web-1","ts":%d,"summary":{"cpu":50,"load1":0.42}}`, ts+1000) {
		t.Fatalf("summary event %s (%+v)", raw, m)
	}
	// The queue is FIFO: had web-1's metrics been sent, they would come
	// before evil's summary.
	e.live.Update("evil", ts+1000, []*live.Series{total}, []float64{7})
	if m, raw := readMsg(t, c); m.Type != "summary" || m.machineID() != "evil" {
		t.Fatalf("want evil's summary, got %s", raw)
	}

	// The detail view of web-1: its metrics and processes come too, at once;
	// summaries keep coming for every machine (held back to one a second).
	writeMsg(t, c, `{"subscribe":["web-1"]}`)
	barrier(t, c)
	e.live.Update("evil", ts+2000, []*live.Series{total}, []float64{8})
	e.live.SetProcesses("evil", ts+2000, []live.Process{{PID: 1}})
	e.live.Update("web-1", ts+2000, []*live.Series{total}, []float64{60})
	e.live.SetProcesses("web-1", ts+2000, []live.Process{{PID: 2}})
	var got []string
	for len(got) < 4 {
		m, _ := readMsg(t, c)
		got = append(got, m.Type+":"+m.machineID())
	}
	if fmt.Sprint(got[:2]) != "[metrics:web-1 processes:web-1]" || !strings.Contains(fmt.Sprint(got[2:]), "summary:web-1") || !strings.Contains(fmt.Sprint(got[2:]), "summary:evil") {
		t.Fatalf("events while watching web-1: %v", got)
	}

	// Back to the overview: summaries only.
	writeMsg(t, c, `{"subscribe":[]}`)
	barrier(t, c)
	e.live.Update("web-1", ts+3000, []*live.Series{total}, []float64{70})
	e.live.Connect(live.MachineInfo{ID: "new-host"})
	got = got[:0]
	for len(got) < 2 {
		m, _ := readMsg(t, c)
		got = append(got, m.Type+":"+m.machineID())
	}
	if fmt.Sprint(got) != "[machine:new-host summary:web-1]" {
		t.Fatalf("events after unsubscribing: %v", got)
	}

	// mode=full is the default; anything else is refused before the upgrade.
	full := dialPath(t, e, "/ws?mode=full")
	if m, raw := readMsg(t, full); m.Type != "snapshot" || len(m.Machines) != 3 || m.Machines[2].Metrics == nil || strings.Contains(string(raw), `"summary"`) {
		t.Fatalf("mode=full snapshot %s", raw)
	}
	e.wantError(t, "/ws?mode=compact", http.StatusBadRequest, "invalid mode")
}

func TestWSMalformedClientMessage(t *testing.T) {
	e := newEnv(t, nil)
	c := dialWS(t, e, nil)
	readMsg(t, c)
	for _, bad := range []string{`{not json`, `[1,2]`, `{"subscribe":"web-1"}`, `{"subscribe":[1]}`} {
		writeMsg(t, c, bad)
		m, raw := readMsg(t, c)
		if m.Type != "error" || m.Error == "" {
			t.Fatalf("reply to %s: %s", bad, raw)
		}
	}
	// Still alive and usable.
	writeMsg(t, c, `{"subscribe":["web-1"],"future_field":true}`)
	e.live.Update("web-1", now.UnixMilli()+5, []*live.Series{live.NewSeries("load1", nil)}, []float64{3})
	if m, raw := readMsg(t, c); m.Type != "metrics" {
		t.Fatalf("after bad messages: %s", raw)
	}
	// Oversized message: closed with 1009, the server survives.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"subscribe":["`+strings.Repeat("x", 70<<10)+`"]}`))
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
				t.Fatalf("close status %v (%v), want 1009", s, err)
			}
			break
		}
	}
	if res, _ := e.get(t, "/health", nil); res.StatusCode != 200 {
		t.Fatal("server down")
	}
}

func TestWSBinaryMessageClosed(t *testing.T) {
	e := newEnv(t, nil)
	c := dialWS(t, e, nil)
	readMsg(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	if s := websocket.CloseStatus(err); s != websocket.StatusUnsupportedData {
		t.Fatalf("close status %v (%v), want 1003", s, err)
	}
}

// TestWSStuckClientDropped: a client that stops reading its socket never
// slows Update (its events are coalesced in the live subscription), and it is
// cut after the write timeout and counted as dropped.
// TestWSStuckClientDropped: a client that reads nothing never holds up
// Update; its events are coalesced while it is stuck, and it is cut exactly
// wsWriteTimeout after its write began. The test runs in a synctest bubble
// on an in-memory listener, so time is fake: it stands still while Update
// runs and moves only when every goroutine waits. An Update that waited on
// the stuck client would let fake time run to the write timeout, which the
// elapsed-time check sees whatever the machine's load.
func TestWSStuckClientDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBareEnv(t, func(o *Options) { o.WSQueue = 4 })
		c := dialPipeWS(t, e)
		readMsg(t, c) // snapshot; from now on the client reads nothing

		sr := make([]*live.Series, 100)
		vals := make([]float64, 100)
		for i := range sr {
			sr[i] = live.NewSeries("network_receive_bytes_per_second", metric.Labels{{Name: "interface", Value: fmt.Sprintf("veth%04d-%s", i, strings.Repeat("x", 40))}})
			vals[i] = 123456.789
		}
		began := time.Now()
		for i := range int64(1000) {
			e.live.Update("web-1", now.UnixMilli()+i, sr, vals)
		}
		if waited := time.Since(began); waited != 0 {
			t.Fatalf("Update waited %v behind a stuck client", waited)
		}
		synctest.Wait()
		if gauge(t, e.reg, "sysmonstm_websocket_coalesced_events_total") == 0 {
			t.Fatal("no event was coalesced for the stuck client")
		}
		// The first event's write began at `began` and blocks on the
		// client: cut at the write timeout, not a moment earlier.
		time.Sleep(wsWriteTimeout - time.Millisecond)
		synctest.Wait()
		if gauge(t, e.reg, "sysmonstm_websocket_dropped_clients_total") != 0 {
			t.Fatalf("stuck client dropped before the %s write timeout", wsWriteTimeout)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if gauge(t, e.reg, "sysmonstm_websocket_dropped_clients_total") != 1 {
			t.Fatal("stuck client not dropped at the write timeout")
		}
		if gauge(t, e.reg, "sysmonstm_websocket_clients") != 0 {
			t.Fatal("client gauge not back to 0 after the drop")
		}
	})
}

// dialPipeWS serves e on an in-memory listener (for tests inside a
// synctest bubble) and opens /ws on it. Server and connection end with
// the test.
func dialPipeWS(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	ln := testutil.NewPipeListener()
	hs := &http.Server{Handler: e.srv.Handler()}
	served := make(chan struct{})
	go func() { _ = hs.Serve(ln); close(served) }()
	client := &http.Client{Transport: &http.Transport{DialContext: ln.Dial}}
	t.Cleanup(func() {
		e.srv.Close()
		_ = hs.Close()
		client.CloseIdleConnections()
		<-served
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://web.test/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestWSOrigin(t *testing.T) {
	e := newEnv(t, nil)
	// Cross-origin browsers are refused, as JSON.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, e.ts.URL+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("cross-origin dial: err=%v res=%+v", err, res)
	}
	// Same origin works (no Origin at all is covered by every other test).
	c := dialWS(t, e, http.Header{"Origin": {e.ts.URL}})
	if m, _ := readMsg(t, c); m.Type != "snapshot" {
		t.Fatal("no snapshot")
	}
	// A plain GET is a JSON 4xx, not a crash.
	var body map[string]string
	res2, _ := e.get(t, "/ws", &body)
	if res2.StatusCode < 400 || res2.StatusCode >= 500 || body["error"] == "" {
		t.Fatalf("plain GET /ws: %d %v", res2.StatusCode, body)
	}
}

func TestWSCloseOnShutdown(t *testing.T) {
	e := newEnv(t, nil)
	c := dialWS(t, e, nil)
	readMsg(t, c)
	e.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v (%v), want 1001", s, err)
	}
	e.wantError(t, "/ws", http.StatusServiceUnavailable, "shutting down")
}

func TestDecodeClientMessage(t *testing.T) {
	f := func(in string, wantIDs []string, wantOK, wantErr bool) {
		t.Helper()
		ids, ok, err := decodeClientMessage([]byte(in))
		if (err != nil) != wantErr || ok != wantOK || fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
			t.Errorf("decode(%s) = %q, %v, %v", in, ids, ok, err)
		}
	}
	f(`{"subscribe":["a","b"]}`, []string{"a", "b"}, true, false)
	f(`{"subscribe":[]}`, []string{}, true, false)
	f(`{"subscribe":null}`, []string{}, true, false)
	f(`{}`, nil, false, false)
	f(`{"other":1}`, nil, false, false)
	f(`null`, nil, false, false)
	f(`{"subscribe":"a"}`, nil, false, true)
	f(`{"subscribe":[1]}`, nil, false, true)
	f(`[]`, nil, false, true)
	f(``, nil, false, true)
	f(`{"subscribe":["`+strings.Repeat("x", 300)+`"]}`, nil, false, true)
	f(`{"subscribe":[`+strings.Repeat(`"a",`, wsMaxSubscribe)+`"a"]}`, nil, false, true)
}

func FuzzWSClientMessage(f *testing.F) {
	for _, s := range []string{`{"subscribe":["a","b"]}`, `{"subscribe":[]}`, `{"subscribe":null}`, `{}`, `null`, `[`, `{"subscribe":[1]}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, ok, err := decodeClientMessage(b)
		if err != nil && (ok || ids != nil) {
			t.Fatalf("error with a result: %q %v %v", ids, ok, err)
		}
		if ok && ids == nil {
			t.Fatal("ok without a list")
		}
		if len(ids) > wsMaxSubscribe {
			t.Fatalf("%d ids", len(ids))
		}
		for _, id := range ids {
			if len(id) > metric.MaxMachineIDLength {
				t.Fatalf("id of %d bytes", len(id))
			}
		}
	})
}

// A burst of metrics events queued for a client is written in far fewer
// writes than events, and arrives complete, in order, byte for byte as
// the live state encoded it, untrusted strings escaped.
func TestWSBurstBatchedInOrder(t *testing.T) {
	e := newBareEnv(t, func(o *Options) { o.WSQueue = 1024 })
	var writes atomic.Int64
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.Listener = testutil.CountingListener{Listener: ts.Listener, Writes: &writes}
	ts.Start()
	t.Cleanup(func() { e.srv.Close(); ts.Close() })
	e.ts = ts
	c := dialWS(t, e, nil)
	c.SetReadLimit(1 << 20)
	readMsg(t, c) // snapshot
	testutil.Until(t, 5*time.Second, "client gauge", func() bool { return gauge(t, e.reg, "sysmonstm_websocket_clients") == 1 })

	sr := []*live.Series{live.NewSeries("note", metric.Labels{{Name: "text", Value: hostile}}), live.NewSeries("load1", nil)}
	const events = 500
	want := make([]string, events)
	sub := e.live.Subscribe(events + 10) // the same events as the client gets, to compare bytes
	defer sub.Close()
	before := writes.Load()
	for i := range events {
		e.live.Update("evil", now.UnixMilli()+int64(i+1), sr, []float64{float64(i), 0.5})
	}
	for i := range events {
		ev := <-sub.C()
		for ev.Type != live.EventMetrics {
			ev = <-sub.C()
		}
		want[i] = string(ev.JSON)
	}
	for i := range events {
		_, raw := readMsg(t, c)
		if string(raw) != want[i] {
			t.Fatalf("event %d:\n got %s\nwant %s", i, raw, want[i])
		}
		if strings.Contains(string(raw), "<script>") {
			t.Fatalf("event %d: markup not escaped: %s", i, raw)
		}
	}
	// The handler finds the queue full while it writes: batches of many
	// events per write. (One per event without batching.)
	t.Logf("%d writes for %d events", writes.Load()-before, events)
	if n := writes.Load() - before; n >= events/2 {
		t.Errorf("%d writes for %d queued events, want far fewer", n, events)
	}
	testutil.Until(t, 5*time.Second, "every event observed", func() bool { n, _ := delayHistogram(t, e.reg, live.DelayWebSocket); return n == events })
}
