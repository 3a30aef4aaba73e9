package alert

import (
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

func TestForgetEndsAlerts(t *testing.T) {
	h := newHarness(t, Options{RepeatInterval: time.Minute})
	h.createNotifier("ops", "critical")
	h.createRule(`{"name":"offline","kind":"offline","for":"1m","severity":"critical"}`)
	s := h.series("up")
	h.observe("web-1", s, 1)
	h.observe("web-2", s, 1)
	h.advance(61*time.Second, time.Second, func() { h.observe("web-2", s, 1) })
	a := h.one(StateFiring)
	if a.Machine != "web-1" {
		t.Fatalf("firing %+v", a)
	}
	h.waitSent(1)

	if ok, err := h.live.Forget("web-1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	h.e.Forget("web-1")
	h.clk.Add(time.Second)
	h.step()
	if as := h.alerts(StatePending, StateFiring); len(as) != 0 {
		t.Fatalf("active after Forget: %+v", as)
	}
	r := h.one(StateResolved)
	if r.ID != a.ID || r.ResolvedReason != ReasonForgotten {
		t.Fatalf("resolved %+v", r)
	}
	h.clk.Add(time.Second)
	h.step()
	got := h.waitSent(2)
	if got[1].msg.Status != notify.StatusResolved {
		t.Fatalf("second message %+v", got[1].msg)
	}
	// Nothing more about web-1: no new offline alert, no repeats.
	h.advance(10*time.Minute, time.Second, func() { h.observe("web-2", s, 1) })
	if as := h.alerts(StatePending, StateFiring); len(as) != 0 {
		t.Fatalf("active after Forget and 10 minutes: %+v", as)
	}
	if got := h.settle(); len(got) != 2 {
		t.Fatalf("%d messages after Forget, want 2: %+v", len(got), got)
	}
	// It comes back with its data, and is watched again.
	h.observe("web-1", s, 1)
	h.advance(61*time.Second, time.Second, func() { h.observe("web-2", s, 1) })
	if b := h.one(StateFiring); b.Machine != "web-1" || b.ID == a.ID {
		t.Fatalf("after return %+v", b)
	}
}

// Machines that only push (HTTP ingest, Prometheus remote write) have no
// connection whose end means they are down: offline rules for every
// machine skip them.
func TestOfflineSkipsHTTPOnlyMachines(t *testing.T) {
	h := newHarness(t, Options{})
	h.createRule(`{"name":"offline","kind":"offline","for":"1m","severity":"critical"}`)
	s := h.series("temperature_celsius")
	for _, info := range []live.MachineInfo{
		{ID: "sensor", Source: live.SourceHTTP}, {ID: "localhost:9100", Source: live.SourceRemoteWrite}, {ID: "web-1", Source: live.SourceAgent},
	} {
		h.live.Connect(info)
		h.e.Connected(info)
		h.observe(info.ID, s, 20)
	}
	h.advance(2*time.Minute, 5*time.Second, nil)
	if a := h.one(StateFiring); a.Machine != "web-1" {
		t.Fatalf("firing %+v, want only web-1's", a)
	}
	// A rule naming the machine asks for it explicitly.
	h.createRule(`{"name":"sensor offline","kind":"offline","for":"1m","machines":["sensor"],"severity":"warning"}`)
	h.observe("sensor", s, 20)
	h.advance(2*time.Minute, 5*time.Second, nil)
	as := h.alerts(StateFiring)
	if len(as) != 2 || as[0].Machine == as[1].Machine {
		t.Fatalf("firing %+v, want web-1's and sensor's", as)
	}
}
