package tui

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/wire"
	"github.com/sysmonstm/sysmonstm/internal/wire/wiretest"
)

// fixture decodes the wire fixture name into v (the reference reading).
func fixture(t *testing.T, name string, v any) []byte {
	t.Helper()
	b := wiretest.Read(t, name)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// wireValue returns the value of name{labels} in vs; NaN when null or absent.
func wireValue(vs []wire.Value, name string, kv ...string) float64 {
	for _, v := range vs {
		if v.Name != name || len(v.Labels) != len(kv)/2 {
			continue
		}
		ok := true
		for i := 0; i < len(kv); i += 2 {
			ok = ok && v.Labels[kv[i]] == kv[i+1]
		}
		if ok && v.Value != nil {
			return *v.Value
		}
	}
	return math.NaN()
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// TestWireFixtures: the dashboard reads every wire fixture as internal/wire
// does: identity, host info and values of the full snapshot, the summary
// snapshot and summary event, a metrics batch, processes, the alert, the
// machine events (the forgotten one removes the machine) and the machine
// object of GET /api/machines/{id}; the error answer changes nothing.
func TestWireFixtures(t *testing.T) {
	handle := func(f *Fleet, name string) {
		t.Helper()
		if err := f.HandleMessage(wiretest.Read(t, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	machine := func(f *Fleet) *Machine {
		t.Helper()
		var m *Machine
		f.Read(func(v FleetView) { m = v.Machine(wiretest.MachineID) })
		if m == nil {
			t.Fatalf("machine %s missing", wiretest.MachineID)
		}
		return m
	}
	checkMeta := func(what string, m *Machine, w *wire.Machine) {
		t.Helper()
		if m.Hostname != Clean(w.Hostname) || m.Labels != joinLabels(w.Labels) || m.Online != w.Online || m.Connected != w.Connected || !m.LastSeen.Equal(*w.LastSeen) {
			t.Errorf("%s: identity %q %q %v %v %v, want %+v", what, m.Hostname, m.Labels, m.Online, m.Connected, m.LastSeen, w)
		}
		if want := infoFromWire(&w.Info).clean(); !reflect.DeepEqual(m.Info, want) || m.Info.MemoryTotal != math.MaxUint64 || m.Info.CPUModel != Clean(w.Info.CPUModel) {
			t.Errorf("%s: info %+v, want %+v", what, m.Info, want)
		}
	}
	checkValues := func(what string, m *Machine, vs []wire.Value) {
		t.Helper()
		for _, c := range []struct {
			name string
			got  float64
			want float64
		}{
			{"cpu", m.CPU, wireValue(vs, "cpu_usage_percent", "cpu", "total")},
			{"cpu 0", m.Cores[0], wireValue(vs, "cpu_usage_percent", "cpu", "0")},
			{"mem", m.MemPct, wireValue(vs, "memory_usage_percent")},
			{"mem total", m.MemTotal, wireValue(vs, "memory_total_bytes")},
			{"load1", m.Load1, wireValue(vs, "load1")},
			{"uptime", m.Uptime, wireValue(vs, "uptime_seconds")},
			{"disk", m.DiskPct(), wireValue(vs, "filesystem_usage_percent", "mountpoint", "/data "+wiretest.Hostile)},
			{"rx", m.NetRx(), wireValue(vs, "network_receive_bytes_per_second", "interface", "eth0")},
			{"tx", m.NetTx(), wireValue(vs, "network_transmit_bytes_per_second", "interface", "eth0")},
		} {
			if !same(c.got, c.want) || math.IsNaN(c.want) {
				t.Errorf("%s: %s = %v, want %v", what, c.name, c.got, c.want)
			}
		}
	}

	// Full mode: snapshot, batch, processes, machine events, alert.
	f := NewFleet()
	var snap wire.Snapshot
	fixture(t, wiretest.Snapshot, &snap)
	handle(f, wiretest.Snapshot)
	m := machine(f)
	checkMeta("snapshot", m, &snap.Machines[0])
	checkValues("snapshot", m, *snap.Machines[0].Metrics)

	var batch wire.Metrics
	fixture(t, wiretest.Metrics, &batch)
	handle(f, wiretest.Metrics)
	checkValues("metrics", machine(f), batch.Metrics)

	var procs wire.Processes
	fixture(t, wiretest.Processes, &procs)
	handle(f, wiretest.Processes)
	ps := machine(f).Processes
	if len(ps) != len(procs.Processes) {
		t.Fatalf("processes: %d, want %d", len(ps), len(procs.Processes))
	}
	for i, p := range procs.Processes {
		want := Process{PID: int(p.PID), Name: Clean(p.Name), User: Clean(p.User), CPU: p.CPUPercent, Mem: float64(p.RSSBytes), Command: Clean(p.Command)}
		if ps[i] != want {
			t.Errorf("process %d: %+v, want %+v", i, ps[i], want)
		}
	}

	var me wire.MachineEvent
	fixture(t, wiretest.Machine, &me)
	handle(f, wiretest.Machine)
	checkMeta("machine event", machine(f), &me.Machine)

	var ae wire.AlertEvent
	fixture(t, wiretest.Alert, &ae)
	handle(f, wiretest.Alert)
	f.Read(func(v FleetView) {
		as := v.Alerts()
		w := ae.Alert
		if len(as) != 1 || as[0].ID != w.ID || as[0].Rule != Clean(w.RuleName) || as[0].Machine != w.Machine || as[0].State != w.State ||
			as[0].Severity != w.Severity || as[0].Value != w.Value || !as[0].StartedAt.Equal(w.StartedAt) || as[0].Acknowledged != w.Acknowledged {
			t.Errorf("alerts %+v, want %+v", as, w)
		}
	})

	before := f.version
	if err := f.HandleMessage(wiretest.Read(t, wiretest.Error)); err != nil || f.version != before {
		t.Errorf("error message: %v, version %d → %d", err, before, f.version)
	}

	handle(f, wiretest.MachineForgotten)
	f.Read(func(v FleetView) {
		if v.Machine(wiretest.MachineID) != nil || len(v.Machines()) != 0 {
			t.Error("the forgotten machine is still listed")
		}
	})

	// Summary mode: snapshot, then a summary event.
	f = NewFleet()
	fixture(t, wiretest.SnapshotSummary, &snap)
	handle(f, wiretest.SnapshotSummary)
	var se wire.SummaryEvent
	fixture(t, wiretest.Summary, &se)
	for _, step := range []struct {
		what string
		sum  *wire.Summary
	}{{"summary snapshot", snap.Machines[0].Summary}, {"summary event", &se.Summary}} {
		if step.what == "summary event" {
			handle(f, wiretest.Summary)
		}
		m := machine(f)
		if step.what == "summary snapshot" {
			checkMeta(step.what, m, &snap.Machines[0])
		}
		s := step.sum
		f64 := func(p *float64) float64 {
			if p == nil {
				return math.NaN() // never equal: the fixture has every member
			}
			return *p
		}
		i64 := func(p *int64) int64 {
			if p == nil {
				return -2
			}
			return *p
		}
		ok, total := m.Services()
		if m.CPU != f64(s.CPU) || m.MemPct != f64(s.Mem) || m.DiskPct() != f64(s.DiskMax) || m.Load1 != f64(s.Load1) || m.NetRx() != f64(s.NetRx) || m.NetTx() != f64(s.NetTx) ||
			m.Uptime != f64(s.Uptime) || int64(ok) != i64(s.ServicesOK) || int64(total) != i64(s.ServicesTotal) {
			t.Errorf("%s: cpu %v mem %v disk %v load %v rx %v tx %v up %v services %d/%d, want %+v", step.what, m.CPU, m.MemPct, m.DiskPct(), m.Load1, m.NetRx(), m.NetTx(), m.Uptime, ok, total, s)
		}
	}

	// GET /api/machines/{id}.
	f = NewFleet()
	var detail wire.Machine
	if err := f.HandleMachine(fixture(t, wiretest.MachineDetail, &detail)); err != nil {
		t.Fatal(err)
	}
	m = machine(f)
	checkMeta("machine detail", m, &detail)
	checkValues("machine detail", m, *detail.Metrics)
	if len(m.Processes) != len(*detail.Processes) || m.Processes[1].PID != math.MaxUint32 {
		t.Errorf("machine detail: processes %+v", m.Processes)
	}
}
