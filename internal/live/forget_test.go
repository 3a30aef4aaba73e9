package live

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	var forgotten []string
	reg := prometheus.NewRegistry()
	s, _ := newState(t, Options{StatePath: path, Registerer: reg, OnForget: func(id string) { forgotten = append(forgotten, id) }})
	s.Connect(MachineInfo{ID: "gone", Source: SourceAgent})
	s.Connect(MachineInfo{ID: "stays", Source: SourceAgent})
	if err := s.persist(); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(16)
	defer sub.Close()

	if ok, err := s.Forget("gone"); !ok || err != nil {
		t.Fatalf("Forget = %v, %v", ok, err)
	}
	if s.Known("gone") || len(s.Machines()) != 1 || len(forgotten) != 1 || forgotten[0] != "gone" {
		t.Fatalf("after Forget: known %v, machines %d, OnForget %v", s.Known("gone"), len(s.Machines()), forgotten)
	}
	if g := testutil.ToFloat64(s.metrics.connected); g != 1 {
		t.Fatalf("connected_agents = %v, want 1", g)
	}
	ev := <-sub.C()
	if ev.Type != EventMachine || ev.Machine != "gone" || !strings.Contains(string(ev.JSON), `"forgotten":true`) {
		t.Fatalf("event %s %s", ev.Type, ev.JSON)
	}
	// The registry was written at once: a restart does not bring it back.
	s2, _ := newState(t, Options{StatePath: path})
	if s2.Known("gone") || !s2.Known("stays") {
		t.Fatalf("registry after Forget: gone %v, stays %v", s2.Known("gone"), s2.Known("stays"))
	}
	if ok, err := s.Forget("gone"); ok || err != nil {
		t.Fatalf("second Forget = %v, %v", ok, err)
	}
	// Data brings it back.
	s.Update("gone", 1, []*Series{cpu("total")}, []float64{1})
	if m, ok := s.Machine("gone"); !ok || !m.Online {
		t.Fatalf("not back after data: %+v %v", m, ok)
	}
}

func TestForgetAfter(t *testing.T) {
	var forgotten []string
	s, clk := newState(t, Options{OfflineAfter: 15 * time.Second, ForgetAfter: time.Hour, OnForget: func(id string) { forgotten = append(forgotten, id) }})
	s.Connect(MachineInfo{ID: "dead"})
	s.Connect(MachineInfo{ID: "alive"})
	for range 59 {
		clk.Add(time.Minute)
		s.Update("alive", clk.Now().UnixMilli(), nil, nil)
		s.sweep(clk.Now(), false)
		if len(forgotten) > 0 {
			break
		}
	}
	if len(forgotten) != 0 {
		t.Fatalf("forgotten before an hour without data: %v", forgotten)
	}
	clk.Add(time.Minute)
	s.sweep(clk.Now(), false)
	if !s.Known("alive") || s.Known("dead") || len(forgotten) != 1 {
		t.Fatalf("after an hour without data: alive %v, dead %v, OnForget %v", s.Known("alive"), s.Known("dead"), forgotten)
	}

	// 0 never forgets.
	s0, clk0 := newState(t, Options{})
	s0.Connect(MachineInfo{ID: "dead"})
	clk0.Add(10 * 365 * 24 * time.Hour)
	s0.sweep(clk0.Now(), false)
	s0.sweep(clk0.Now(), false)
	if !s0.Known("dead") {
		t.Fatal("forgotten with ForgetAfter 0")
	}
}
