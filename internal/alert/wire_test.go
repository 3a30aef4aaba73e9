package alert

import (
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// TestWireFixture: the live stream's alert event is the wire fixture byte
// for byte, with every optional field set and hostile strings.
func TestWireFixture(t *testing.T) {
	if EventAlert != wire.TypeAlert {
		t.Fatalf("EventAlert %q, wire.TypeAlert %q", EventAlert, wire.TypeAlert)
	}
	started := wiretest.Now.Add(-5 * time.Minute)
	fired := wiretest.Now.Add(-4 * time.Minute)
	last, clear, silence := 97.25, 80.0, "silence-1"
	a := Alert{
		ID: "a-1", RuleID: "rule-1", RuleName: "CPU " + wiretest.Hostile, Kind: "threshold",
		Machine: wiretest.MachineID, Metric: "cpu_usage_percent",
		Labels:   map[string]string{"cpu": "total", "team": wiretest.Hostile},
		Severity: "critical", State: StateFiring, Value: 95.5, LastValue: &last,
		Threshold: 90, Clear: &clear, Op: ">", Description: wiretest.Hostile,
		StartedAt: started, FiredAt: &fired, UpdatedAt: wiretest.Now,
		Acknowledged: true, Ack: &Ack{By: "admin", At: wiretest.Now, Comment: wiretest.Hostile},
		Silenced: true, SilencedBy: &silence,
	}
	ev, err := alertEvent(a)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != wire.TypeAlert || ev.Machine != wiretest.MachineID {
		t.Errorf("event %s of %q", ev.Type, ev.Machine)
	}
	wiretest.Check(t, wiretest.Alert, ev.JSON)
}
