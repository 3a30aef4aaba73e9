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

// TestSubmitKeepsTicks: groups submitted all the time, also just before a
// tick is due, never make the collection goroutine skip a tick.
func TestSubmitKeepsTicks(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	// A longer interval than testInterval: a timer that fires a whole
	// interval late (a loaded machine) skips a tick by design.
	const iv = 200 * time.Millisecond
	opts := testOptions(srv.addr)
	opts.Interval = iv
	a := startAgent(t, opts, src.source, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	const submittedTs = 1_700_000_000_000
	for ctx.Err() == nil {
		a.Submit(ctx, submittedTs, []metric.Sample{{Name: "scraped", Value: 1}})
		time.Sleep(time.Millisecond)
	}
	waitFor(t, 5*time.Second, "acks to empty the buffer", func() bool { return a.Stats().Buffered <= 1 })
	hub.mu.Lock()
	defer hub.mu.Unlock()
	var ticks []int64
	for s := uint64(1); hub.stored[s] != nil; s++ {
		if ts := hub.stored[s].GetTimestampMs(); ts != submittedTs {
			ticks = append(ticks, ts)
		}
	}
	if len(ticks) < 10 {
		t.Fatalf("only %d ticks stored", len(ticks))
	}
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i] - ticks[i-1]; d != iv.Milliseconds() {
			t.Errorf("ticks %d and %d are %d ms apart, want %s: a tick was skipped", ticks[i-1], ticks[i], d, iv)
		}
	}
}
