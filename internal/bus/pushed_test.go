package bus

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// HTTP-ingest and remote-write batches (no instance, no seq): stored in
// VictoriaMetrics once, remote-written series with every label as sent
// (a machine label of their own, a series of no dashboard machine, a stale
// marker kept), HTTP series with the machine label, no
// sysmonstm_agent_seq for either; another hub's live view shows the
// machines with their source, remote-written series without the grouping
// label, and its seq table learns nothing of them.
func TestPushedBatchesStoredAndShared(t *testing.T) {
	vm := startVM(t)
	ns := startNATS(t)
	a := newBus(t, Options{URLs: urlsOf(ns)})
	liveB := newLive(t)
	var noted atomic.Int64
	newBus(t, Options{URLs: urlsOf(ns), Live: liveB, Targets: vmTarget(vm),
		NoteSeq: func(string, uint64, uint64) { noted.Add(1) }})

	now := time.Now().UnixMilli()
	stale := math.Float64frombits(value.StaleNaN)
	rwSeries := live.NewSeries("rw_temp", metric.Labels{{Name: "instance", Value: "rw.host"}, {Name: "job", Value: "node"}, {Name: "machine", Value: "kept"}})
	batches := []ingest.BusBatch{
		{Machine: "sensor 7", Ts: now, Source: live.SourceHTTP,
			Series: []*live.Series{live.NewSeries("temp_celsius", metric.Labels{{Name: "room", Value: "a"}})}, Values: []float64{21.5}},
		{Machine: "rw.host", Ts: now - 1000, Source: live.SourceRemoteWrite, MachineLabel: "instance",
			Series: []*live.Series{rwSeries}, Values: []float64{6}},
		{Machine: "rw.host", Ts: now, Source: live.SourceRemoteWrite, MachineLabel: "instance",
			Series: []*live.Series{rwSeries, live.NewSeries("up", metric.Labels{{Name: "instance", Value: "rw.host"}})}, Values: []float64{7, 1}},
		{Ts: now, Source: live.SourceRemoteWrite,
			Series: []*live.Series{live.NewSeries("rw_orphan", metric.Labels{{Name: "job", Value: "x"}}), live.NewSeries("rw_gone", nil)},
			Values: []float64{3, stale}},
	}
	if err := a.Publish(t.Context(), batches); err != nil {
		t.Fatal(err)
	}
	// Published twice (a sender's retry after a partial publish): stored once.
	if err := a.Publish(t.Context(), batches[:1]); err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		"__name__=temp_celsius,machine=sensor 7,room=a":           {fmt.Sprintf("%d=21.5", now)},
		"__name__=rw_temp,instance=rw.host,job=node,machine=kept": {fmt.Sprintf("%d=6", now-1000), fmt.Sprintf("%d=7", now)},
		"__name__=up,instance=rw.host":                            {fmt.Sprintf("%d=1", now)},
		"__name__=rw_orphan,job=x":                                {fmt.Sprintf("%d=3", now)},
	}
	testutil.WaitFor(t, 30*time.Second, "VictoriaMetrics holds the pushed samples once, labels as sent", func() error {
		got := vmExport(t, vm, `{__name__=~"temp_celsius|rw_temp|rw_orphan|up|sysmonstm_agent_seq"}`)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v\nwant %v", got, want)
		}
		return nil
	})

	shows := func(id, source, name string, want float64, labels metric.Labels) error {
		m, ok := liveB.Machine(id)
		if !ok {
			return fmt.Errorf("%s unknown", id)
		}
		if m.Info.Source != source {
			return fmt.Errorf("%s: source %q, want %q", id, m.Info.Source, source)
		}
		for _, x := range m.Metrics {
			if x.Name == name && fmt.Sprint(x.Labels) == fmt.Sprint(labels) && x.Value == want {
				return nil
			}
		}
		return fmt.Errorf("%s: no %s%v = %v in %+v", id, name, labels, want, m.Metrics)
	}
	testutil.WaitFor(t, 10*time.Second, "hub b shows the pushed machines", func() error {
		if err := shows("sensor 7", live.SourceHTTP, "temp_celsius", 21.5, metric.Labels{{Name: "room", Value: "a"}}); err != nil {
			return err
		}
		return shows("rw.host", live.SourceRemoteWrite, "rw_temp", 7, metric.Labels{{Name: "job", Value: "node"}, {Name: "machine", Value: "kept"}})
	})
	if _, ok := liveB.Machine(""); ok {
		t.Error("series of no machine shown as a machine")
	}
	if n := noted.Load(); n != 0 {
		t.Errorf("pushed batches fed the seq table %d times", n)
	}
}
