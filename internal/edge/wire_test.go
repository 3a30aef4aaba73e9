package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// allPublic is a forwarder from a live state that makes every machine,
// series and label public; feed plays the wire scenario into that state.
func allPublic(t testing.TB, feed bool) *Forwarder {
	t.Helper()
	st, err := live.New(live.Options{Now: func() time.Time { return wiretest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	if feed {
		wiretest.Feed(st)
	}
	g, err := ParseGlobs("*")
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewForwarder(ForwarderOptions{URL: "ws://127.0.0.1:1/api/publish", Key: testKey, Source: st, Machines: g, Metrics: Selectors{{Name: "*"}}, MachineLabels: g})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWireFixtures: the forwarder reads the hub's live events as
// internal/wire defines them: a metrics batch goes on with its finite
// values (null ones stay behind), a machine event with the machine's
// public identity, a forgotten machine becomes a remove, and processes,
// summaries and alerts stay on the hub.
func TestWireFixtures(t *testing.T) {
	f := allPublic(t, false)
	public := map[string]bool{}
	event := func(typ, name string) live.Event {
		return live.Event{Type: typ, Machine: wiretest.MachineID, JSON: wiretest.Read(t, name)}
	}

	var batch wire.Metrics
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Metrics), &batch); err != nil {
		t.Fatal(err)
	}
	msg, typ := f.filterEvent(event(wire.TypeMetrics, wiretest.Metrics), public)
	wiretest.Check(t, wiretest.EdgePublishMetrics, msg)
	var got pubMessage
	if typ != wire.TypeMetrics || json.Unmarshal(msg, &got) != nil || got.Type != wire.TypeMetrics || got.Ts != batch.Ts {
		t.Fatalf("metrics: %s %s", typ, msg)
	}
	var want []wireValue
	for _, v := range batch.Metrics {
		if v.Value != nil && !math.IsInf(*v.Value, 0) {
			want = append(want, wireValue{Name: v.Name, Labels: v.Labels, Value: v.Value})
		}
	}
	show := func(vs []wireValue) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s%v=%v", v.Name, v.Labels, *v.Value))
		}
		return out
	}
	if len(want) != len(batch.Metrics)-2 || fmt.Sprint(show(got.Metrics)) != fmt.Sprint(show(want)) {
		t.Errorf("metrics forwarded:\n got %q\nwant %q", show(got.Metrics), show(want))
	}

	var me wire.MachineEvent
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Machine), &me); err != nil {
		t.Fatal(err)
	}
	msg, typ = f.filterEvent(event(wire.TypeMachine, wiretest.Machine), public)
	wiretest.Check(t, wiretest.EdgePublishMachine, msg)
	var gm struct {
		Type    string      `json:"type"`
		Machine wireMachine `json:"machine"`
	}
	if typ != wire.TypeMachine || json.Unmarshal(msg, &gm) != nil {
		t.Fatalf("machine: %s %s", typ, msg)
	}
	if m := gm.Machine; m.ID != me.Machine.ID || fmt.Sprint(m.Labels) != fmt.Sprint(me.Machine.Labels) || m.Online != me.Machine.Online || m.LastSeen == nil || !m.LastSeen.Equal(*me.Machine.LastSeen) || m.Metrics != nil {
		t.Errorf("machine forwarded as %+v, want the public part of %+v", gm.Machine, me.Machine)
	}

	msg, typ = f.filterEvent(event(wire.TypeMachine, wiretest.MachineForgotten), public)
	wiretest.Check(t, wiretest.EdgePublishRemove, msg)
	if typ != wire.TypeRemove || string(msg) != `{"type":"remove","machine":"web-1"}` {
		t.Errorf("forgotten machine: %s %s", typ, msg)
	}

	for _, c := range []struct{ typ, name string }{
		{wire.TypeProcesses, wiretest.Processes},
		{wire.TypeSummary, wiretest.Summary},
		{wire.TypeAlert, wiretest.Alert},
	} {
		if msg, _ := f.filterEvent(event(c.typ, c.name), public); msg != nil {
			t.Errorf("%s forwarded: %s", c.name, msg)
		}
	}
}

// TestEdgeWireFixtures: the forwarder's snapshot of the wire scenario is
// the publish snapshot fixture; the edge reads every publish fixture
// strictly (no unknown member) and applies it, and the browser messages it
// makes are the browser fixtures byte for byte.
func TestEdgeWireFixtures(t *testing.T) {
	f := allPublic(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	frames := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(MaxMessageBytes)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			frames <- b
		}
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := f.sendSnapshot(ctx, c, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-frames:
		wiretest.Check(t, wiretest.EdgePublishSnapshot, b)
	case <-ctx.Done():
		t.Fatal("no snapshot")
	}

	s := newState(5*time.Minute, 300, 10)
	wiretest.Check(t, wiretest.EdgeBrowserStatus, s.setPublisher(true).JSON)
	apply := func(name string) []live.Event {
		t.Helper()
		var msg pubMessage
		dec := json.NewDecoder(strings.NewReader(string(wiretest.Read(t, name))))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		evs, err := s.apply(&msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return evs
	}
	if evs := apply(wiretest.EdgePublishSnapshot); len(evs) != 2 || evs[0].Type != typeMachine || evs[1].Type != typeMetrics {
		t.Fatalf("snapshot: events %v", evs)
	}
	evs := apply(wiretest.EdgePublishMetrics)
	if len(evs) != 1 {
		t.Fatalf("metrics: %d events", len(evs))
	}
	wiretest.Check(t, wiretest.EdgeBrowserMetrics, evs[0].JSON)
	b, _, err := s.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Check(t, wiretest.EdgeBrowserSnapshot, b)
	if evs = apply(wiretest.EdgePublishMachine); len(evs) != 1 {
		t.Fatalf("machine: %d events", len(evs))
	}
	wiretest.Check(t, wiretest.EdgeBrowserMachine, evs[0].JSON)
	if evs = apply(wiretest.EdgePublishRemove); len(evs) != 1 {
		t.Fatalf("remove: %d events", len(evs))
	}
	wiretest.Check(t, wiretest.EdgeBrowserRemove, evs[0].JSON)
	if s.Len() != 0 {
		t.Errorf("%d machines after the remove", s.Len())
	}
}

// BenchmarkFilterMetrics filters one metrics event of 100 series with the
// default public metrics (run: go test -bench FilterMetrics ./internal/edge).
func BenchmarkFilterMetrics(b *testing.B) {
	f := allPublic(b, false)
	var err error
	if f.opts.Metrics, err = ParseSelectors(DefaultMetrics); err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"type":"metrics","machine":"loadgen-0001","ts":1795348800000,"metrics":[`)
	for i := range 100 {
		if i > 0 {
			msg = append(msg, ',')
		}
		switch {
		case i == 0:
			msg = append(msg, `{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":12.34}`...)
		case i < 9:
			msg = append(msg, fmt.Sprintf(`{"name":"cpu_usage_percent","labels":{"cpu":"%d"},"value":12.34}`, i)...)
		case i < 20:
			msg = append(msg, fmt.Sprintf(`{"name":"filesystem_usage_percent","labels":{"device":"/dev/sda%d","fstype":"ext4","mountpoint":"/m%d"},"value":12.5}`, i, i)...)
		default:
			msg = append(msg, fmt.Sprintf(`{"name":"app_requests_total","labels":{"app":"a%d"},"value":0.5}`, i)...)
		}
	}
	msg = append(msg, "]}"...)
	ev := live.Event{Type: live.EventMetrics, Machine: "loadgen-0001", JSON: msg}
	public := map[string]bool{}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := f.filterEvent(ev, public); out == nil {
			b.Fatal("nothing forwarded")
		}
	}
}
