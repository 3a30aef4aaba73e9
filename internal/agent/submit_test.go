package agent

import (
	"context"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// TestSubmitStreamsOwnTimestamp: samples handed to Submit travel as a
// batch of their own, stamped with their timestamp rather than a tick,
// through the same series table, acks and replay as the collected ones.
func TestSubmitStreamsOwnTimestamp(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, nil)
	waitFor(t, 5*time.Second, "a stored batch", func() bool { _, _, n := hub.seqs(); return n >= 1 })

	const ts = 1_700_000_000_123 // not a multiple of the interval
	up := metric.Sample{Name: "up", Labels: metric.Labels{{Name: "instance", Value: "127.0.0.1:9100"}, {Name: "job", Value: "node"}}, Value: 1}
	a.Submit(context.Background(), ts, []metric.Sample{up, {Name: "node_load1", Value: 0.5}, {Name: "ticks_total", Value: -1}})

	var seq uint64
	waitFor(t, 5*time.Second, "the submitted batch stored", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		for s, b := range hub.stored {
			if b.GetTimestampMs() == ts {
				seq = s
				return true
			}
		}
		return false
	})
	hub.mu.Lock()
	b := hub.stored[seq]
	got := map[string]float64{}
	for i, id := range b.GetSeriesIds() {
		d := hub.defs[id]
		key := d.GetName()
		for _, l := range d.GetLabels() {
			key += "," + l.GetName() + "=" + l.GetValue()
		}
		got[key] = b.GetValues()[i]
	}
	hub.mu.Unlock()
	want := map[string]float64{"up,instance=127.0.0.1:9100,job=node": 1, "node_load1": 0.5, "ticks_total": -1}
	if len(got) != len(want) {
		t.Fatalf("submitted batch holds %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("submitted batch: %s = %v, want %v (batch %v)", k, got[k], v, got)
		}
	}
	// The collected ticks go on around it, sharing ids with the
	// submitted series: ticks_total is one series, not two.
	waitFor(t, 5*time.Second, "ticks after the submitted batch", func() bool { _, last, _ := hub.seqs(); return last > seq+2 })
	hub.checkViolations(t)
	checkStored(t, hub, testInterval, seq)
	hub.mu.Lock()
	defer hub.mu.Unlock()
	n := 0
	for _, d := range hub.defs {
		if d.GetName() == "ticks_total" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("ticks_total defined %d times, want once", n)
	}
}
