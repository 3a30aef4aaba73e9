package live

import (
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

func TestInfoWithoutValues(t *testing.T) {
	s, clk := newState(t, Options{})
	if _, ok := s.Info("nope"); ok {
		t.Fatal("Info of an unknown machine reported ok")
	}
	s.Connect(MachineInfo{ID: "web-1", Hostname: "web-1.example", Labels: metric.Labels{{Name: "env", Value: "prod"}}})
	s.Update("web-1", 1000, []*Series{cpu("total")}, []float64{10})
	s.SetProcesses("web-1", 1000, []Process{{PID: 1, Name: "init"}})
	clk.Add(time.Second)
	s.Update("b-0", 2000, []*Series{cpu("total")}, []float64{5})

	m, ok := s.Info("web-1")
	if !ok {
		t.Fatal("Info(web-1) not ok")
	}
	if m.Info.Hostname != "web-1.example" || m.Info.Labels.Get("env") != "prod" {
		t.Fatalf("info = %+v", m.Info)
	}
	if !m.Online || !m.Connected || !m.LastSeen.Equal(t0) || m.LastTs != 1000 {
		t.Fatalf("status = online %v connected %v last_seen %v last_ts %d", m.Online, m.Connected, m.LastSeen, m.LastTs)
	}
	if m.Metrics != nil || m.Processes != nil {
		t.Fatalf("Info copied values: metrics %v processes %v", m.Metrics, m.Processes)
	}

	all := s.Infos()
	if len(all) != 2 || all[0].Info.ID != "b-0" || all[1].Info.ID != "web-1" {
		t.Fatalf("Infos = %+v, want b-0 then web-1", all)
	}
	for _, m := range all {
		if m.Metrics != nil || m.Processes != nil {
			t.Fatalf("Infos copied values of %s", m.Info.ID)
		}
	}
	if !all[0].LastSeen.Equal(t0.Add(time.Second)) {
		t.Fatalf("b-0 last_seen %v", all[0].LastSeen)
	}
}
