package tui

import (
	"math"
	"slices"
	"testing"
)

func TestHandleMessage(t *testing.T) {
	f := NewFleet()
	ok := func(msg string) {
		t.Helper()
		if err := f.HandleMessage([]byte(msg)); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
	}
	ok(`{"type":"snapshot","machines":[]}`)
	ok(` { "machine" : "m\"1" , "ts":1, "metrics" : [
		{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":1.5e1},
		{"name":"cpu_usage_percent","labels":{"cpu":"3"},"value":-0},
		{"labels":{"mountpoint":"/mnt/a\"b","device":"/dev/x","fstype":"ext4"},"name":"filesystem_usage_percent","value":42,"ts":5},
		{"name":"load1","labels":{},"value":null},
		{"name":"network_receive_bytes_per_second","labels":{"interface":"eth0"},"value":1024},
		{"name":"temperature_celsius","labels":{"sensor":"cpu0"},"value":55},
		{"name":"service_active","labels":{"unit":"nginx.service"},"value":1},
		{"name":"service_active","labels":{"unit":"db.service"},"value":0},
		{"name":"future_thing","labels":{"a":{"nested":[1,2,{"x":"]"}]}},"value":1}
	], "type":"metrics"}`)
	f.Read(func(v FleetView) {
		m := v.Machine(`m"1`)
		if m == nil {
			t.Fatal("machine missing")
		}
		if m.CPU != 15 || len(m.Cores) != 4 || m.Cores[3] != 0 || !math.IsNaN(m.Cores[0]) {
			t.Fatalf("cpu %v cores %v", m.CPU, m.Cores)
		}
		if len(m.FS) != 1 || m.FS[0].Mount != `/mnt/a"b` || m.FS[0].Pct != 42 || m.DiskPct() != 42 {
			t.Fatalf("fs %+v", m.FS)
		}
		if !math.IsNaN(m.Load1) || m.NetRx() != 1024 {
			t.Fatalf("load %v rx %v", m.Load1, m.NetRx())
		}
		if ok, total := m.Services(); ok != 1 || total != 2 {
			t.Fatalf("services %d/%d", ok, total)
		}
		if len(m.Extras) != 3 {
			t.Fatalf("extras %+v", m.Extras)
		}
	})
	ok(`{"type":"machine","machine":{"id":"m\"1","hostname":"h","online":false,"connected":false,"last_seen":null,"labels":null}}`)
	ok(`{"type":"alert","alert":{"id":"x1","machine":"m\"1","state":"firing"}}`)
	ok(`{"type":"error","error":"invalid"}`)
	ok(`{"type":"something-new","x":[1]}`)
	f.Read(func(v FleetView) {
		m := v.Machine(`m"1`)
		if m.Online || !m.Known || m.Hostname != "h" || m.FiringAlerts != 1 {
			t.Fatalf("after machine+alert events: %+v", m)
		}
	})
	for _, bad := range []string{``, `{`, `[]`, `{"type":"metrics","machine":"x","metrics":[{"name":"load1","value":tru}]}`,
		`{"type":"metrics","machine":{"id":"x"},"metrics":[]}`, `{"type":"snapshot","machines":[{"id":1}]}`, `{"type":"metrics","machine":"x","metrics":[{"name":"a","value":1e999x}]}`} {
		if err := f.HandleMessage([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestHandleForgottenMachine: a machine event with "forgotten": true (the
// hub's DELETE /api/machines/{id} or --forget-offline-after) removes the
// machine; it comes back only with data of its own.
func TestHandleForgottenMachine(t *testing.T) {
	f := NewFleet()
	must := func(msg string) {
		t.Helper()
		if err := f.HandleMessage([]byte(msg)); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
	}
	has := func() []string {
		var out []string
		f.Read(func(v FleetView) {
			for _, m := range v.Machines() {
				if v.Machine(m.key) != m {
					t.Fatalf("%s: list and index disagree", m.key)
				}
				out = append(out, m.key)
			}
		})
		return out
	}
	must(`{"type":"snapshot","machines":[{"id":"a","online":true},{"id":"dead","online":false},{"id":"c","online":true}]}`)
	must(`{"type":"machine","machine":{"id":"dead","online":false,"connected":false},"forgotten":false}`)
	if got := has(); !slices.Equal(got, []string{"a", "dead", "c"}) {
		t.Fatalf(`"forgotten":false removed a machine: %v`, got)
	}
	v0 := f.version
	// The hub's event: the machine's last state, then the flag.
	must(`{"type":"machine","machine":{"id":"dead","hostname":"d","labels":{"env":"x"},"online":false,"connected":false,"last_seen":"2026-11-22T10:00:00Z","metrics":[]},"forgotten":true}`)
	if got := has(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after the forget event: %v", got)
	}
	if f.version == v0 {
		t.Fatal("forget event did not signal a change")
	}
	// Forgetting an unknown machine creates nothing, twice is harmless.
	must(`{"forgotten":true,"type":"machine","machine":{"id":"never-seen"}}`)
	must(`{"type":"machine","machine":{"id":"dead"},"forgotten":true}`)
	if got := has(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after forgetting unknown machines: %v", got)
	}
	// Its processes do not bring it back; its data does.
	must(`{"type":"processes","machine":"dead","ts":1,"processes":[{"pid":1,"name":"x"}]}`)
	must(`{"type":"summary","machine":"dead","ts":2,"summary":{"cpu":5}}`)
	if got := has(); !slices.Equal(got, []string{"a", "c", "dead"}) {
		t.Fatalf("after new data: %v", got)
	}
	for _, bad := range []string{
		`{"type":"machine","machine":{"hostname":"no id"},"forgotten":true}`,
		`{"type":"machine","machine":"dead","forgotten":true}`,
		`{"type":"machine","forgotten":true}`,
		`{"type":"machine","machine":{"id":"dead"},"forgotten":"yes"}`,
	} {
		if err := f.HandleMessage([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if got := has(); !slices.Equal(got, []string{"a", "c", "dead"}) {
		t.Fatalf("malformed forget events changed the fleet: %v", got)
	}
}

func FuzzHandleMessage(f *testing.F) {
	f.Add([]byte(`{"type":"metrics","machine":"m","ts":1,"metrics":[{"name":"cpu_usage_percent","labels":{"cpu":"7"},"value":1}]}`))
	f.Add([]byte(`{"type":"snapshot","machines":[{"id":"a","metrics":[{"name":"filesystem_used_bytes","labels":{"mountpoint":"/"},"value":1}]}]}`))
	f.Add([]byte(`{"type":"machine","machine":{"id":"a\u001b","labels":{"k":"v"}}}`))
	f.Add([]byte(summarySnapshot))
	f.Add([]byte(`{"type":"summary","machine":"web-1","ts":2000,"summary":{"cpu":80,"mem":null,"disk_max":5e1,"services_ok":4,"services_total":4,"x":[1]}}`))
	f.Add([]byte(`{"type":"processes","machine":"a","ts":1,"processes":[{"pid":1,"name":"x","rss_bytes":5}]}`))
	f.Add([]byte(`{"type":"alert","alert":{"id":"a1","rule_name":"r","machine":"a","state":"inactive"}}`))
	f.Add([]byte(`{"type":"machine","machine":{"id":"a","online":false},"forgotten":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fl := NewFleet()
		_ = fl.HandleMessage([]byte(`{"type":"snapshot","machines":[{"id":"a"},{"id":"b"}]}`))
		_ = fl.HandleMessage(b)
		fl.Read(func(v FleetView) {
			if len(v.Machines()) != len(fl.byID) {
				t.Fatalf("%d machines listed, %d indexed", len(v.Machines()), len(fl.byID))
			}
			for _, m := range v.Machines() {
				if v.Machine(m.key) != m {
					t.Fatalf("%q listed but not indexed", m.key)
				}
				if len(m.Cores) > maxCores || len(m.FS) > maxPerSet {
					t.Fatal("bounds exceeded")
				}
				if ok, total := m.Services(); ok < 0 || total < 0 || ok > total {
					t.Fatalf("services %d/%d", ok, total)
				}
			}
		})
	})
}

// BenchmarkHandleMetrics decodes one metrics event of 100 series, the
// loadgen default (run: go test -bench HandleMetrics ./internal/tui).
func BenchmarkHandleMetrics(b *testing.B) {
	msg := []byte(`{"type":"metrics","machine":"loadgen-0001","ts":1763812800000,"metrics":[`)
	for i := range 100 {
		if i > 0 {
			msg = append(msg, ',')
		}
		switch {
		case i < 9:
			msg = append(msg, `{"name":"cpu_usage_percent","labels":{"cpu":"`+itoa(i)+`"},"value":12.34}`...)
		case i < 20:
			msg = append(msg, `{"name":"filesystem_used_bytes","labels":{"device":"/dev/sda`+itoa(i)+`","fstype":"ext4","mountpoint":"/m`+itoa(i)+`"},"value":123456789}`...)
		default:
			msg = append(msg, `{"name":"app_requests_total","labels":{"app":"a`+itoa(i)+`"},"value":0.5}`...)
		}
	}
	msg = append(msg, "]}"...)
	f := NewFleet()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.HandleMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
