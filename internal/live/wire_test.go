package live_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// next returns the next event of sub.
func next(t *testing.T, sub *live.Subscription) live.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return live.Event{}
}

// TestWireFixtures: the live state's encoders write the wire fixtures byte
// for byte (metrics, machine, forgotten machine, processes and summary
// events, and the machine object of GET /api/machines/{id}).
func TestWireFixtures(t *testing.T) {
	s, err := live.New(live.Options{Now: func() time.Time { return wiretest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	full := s.Subscribe(0)
	defer full.Close()
	sum := s.SubscribeSummary(0)
	defer sum.Close()

	wiretest.Feed(s)
	for _, want := range []struct{ typ, fixture string }{
		{live.EventMachine, wiretest.Machine},
		{live.EventMetrics, wiretest.Metrics},
		{live.EventProcesses, wiretest.Processes},
	} {
		ev := next(t, full)
		if ev.Type != want.typ || ev.Machine != wiretest.MachineID {
			t.Fatalf("event %s of %q, want %s of %q", ev.Type, ev.Machine, want.typ, wiretest.MachineID)
		}
		wiretest.Check(t, want.fixture, ev.JSON)
	}
	if ev := next(t, sum); ev.Type != live.EventMachine {
		t.Fatalf("summary subscriber: first event %s, want machine", ev.Type)
	}
	ev := next(t, sum)
	if ev.Type != live.EventSummary {
		t.Fatalf("summary subscriber: second event %s, want summary", ev.Type)
	}
	wiretest.Check(t, wiretest.Summary, ev.JSON)

	m, ok := s.Machine(wiretest.MachineID)
	if !ok {
		t.Fatal("machine unknown")
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Check(t, wiretest.MachineDetail, b)

	if known, err := s.Forget(wiretest.MachineID); !known || err != nil {
		t.Fatalf("forget: %v %v", known, err)
	}
	ev = next(t, full)
	if ev.Type != live.EventMachine {
		t.Fatalf("after forget: event %s, want machine", ev.Type)
	}
	wiretest.Check(t, wiretest.MachineForgotten, ev.JSON)
}
