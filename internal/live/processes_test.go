package live

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSetProcesses(t *testing.T) {
	s, clk := newState(t, Options{OfflineAfter: 5 * time.Second})
	s.SetProcesses("ghost", 1000, []Process{{PID: 1}}) // unknown machine: ignored
	if s.Known("ghost") {
		t.Fatal("SetProcesses created a machine")
	}
	s.Connect(MachineInfo{ID: "web-1"})
	m, _ := s.Machine("web-1")
	if m.Processes == nil || len(m.Processes) != 0 {
		t.Fatalf("processes before any snapshot = %#v, want empty", m.Processes)
	}
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `"processes":[]`) {
		t.Fatalf("machine JSON without snapshot: %s", b)
	}

	sub := s.Subscribe(8)
	defer sub.Close()
	s.SetProcesses("web-1", 2000, []Process{{PID: 7, Name: "<b>\"x\"", User: "root", Command: "a\x00b\xff", CPUPercent: 12.5, RSSBytes: 1 << 20, State: "R"}})
	s.SetProcesses("web-1", 1000, []Process{{PID: 8}}) // older: ignored
	ev := <-sub.C()
	want := `{"type":"processes","machine":"web-1","ts":2000,"processes":[{"pid":7,"name":"\u003cb\u003e\"x\"","user":"root","command":"a\u0000b\ufffd","cpu_percent":12.5,"rss_bytes":1048576,"state":"R"}]}`
	if ev.Type != EventProcesses || ev.Machine != "web-1" || string(ev.JSON) != want {
		t.Fatalf("event %s %s\n got %s\nwant %s", ev.Type, ev.Machine, ev.JSON, want)
	}
	var anyJSON map[string]any
	if err := json.Unmarshal(ev.JSON, &anyJSON); err != nil {
		t.Fatalf("event is not JSON: %v", err)
	}
	select {
	case ev := <-sub.C():
		t.Fatalf("older snapshot published: %s", ev.JSON)
	default:
	}

	m, _ = s.Machine("web-1")
	if len(m.Processes) != 1 || m.Processes[0].PID != 7 || m.ProcessesTs != 2000 {
		t.Fatalf("machine processes %+v ts %d", m.Processes, m.ProcessesTs)
	}
	b, _ = json.Marshal(m)
	var got struct {
		Processes []struct {
			PID     uint32  `json:"pid"`
			Name    string  `json:"name"`
			Command string  `json:"command"`
			CPU     float64 `json:"cpu_percent"`
			RSS     uint64  `json:"rss_bytes"`
			State   string  `json:"state"`
			User    string  `json:"user"`
		} `json:"processes"`
		ProcessesTs int64 `json:"processes_ts"`
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got.Processes) != 1 || got.Processes[0].Name != `<b>"x"` ||
		got.Processes[0].RSS != 1<<20 || got.Processes[0].CPU != 12.5 || got.Processes[0].User != "root" || got.ProcessesTs != 2000 {
		t.Fatalf("machine JSON %s → %+v, %v", b, got, err)
	}
	for _, ms := range s.Machines() {
		if ms.Processes != nil {
			t.Fatal("Machines includes processes")
		}
		if b, _ := json.Marshal(ms); strings.Contains(string(b), `"processes"`) {
			t.Fatalf("machine list JSON has processes: %s", b)
		}
	}

	// Offline: the list goes.
	clk.Add(10 * time.Second)
	s.sweep(clk.Now(), false)
	m, _ = s.Machine("web-1")
	if m.Online || len(m.Processes) != 0 {
		t.Fatalf("offline machine keeps processes: %+v", m.Processes)
	}
}

func TestProcessesEventFilteredBySubscription(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Connect(MachineInfo{ID: "a"})
	s.Connect(MachineInfo{ID: "b"})
	sub := s.Subscribe(8)
	defer sub.Close()
	sub.SetMachines([]string{"b"})
	s.SetProcesses("a", 1, []Process{{PID: 1}})
	s.SetProcesses("b", 1, []Process{{PID: 2}})
	ev := <-sub.C()
	if ev.Type != EventProcesses || ev.Machine != "b" {
		t.Fatalf("got %s for %s, want processes of b", ev.Type, ev.Machine)
	}
}
