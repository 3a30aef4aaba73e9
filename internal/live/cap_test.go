package live

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A machine with 105 k series made every /ws snapshot 13.6 MB (issue #12).
// The live state keeps MaxSeriesPerMachine series of a machine: the
// snapshot, the machine object and the metrics events carry no more, and
// say so.
func TestSeriesPerMachineAreBounded(t *testing.T) {
	s, _ := newState(t, Options{MaxSeriesPerMachine: 3})
	sub := s.Subscribe(8)
	defer sub.Close()
	series := make([]*Series, 5)
	vals := make([]float64, 5)
	for i := range series {
		series[i] = cpu(fmt.Sprint(i))
		vals[i] = float64(i)
	}
	s.Update("bomb", 1000, series, vals)
	s.Update("quiet", 1000, series[:2], vals[:2])

	m, _ := s.Machine("bomb")
	if len(m.Metrics) != 3 || !m.MetricsTruncated {
		t.Fatalf("kept %d series, truncated %v; want 3, true", len(m.Metrics), m.MetricsTruncated)
	}
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `"metrics_truncated":true`) {
		t.Errorf("machine object does not say it is truncated: %s", b)
	}
	if q, _ := s.Machine("quiet"); q.MetricsTruncated || len(q.Metrics) != 2 {
		t.Errorf("another machine is affected: %+v", q)
	}
	for found := false; !found; {
		select {
		case ev := <-sub.C():
			if ev.Type != EventMetrics || ev.Machine != "bomb" {
				continue
			}
			found = true
			var msg struct{ Metrics []json.RawMessage }
			if err := json.Unmarshal(ev.JSON, &msg); err != nil {
				t.Fatal(err)
			}
			if len(msg.Metrics) != 3 {
				t.Errorf("metrics event carries %d series, want 3", len(msg.Metrics))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no metrics event")
		}
	}
	// Known series keep updating at the cap.
	s.Update("bomb", 2000, series, []float64{9, 9, 9, 9, 9})
	m, _ = s.Machine("bomb")
	for _, v := range m.Metrics {
		if v.Value != 9 {
			t.Fatalf("kept series not updated: %+v", m.Metrics)
		}
	}
	// Once stale series are pruned there is room again.
	later := 2000 + s.opts.StalenessAfter.Milliseconds() + 1
	s.Update("bomb", later, series[3:], []float64{1, 1})
	s.sweep(s.now(), true)
	s.Update("bomb", later+1000, series[3:], []float64{1, 1})
	m, _ = s.Machine("bomb")
	if len(m.Metrics) != 2 || m.MetricsTruncated {
		t.Fatalf("after pruning: %d series, truncated %v", len(m.Metrics), m.MetricsTruncated)
	}
}
