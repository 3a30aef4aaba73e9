package live

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// batch builds series and values from name, labels (k=v,k=v) and value
// triples.
func batch(items ...any) ([]*Series, []float64) {
	var sr []*Series
	var vals []float64
	for i := 0; i+2 < len(items); i += 3 {
		name, lstr, v := items[i].(string), items[i+1].(string), items[i+2].(float64)
		var ls metric.Labels
		if lstr != "" {
			for _, kv := range strings.Split(lstr, ",") {
				k, val, _ := strings.Cut(kv, "=")
				ls = append(ls, metric.Label{Name: k, Value: val})
			}
		}
		sr = append(sr, NewSeries(name, ls.Sort()))
		vals = append(vals, v)
	}
	return sr, vals
}

func summaryOf(t *testing.T, s *State, id string) Summary {
	t.Helper()
	sum, ok := s.Summary(id)
	if !ok {
		t.Fatalf("no summary of %s", id)
	}
	return sum
}

func TestSummaryComputation(t *testing.T) {
	s, _ := newState(t, Options{})
	sr, vals := batch(
		"cpu_usage_percent", "cpu=total", 37.5,
		"cpu_usage_percent", "cpu=0", 99.0, // a core: not the headline
		"memory_usage_percent", "", 61.0,
		"load1", "", 1.25,
		"load5", "", 9.0,
		"uptime_seconds", "", 3600.0,
		"filesystem_usage_percent", "mountpoint=/,device=/dev/sda1,fstype=ext4", 40.0,
		"filesystem_usage_percent", "mountpoint=/data,device=/dev/sdb1,fstype=xfs", 93.5,
		"network_receive_bytes_per_second", "interface=eth0", 1000.0,
		"network_receive_bytes_per_second", "interface=eth1", 500.0,
		"network_receive_bytes_per_second", "interface=lo", 1e9,
		"network_receive_bytes_per_second", "interface=veth12ab", 1e9,
		"network_transmit_bytes_per_second", "interface=eth0", 250.0,
		"network_transmit_bytes_per_second", "interface=lo", 1e9,
		"systemd_unit_active", "unit=nginx.service", 1.0,
		"systemd_unit_active", "unit=db.service", 1.0,
		"systemd_unit_active", "unit=cron.service", 0.0,
		"systemd_unit_failed", "unit=nginx.service", 0.0,
		"systemd_unit_failed", "unit=db.service", 0.0,
		"systemd_unit_failed", "unit=cron.service", 1.0,
		"app_requests_total", "app=x", 5.0,
	)
	s.Update("web-1", 1000, sr, vals)
	got := summaryOf(t, s, "web-1")
	want := Summary{CPU: 37.5, Mem: 61, DiskMax: 93.5, Load1: 1.25, Uptime: 3600, NetRx: 1500, NetTx: 250,
		ServicesOK: 2, ServicesTotal: 3, ServicesFailed: 1}
	if got != want {
		t.Fatalf("summary\n got %+v\nwant %+v", got, want)
	}

	// The next batch has no /data (unmounted) and one unit less: the
	// fullest filesystem and the counts follow at once, without waiting for
	// the stale series to be pruned.
	sr2, vals2 := batch(
		"cpu_usage_percent", "cpu=total", 12.0,
		"filesystem_usage_percent", "mountpoint=/,device=/dev/sda1,fstype=ext4", 41.0,
		"network_receive_bytes_per_second", "interface=eth0", 10.0,
		"network_transmit_bytes_per_second", "interface=eth0", 20.0,
		"systemd_unit_active", "unit=nginx.service", 1.0,
		"systemd_unit_active", "unit=db.service", 0.0,
		"systemd_unit_failed", "unit=nginx.service", 0.0,
		"systemd_unit_failed", "unit=db.service", 1.0,
	)
	s.Update("web-1", 2000, sr2, vals2)
	got = summaryOf(t, s, "web-1")
	want = Summary{CPU: 12, Mem: 61, DiskMax: 41, Load1: 1.25, Uptime: 3600, NetRx: 10, NetTx: 20,
		ServicesOK: 1, ServicesTotal: 2, ServicesFailed: 1}
	if got != want {
		t.Fatalf("after /data went away\n got %+v\nwant %+v", got, want)
	}

	// A batch without any of the groups (e.g. an HTTP push of one sensor)
	// leaves them as they are.
	sr3, vals3 := batch("temperature_celsius", "sensor=a", 50.0)
	s.Update("web-1", 3000, sr3, vals3)
	if got := summaryOf(t, s, "web-1"); got != want {
		t.Fatalf("after an unrelated batch\n got %+v\nwant %+v", got, want)
	}

	// A replayed (older) batch does not bring /data back.
	s.Update("web-1", 1500, sr, vals)
	if got := summaryOf(t, s, "web-1"); got.DiskMax != 41 || got.ServicesTotal != 2 {
		t.Fatalf("after a replayed batch: %+v", got)
	}

	// A machine without any headline series: everything unknown.
	s.Update("bare", 1000, sr3, vals3)
	bare := summaryOf(t, s, "bare")
	if !math.IsNaN(bare.CPU) || !math.IsNaN(bare.DiskMax) || !math.IsNaN(bare.NetRx) || bare.ServicesTotal != -1 || bare.ServicesOK != -1 || bare.ServicesFailed != -1 {
		t.Fatalf("bare machine %+v", bare)
	}
	if b := appendSummary(nil, &bare); string(b) != "{}" {
		t.Fatalf("bare summary JSON %s", b)
	}
	// NaN values do not poison sums or the maximum.
	sr4, vals4 := batch(
		"filesystem_usage_percent", "mountpoint=/", math.NaN(),
		"filesystem_usage_percent", "mountpoint=/b", 7.0,
		"network_receive_bytes_per_second", "interface=eth0", math.NaN(),
		"network_receive_bytes_per_second", "interface=eth1", 3.0,
	)
	s.Update("bare", 2000, sr4, vals4)
	if got := summaryOf(t, s, "bare"); got.DiskMax != 7 || got.NetRx != 3 || !math.IsNaN(got.NetTx) {
		t.Fatalf("with NaN values %+v", got)
	}
	if _, ok := s.Summary("nobody"); ok {
		t.Fatal("summary of an unknown machine")
	}
}

func TestSummaryAfterPrune(t *testing.T) {
	s, c := newState(t, Options{StalenessAfter: time.Minute})
	old, _ := batch("filesystem_usage_percent", "mountpoint=/old", 99.0, "cpu_usage_percent", "cpu=total", 5.0)
	s.Update("m", t0.UnixMilli(), old, []float64{99, 5})
	fresh, _ := batch("filesystem_usage_percent", "mountpoint=/", 10.0)
	c.Add(2 * time.Minute)
	s.Update("m", t0.Add(2*time.Minute).UnixMilli(), fresh, []float64{10})
	s.sweep(c.Now(), true)
	got := summaryOf(t, s, "m")
	if got.DiskMax != 10 || !math.IsNaN(got.CPU) {
		t.Fatalf("after prune %+v", got)
	}
	// Roles survive the re-indexing of prune.
	s.Update("m", t0.Add(3*time.Minute).UnixMilli(), fresh, []float64{20})
	if got := summaryOf(t, s, "m"); got.DiskMax != 20 {
		t.Fatalf("after prune and update %+v", got)
	}
}

func TestSummaryJSON(t *testing.T) {
	sum := Summary{CPU: 37.5, Mem: 61, DiskMax: math.NaN(), Load1: 0, Uptime: math.Inf(1), NetRx: 1500, NetTx: 2.5e-7,
		ServicesOK: 2, ServicesTotal: 3, ServicesFailed: -1}
	id := "web\"<1>"
	got := encodeSummary(appendJSONString(nil, id), 1700000000123, &sum)
	want := `{"type":"summary","machine":"web\"\u003c1\u003e","ts":1700000000123,"summary":{"cpu":37.5,"mem":61,"load1":0,"net_rx":1500,"net_tx":2.5e-07,"services_ok":2,"services_total":3}}`
	if string(got) != want {
		t.Fatalf("summary event\n got %s\nwant %s", got, want)
	}
	var v struct {
		Machine string
		Summary map[string]float64
	}
	if err := json.Unmarshal(got, &v); err != nil || v.Machine != id || v.Summary["cpu"] != 37.5 {
		t.Fatalf("decoded %+v %v", v, err)
	}

	ms := MachineSummary{
		Machine: Machine{Info: MachineInfo{ID: "a", Hostname: "h", Labels: metric.Labels{{Name: "env", Value: "prod"}}, CPUThreads: 8},
			Online: true, Metrics: []Value{{Name: "x"}}, Processes: []Process{{PID: 1}}},
		Summary: Summary{CPU: 1, Mem: math.NaN(), DiskMax: math.NaN(), Load1: math.NaN(), Uptime: math.NaN(), NetRx: math.NaN(), NetTx: math.NaN(), ServicesTotal: -1, ServicesFailed: 0},
	}
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	if string(obj["summary"]) != `{"cpu":1,"services_failed":0}` || string(obj["id"]) != `"a"` || string(obj["labels"]) != `{"env":"prod"}` ||
		obj["metrics"] != nil || obj["processes"] != nil || !strings.Contains(string(obj["info"]), `"cpu_threads":8`) {
		t.Fatalf("machine summary JSON %s", b)
	}
}

// drain returns the events waiting in sub as "type:machine" strings.
func drain(sub *Subscription) []string {
	var got []string
	for len(sub.C()) > 0 {
		ev := <-sub.C()
		got = append(got, ev.Type+":"+ev.Machine)
	}
	return got
}

func TestSummarySubscription(t *testing.T) {
	s, c := newState(t, Options{})
	full := s.Subscribe(64)
	defer full.Close()
	sum := s.SubscribeSummary(64)
	defer sum.Close()
	sr, vals := batch("cpu_usage_percent", "cpu=total", 50.0, "load1", "", 0.5)
	s.Connect(MachineInfo{ID: "a"})
	s.Connect(MachineInfo{ID: "b"})
	s.Update("a", 1000, sr, vals)
	s.Update("b", 1000, sr, vals)
	s.SetProcesses("a", 1000, []Process{{PID: 1, Name: "init"}})
	s.Publish(Event{Type: "alert", JSON: []byte(`{"type":"alert"}`)})

	if got, want := fmt.Sprint(drain(full)), "[machine:a machine:b metrics:a metrics:b processes:a alert:]"; got != want {
		t.Fatalf("full subscriber: %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(drain(sum)), "[machine:a machine:b summary:a summary:b alert:]"; got != want {
		t.Fatalf("summary subscriber: %v, want %v", got, want)
	}

	// The detail view asks for b: its metrics and processes come too.
	sum.SetMachines([]string{"b"})
	c.Add(time.Second)
	s.Update("a", 2000, sr, vals)
	s.Update("b", 2000, sr, vals)
	s.SetProcesses("a", 2000, nil)
	s.SetProcesses("b", 2000, nil)
	if got, want := fmt.Sprint(drain(sum)), "[summary:a metrics:b summary:b processes:b]"; got != want {
		t.Fatalf("summary subscriber watching b: %v, want %v", got, want)
	}
	// Back to the overview: none again.
	sum.SetMachines(nil)
	c.Add(time.Second)
	s.Update("b", 3000, sr, vals)
	if got, want := fmt.Sprint(drain(sum)), "[summary:b]"; got != want {
		t.Fatalf("after unsubscribing: %v, want %v", got, want)
	}
	drain(full)

	// The event carries the summary and the batch's ts.
	c.Add(time.Second)
	s.Update("a", 4000, sr, []float64{75, 2})
	ev := <-sum.C()
	if want := `{"type":"summary","machine":"a","ts":4000,"summary":{"cpu":75,"load1":2}}`; string(ev.JSON) != want {
		t.Fatalf("summary event %s, want %s", ev.JSON, want)
	}

	// Once the summary subscriber is gone, nothing works summaries out.
	sum.Close()
	sum.Close()
	if s.subs.summaries() {
		t.Fatal("summary subscription still counted after Close")
	}
	full.SetMachines([]string{"zzz"})
	if s.subs.wantMetrics("a") {
		t.Fatal("metrics wanted though the only subscriber filters them out")
	}
}

// TestSummaryAtMostOncePerInterval runs in a synctest bubble: the held-back
// summary's timer runs on fake time, so the test sees it fire exactly when
// the interval has passed, and synctest.Wait (every goroutine idle) stands
// in for "nothing more is coming".
func TestSummaryAtMostOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newState(t, Options{})
		s.summaryEvery = 200 * time.Millisecond
		sub := s.SubscribeSummary(64)
		defer sub.Close()
		sr, _ := batch("cpu_usage_percent", "cpu=total", 0.0)
		s.Update("a", 1000, sr, []float64{1})
		if ev := <-sub.C(); ev.Type != EventMachine {
			t.Fatalf("first event %s", ev.Type)
		}
		if ev := <-sub.C(); ev.Type != EventSummary || !strings.Contains(string(ev.JSON), `"cpu":1}`) {
			t.Fatalf("first summary %s", ev.JSON)
		}
		// Two more batches within the interval: held back, then one event
		// with the newest values, sent when the interval has passed.
		began := time.Now()
		s.Update("a", 1100, sr, []float64{2})
		s.Update("a", 1200, sr, []float64{3})
		synctest.Wait()
		if got := drain(sub); len(got) != 0 {
			t.Fatalf("events within the interval: %v", got)
		}
		select {
		case ev := <-sub.C():
			if ev.Type != EventSummary || !strings.Contains(string(ev.JSON), `"ts":1200,"summary":{"cpu":3}`) {
				t.Fatalf("held-back summary %s", ev.JSON)
			}
			if d := time.Since(began); d != s.summaryEvery {
				t.Fatalf("held-back summary after %v, want %v", d, s.summaryEvery)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the held-back summary never came")
		}
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		if got := drain(sub); len(got) != 0 {
			t.Fatalf("extra events: %v", got)
		}
		// After the interval (hub clock) the next batch goes out at once.
		c.Add(time.Second)
		s.Update("a", 2000, sr, []float64{4})
		select {
		case ev := <-sub.C():
			if !strings.Contains(string(ev.JSON), `"cpu":4}`) {
				t.Fatalf("summary %s", ev.JSON)
			}
		default:
			t.Fatal("summary after the interval was held back")
		}
	})
}

// TestSummaryNoAllocation: no subscriber, or a summary subscriber that
// watches no machine, costs no allocation per batch (between summaries).
func TestSummaryNoAllocation(t *testing.T) {
	s, _ := newState(t, Options{})
	sr, vals := realisticBatch()
	s.Update("a", 1, sr, vals)
	ts := int64(2)
	if n := testing.AllocsPerRun(200, func() { ts++; s.Update("a", ts, sr, vals) }); n != 0 {
		t.Fatalf("no subscriber: %v allocations per batch", n)
	}
	sub := s.SubscribeSummary(4096)
	defer sub.Close()
	s.summaryEvery = time.Hour
	s.Update("a", ts+1, sr, vals) // sends the first summary
	s.Update("a", ts+2, sr, vals) // schedules the held-back one
	ts += 3
	if n := testing.AllocsPerRun(200, func() { ts++; s.Update("a", ts, sr, vals) }); n != 0 {
		t.Fatalf("summary subscriber: %v allocations per batch", n)
	}
}

// realisticBatch is one loadgen-like batch of 100 series with every
// headline series of the summary among them.
func realisticBatch() ([]*Series, []float64) {
	var sr []*Series
	add := func(name string, ls ...string) {
		var l metric.Labels
		for i := 0; i+1 < len(ls); i += 2 {
			l = append(l, metric.Label{Name: ls[i], Value: ls[i+1]})
		}
		sr = append(sr, NewSeries(name, l))
	}
	add("cpu_usage_percent", "cpu", "total")
	for i := range 8 {
		add("cpu_usage_percent", "cpu", fmt.Sprint(i))
	}
	add("memory_usage_percent")
	add("load1")
	add("load5")
	add("uptime_seconds")
	for _, mp := range []string{"/", "/home", "/var"} {
		add("filesystem_usage_percent", "device", "/dev/sda"+mp, "fstype", "ext4", "mountpoint", mp)
	}
	for _, nic := range []string{"eth0", "eth1", "lo"} {
		add("network_receive_bytes_per_second", "interface", nic)
		add("network_transmit_bytes_per_second", "interface", nic)
	}
	for i := range 10 {
		add("systemd_unit_active", "unit", fmt.Sprintf("u%d.service", i))
		add("systemd_unit_failed", "unit", fmt.Sprintf("u%d.service", i))
	}
	for i := 0; len(sr) < 100; i++ {
		add("app_requests_total", "app", fmt.Sprint(i))
	}
	vals := make([]float64, len(sr))
	for i := range vals {
		vals[i] = float64(i) * 1.5
	}
	return sr, vals
}

func benchUpdateMixed(b *testing.B, subs func(s *State) []*Subscription) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Connect(MachineInfo{ID: "bench-host"})
	sr, vals := realisticBatch()
	for _, sub := range subs(s) {
		go func() {
			for ev := range sub.C() {
				ev.Release() // as the WebSocket writer does
			}
		}()
		defer sub.Close()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Update("bench-host", int64(i), sr, vals)
	}
}

// BenchmarkUpdateMixed is BenchmarkUpdate with a realistic series mix
// (headline series of the summary included).
func BenchmarkUpdateMixed(b *testing.B) {
	b.Run("no-subscriber", func(b *testing.B) {
		benchUpdateMixed(b, func(*State) []*Subscription { return nil })
	})
	b.Run("full-subscriber", func(b *testing.B) {
		benchUpdateMixed(b, func(s *State) []*Subscription { return []*Subscription{s.Subscribe(4096)} })
	})
	// A summary subscriber (the TUI overview): summaries are rate-limited
	// to one per second, so this measures the bookkeeping.
	b.Run("summary-subscriber", func(b *testing.B) {
		benchUpdateMixed(b, func(s *State) []*Subscription { return []*Subscription{s.SubscribeSummary(4096)} })
	})
	// The same with a summary encoded and sent for every batch.
	b.Run("summary-every-batch", func(b *testing.B) {
		benchUpdateMixed(b, func(s *State) []*Subscription {
			s.summaryEvery = 0
			return []*Subscription{s.SubscribeSummary(4096)}
		})
	})
}
