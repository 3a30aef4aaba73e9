package edge

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// allPublic is a forwarder that makes every machine, series and label
// public.
func allPublic(t testing.TB) *Forwarder {
	t.Helper()
	st, err := live.New(live.Options{})
	if err != nil {
		t.Fatal(err)
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
	f := allPublic(t)
	public := map[string]bool{}
	event := func(typ, name string) live.Event {
		return live.Event{Type: typ, Machine: wiretest.MachineID, JSON: wiretest.Read(t, name)}
	}

	var batch wire.Metrics
	if err := json.Unmarshal(wiretest.Read(t, wiretest.Metrics), &batch); err != nil {
		t.Fatal(err)
	}
	msg, typ := f.filterEvent(event(wire.TypeMetrics, wiretest.Metrics), public)
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

// BenchmarkFilterMetrics filters one metrics event of 100 series with the
// default public metrics (run: go test -bench FilterMetrics ./internal/edge).
func BenchmarkFilterMetrics(b *testing.B) {
	f := allPublic(b)
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
