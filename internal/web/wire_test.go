package web

import (
	"slices"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// TestWireFixtures: the WebSocket's snapshots (full and summary) and error
// answer are the wire fixtures byte for byte, and the subscribe fixture is
// read as a subscription.
func TestWireFixtures(t *testing.T) {
	l, err := live.New(live.Options{Now: func() time.Time { return wiretest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Feed(l)
	for _, c := range []struct {
		fixture string
		summary bool
	}{{wiretest.Snapshot, false}, {wiretest.SnapshotSummary, true}} {
		b, err := encodeSnapshot(l, c.summary)
		if err != nil {
			t.Fatal(err)
		}
		wiretest.Check(t, c.fixture, b)
	}
	_, _, err = decodeClientMessage([]byte("[]"))
	if err == nil {
		t.Fatal("a client message that is not an object was accepted")
	}
	wiretest.Check(t, wiretest.Error, encodeError(err))

	ids, ok, err := decodeClientMessage(wiretest.Read(t, wiretest.Subscribe))
	if err != nil || !ok || !slices.Equal(ids, []string{wiretest.MachineID}) {
		t.Errorf("subscribe fixture: ids %q, ok %v, err %v", ids, ok, err)
	}
}
