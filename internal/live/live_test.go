package live

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newState(t *testing.T, opts Options) (*State, *clock) {
	t.Helper()
	c := newClock(t0)
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func cpu(n string) *Series {
	return NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: n}})
}

func TestUpdateReplacesLatest(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Connect(MachineInfo{ID: "web-1", Hostname: "web-1.example"})
	total, c0 := cpu("total"), cpu("0")
	load := NewSeries("load1", nil)

	s.Update("web-1", 1000, []*Series{total, c0, load}, []float64{10, 20, 0.5})
	s.Update("web-1", 2000, []*Series{total, load}, []float64{11, 0.7})
	// A new *Series with the same identity (e.g. after a reconnect) updates
	// the same entry.
	s.Update("web-1", 3000, []*Series{cpu("total")}, []float64{12})

	m, ok := s.Machine("web-1")
	if !ok {
		t.Fatal("machine missing")
	}
	got := map[string]float64{}
	for _, v := range m.Metrics {
		got[v.Name+"/"+v.Labels.Get("cpu")] = v.Value
	}
	want := map[string]float64{"cpu_usage_percent/0": 20, "cpu_usage_percent/total": 12, "load1/": 0.7}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("latest = %v, want %v", got, want)
	}
	if len(m.Metrics) != 3 {
		t.Fatalf("%d metrics, want 3", len(m.Metrics))
	}
	// Sorted by name then labels.
	if m.Metrics[0].Labels.Get("cpu") != "0" || m.Metrics[2].Name != "load1" {
		t.Fatalf("not sorted: %+v", m.Metrics)
	}
	if m.LastTs != 3000 || !m.Online {
		t.Fatalf("LastTs=%d Online=%v", m.LastTs, m.Online)
	}
}

func TestReplayedBatchKeepsNewerValues(t *testing.T) {
	s, _ := newState(t, Options{})
	total := cpu("total")
	s.Update("a", 5000, []*Series{total}, []float64{50})
	sub := s.Subscribe(8)
	defer sub.Close()
	s.Update("a", 4000, []*Series{total}, []float64{40}) // replay after reconnect
	m, _ := s.Machine("a")
	if m.Metrics[0].Value != 50 || m.LastTs != 5000 {
		t.Fatalf("replay overwrote latest: %+v", m)
	}
	select {
	case ev := <-sub.C():
		t.Fatalf("replayed batch published: %s", ev.JSON)
	default:
	}
}

func TestUpdateUnknownMachineCreatesIt(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Update("script-host", 1, []*Series{NewSeries("x", nil)}, []float64{1})
	ms := s.Machines()
	if len(ms) != 1 || ms[0].Info.ID != "script-host" || !ms[0].Online {
		t.Fatalf("machines = %+v", ms)
	}
}

func TestMismatchedLengthsAndNilSeries(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Update("a", 1, []*Series{nil, NewSeries("x", nil), NewSeries("y", nil)}, []float64{1, 2})
	m, _ := s.Machine("a")
	if len(m.Metrics) != 1 || m.Metrics[0].Name != "x" || m.Metrics[0].Value != 2 {
		t.Fatalf("metrics = %+v", m.Metrics)
	}
}

func TestOfflineAfterTimeout(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, clk := newState(t, Options{OfflineAfter: 15 * time.Second, Registerer: reg})
	gauge := func() float64 { return testutil.ToFloat64(s.metrics.connected) }
	s.Connect(MachineInfo{ID: "a"})
	s.Connect(MachineInfo{ID: "slow", IntervalMs: 10_000}) // 3 × 10s = 30s timeout
	if gauge() != 2 {
		t.Fatalf("connected_agents = %v, want 2", gauge())
	}
	sub := s.Subscribe(16)
	defer sub.Close()

	clk.Add(10 * time.Second)
	s.Update("a", 10_000, []*Series{NewSeries("x", nil)}, []float64{1})
	<-sub.C() // metrics event
	clk.Add(15 * time.Second)
	s.sweep(clk.Now(), false)
	if m, _ := s.Machine("a"); !m.Online {
		t.Fatal("offline at exactly the timeout")
	}
	if m, _ := s.Machine("slow"); !m.Online {
		t.Fatal("slow machine offline before three intervals")
	}
	clk.Add(time.Second)
	s.sweep(clk.Now(), false)
	if m, _ := s.Machine("a"); m.Online {
		t.Fatal("still online after the timeout")
	}
	ev := <-sub.C()
	if ev.Type != EventMachine || ev.Machine != "a" || !strings.Contains(string(ev.JSON), `"online":false`) {
		t.Fatalf("event = %s %s", ev.Type, ev.JSON)
	}
	clk.Add(5 * time.Second)
	s.sweep(clk.Now(), false)
	if m, _ := s.Machine("slow"); m.Online {
		t.Fatal("slow machine online after 31s")
	}
	if gauge() != 0 {
		t.Fatalf("connected_agents = %v, want 0", gauge())
	}
	// Data brings it back online with an event.
	s.Update("a", 40_000, nil, nil)
	if m, _ := s.Machine("a"); !m.Online || gauge() != 1 {
		t.Fatalf("not back online: %+v gauge %v", m, gauge())
	}
}

func TestDisconnectDoesNotFlipOffline(t *testing.T) {
	s, clk := newState(t, Options{OfflineAfter: 15 * time.Second})
	s.Connect(MachineInfo{ID: "a"})
	s.Disconnect("a")
	s.Disconnect("unknown") // no-op
	m, _ := s.Machine("a")
	if !m.Online || m.Connected {
		t.Fatalf("after disconnect: online=%v connected=%v", m.Online, m.Connected)
	}
	clk.Add(5 * time.Second)
	s.sweep(clk.Now(), false)
	s.Connect(MachineInfo{ID: "a"}) // quick reconnect
	if m, _ := s.Machine("a"); !m.Online || !m.Connected {
		t.Fatal("reconnect did not restore state")
	}
	s.Disconnect("a")
	clk.Add(16 * time.Second)
	s.sweep(clk.Now(), false)
	if m, _ := s.Machine("a"); m.Online {
		t.Fatal("online long after disconnect")
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	s, clk := newState(t, Options{StatePath: path})
	boot := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	info := MachineInfo{
		ID: "db-1", Hostname: "db-1.lan", Labels: metric.Labels{{Name: "env", Value: "prod"}, {Name: "role", Value: "db"}},
		OS: "linux", Platform: "debian", KernelVersion: "6.12", Arch: "amd64", CPUModel: "EPYC",
		CPUCores: 8, CPUThreads: 16, MemoryTotalBytes: 64 << 30, BootTime: boot, AgentVersion: "0.1.0", IntervalMs: 1000, Source: SourceAgent,
	}
	s.Connect(info)
	s.Update("db-1", 1, []*Series{NewSeries("x", nil)}, []float64{1})
	seen := clk.Now()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil { // writes on exit
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("registry not written: %v", err)
	}
	matches, _ := filepath.Glob(path + ".tmp*")
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}

	s2, _ := newState(t, Options{StatePath: path})
	m, ok := s2.Machine("db-1")
	if !ok {
		t.Fatal("machine not restored")
	}
	if m.Online || !m.LastSeen.Equal(seen) || len(m.Metrics) != 0 {
		t.Fatalf("restored = %+v", m)
	}
	if fmt.Sprint(m.Info) != fmt.Sprint(info) {
		t.Fatalf("info = %+v\nwant %+v", m.Info, info)
	}
}

func TestCorruptRegistryMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machines.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := newState(t, Options{StatePath: path})
	if len(s.Machines()) != 0 {
		t.Fatal("machines from corrupt file")
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatalf("corrupt file not kept: %v", err)
	}
}

func TestMetricsEventJSON(t *testing.T) {
	s, _ := newState(t, Options{})
	sub := s.Subscribe(4)
	defer sub.Close()
	hostile := `a"b\c<script>&` + "\n\u2028\xff"
	sr := NewSeries("temp_celsius", metric.Labels{{Name: "chip", Value: hostile}, {Name: "z", Value: "1"}})
	plain := &Series{Name: "load1"} // built without NewSeries
	s.Update(hostile, 1700000000123, []*Series{sr, plain}, []float64{42.5, 1e21})

	if ev := <-sub.C(); ev.Type != EventMachine { // came online
		t.Fatalf("first event %q", ev.Type)
	}
	ev := <-sub.C()
	if ev.Type != EventMetrics || ev.Machine != hostile {
		t.Fatalf("event %q %q", ev.Type, ev.Machine)
	}
	idJSON, _ := json.Marshal(hostile)
	want := `{"type":"metrics","machine":` + string(idJSON) + `,"ts":1700000000123,"metrics":[` +
		`{"name":"temp_celsius","labels":{"chip":` + string(idJSON) + `,"z":"1"},"value":42.5},` +
		`{"name":"load1","labels":{},"value":1e+21}]}`
	if string(ev.JSON) != want {
		t.Fatalf("JSON\n got %s\nwant %s", ev.JSON, want)
	}
	if strings.Contains(string(ev.JSON), "<script>") {
		t.Fatal("markup not escaped")
	}
	var v map[string]any
	if err := json.Unmarshal(ev.JSON, &v); err != nil {
		t.Fatal(err)
	}
}

func TestSlowSubscriberCoalescedWithoutBlocking(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newState(t, Options{Registerer: reg})
	slow := s.Subscribe(2) // not read while the updates run
	defer slow.Close()
	fast := s.Subscribe(1000)
	defer fast.Close()
	sr := []*Series{NewSeries("x", nil)}

	done := make(chan struct{})
	go func() {
		for i := range 500 {
			s.Update("a", int64(i), sr, []float64{float64(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Update blocked on a subscriber that never reads")
	}
	if slow.Dropped() {
		t.Fatal("a slow subscriber must be coalesced, not dropped")
	}
	// The slow one gets its queue, then the newest value: nothing stale in
	// between, nothing lost at the end.
	var got []string
	for len(got) < 4 {
		select {
		case ev := <-slow.C():
			got = append(got, ev.Type)
			if ev.Type == EventMetrics && strings.Contains(string(ev.JSON), `"value":499`) {
				got = append(got, "newest")
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("slow subscriber stalled after %v", got)
		}
		if got[len(got)-1] == "newest" {
			break
		}
	}
	if got[len(got)-1] != "newest" || len(got) > 5 {
		t.Fatalf("slow subscriber got %v, want its 2 queued events then the newest", got)
	}
	if fast.Dropped() || len(fast.C()) != 501 { // 1 machine event + 500 metrics
		t.Fatalf("fast subscriber: dropped=%v queued=%d", fast.Dropped(), len(fast.C()))
	}
	if got := testutil.ToFloat64(s.metrics.coalesced); got < 490 {
		t.Fatalf("coalesced counter = %v, want ≈ 497", got)
	}
	if got := testutil.ToFloat64(s.metrics.droppedClients); got != 0 {
		t.Fatalf("dropped counter = %v", got)
	}
}

func TestSubscriberDroppedWhenUncoalescableEventsPileUp(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newState(t, Options{Registerer: reg})
	slow := s.Subscribe(2) // never read
	// The queue (2), the event the pump holds (1) and the backlog fill up;
	// the next alert drops the subscriber.
	sent := 0
	for !slow.Dropped() && sent < 2*maxBacklog {
		s.Publish(Event{Type: "alert", JSON: []byte(`{"type":"alert"}`)})
		sent++
	}
	// Whether the pump already holds one depends on scheduling.
	if !slow.Dropped() || sent < 2+maxBacklog+1 || sent > 2+1+maxBacklog+1 {
		t.Fatalf("dropped=%v after %d alerts, want a drop at %d or %d", slow.Dropped(), sent, 2+maxBacklog+1, 2+1+maxBacklog+1)
	}
	n := 0
	for range slow.C() { // the channel is closed once the pump stops
		n++
	}
	if n > 2+maxBacklog {
		t.Fatalf("got %d events after the drop", n)
	}
	if got := testutil.ToFloat64(s.metrics.droppedClients); got != 1 {
		t.Fatalf("dropped counter = %v", got)
	}
	slow.Close() // after a drop: no panic
	slow.Close()

	stuck := s.Subscribe(2)
	stuck.Drop()
	stuck.Drop()
	if _, ok := <-stuck.C(); ok || !stuck.Dropped() {
		t.Fatal("Drop must close the channel and mark the subscription dropped")
	}
	if got := testutil.ToFloat64(s.metrics.droppedClients); got != 2 {
		t.Fatalf("dropped counter after Drop = %v", got)
	}
}

func TestSubscriptionFilter(t *testing.T) {
	s, _ := newState(t, Options{})
	sub := s.Subscribe(16)
	defer sub.Close()
	sub.SetMachines([]string{"b"})
	sr := []*Series{NewSeries("x", nil)}
	s.Connect(MachineInfo{ID: "a"})
	s.Update("a", 1, sr, []float64{1})
	s.Update("b", 1, sr, []float64{2})
	var got []string
	for len(sub.C()) > 0 {
		ev := <-sub.C()
		got = append(got, ev.Type+":"+ev.Machine)
	}
	// Machine events always pass; metrics only for b.
	want := "[machine:a machine:b metrics:b]"
	if fmt.Sprint(got) != want {
		t.Fatalf("events %v, want %v", got, want)
	}
	sub.SetMachines(nil)
	s.Update("a", 2, sr, []float64{1})
	if ev := <-sub.C(); ev.Type != EventMetrics || ev.Machine != "a" {
		t.Fatalf("after clearing the filter: %+v", ev)
	}
}

func TestPruneStaleSeries(t *testing.T) {
	s, _ := newState(t, Options{StalenessAfter: time.Minute})
	gone, stays := NewSeries("fs", metric.Labels{{Name: "mountpoint", Value: "/mnt"}}), NewSeries("load1", nil)
	s.Update("a", 0, []*Series{gone, stays}, []float64{1, 2})
	s.Update("a", 61_000, []*Series{stays}, []float64{3})
	s.sweep(t0, true)
	m, _ := s.Machine("a")
	if len(m.Metrics) != 1 || m.Metrics[0].Name != "load1" {
		t.Fatalf("after prune: %+v", m.Metrics)
	}
	s.Update("a", 62_000, []*Series{gone, stays}, []float64{5, 6}) // index rebuilt correctly
	m, _ = s.Machine("a")
	if len(m.Metrics) != 2 || m.Metrics[0].Value != 5 || m.Metrics[1].Value != 6 {
		t.Fatalf("after re-add: %+v", m.Metrics)
	}
}

func TestMachineJSON(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Connect(MachineInfo{ID: "a", Hostname: "<b>h</b>", Labels: metric.Labels{{Name: "env", Value: "prod"}}})
	m, _ := s.Machine("a")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "hostname", "labels", "online", "last_seen", "info", "metrics"} {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing in %s", k, b)
		}
	}
	if got["last_seen"] != "2026-11-22T10:00:00Z" || got["hostname"] != "<b>h</b>" {
		t.Errorf("json = %s", b)
	}
	if strings.Contains(string(b), "<b>") {
		t.Errorf("markup not escaped: %s", b)
	}
	m.Metrics = nil
	b, _ = json.Marshal(m)
	if strings.Contains(string(b), `"metrics"`) {
		t.Errorf("nil metrics encoded: %s", b)
	}
}

func TestConcurrentUpdateAndSubscribe(t *testing.T) {
	s, _ := newState(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("m%d", w)
			s.Connect(MachineInfo{ID: id})
			sr := make([]*Series, 20)
			vals := make([]float64, 20)
			for i := range sr {
				sr[i] = cpu(fmt.Sprint(i))
			}
			for i := 0; ctx.Err() == nil; i++ {
				s.Update(id, int64(i), sr, vals)
				if i%50 == 0 {
					s.Disconnect(id)
					s.Connect(MachineInfo{ID: id})
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			sub := s.Subscribe(8)
			sub.SetMachines([]string{"m1"})
			for range 5 {
				select {
				case <-sub.C():
				case <-time.After(time.Millisecond):
				}
			}
			sub.Close()
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = s.Machines()
			s.sweep(time.Now(), true)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	if len(s.Machines()) != 4 {
		t.Fatal("machines lost")
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	newState(t, Options{Registerer: reg})
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Fatal("second registration succeeded")
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "<script>&", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func benchUpdate(b *testing.B, subscribe bool) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Connect(MachineInfo{ID: "bench-host"})
	sr := make([]*Series, 100)
	vals := make([]float64, 100)
	for i := range sr {
		sr[i] = NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: fmt.Sprint(i)}})
		vals[i] = float64(i) * 1.5
	}
	if subscribe {
		sub := s.Subscribe(4096)
		defer func() {
			if sub.Dropped() {
				b.Error("subscriber dropped during the benchmark")
			}
			sub.Close()
		}()
		go func() {
			for ev := range sub.C() {
				ev.Release() // as the WebSocket writer does
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Update("bench-host", int64(i), sr, vals)
	}
}

func BenchmarkUpdate(b *testing.B) {
	b.Run("no-subscriber", func(b *testing.B) { benchUpdate(b, false) })
	b.Run("one-subscriber", func(b *testing.B) { benchUpdate(b, true) })
}

// TestSeriesIndexCollision: two series of a machine whose hashes collide
// keep their own values (the index spills the second to its key).
func TestSeriesIndexCollision(t *testing.T) {
	s, _ := newState(t, Options{})
	a := NewSeries("a", metric.Labels{{Name: "x", Value: "1"}})
	b := NewSeries("b", nil)
	b.hash = a.hash                                              // a collision, forced
	a2 := NewSeries("a", metric.Labels{{Name: "x", Value: "1"}}) // a again, another pointer (a reconnect)
	b2 := &Series{Name: "b", hash: a.hash}
	s.Update("m", 1000, []*Series{a, b}, []float64{1, 2})
	s.Update("m", 2000, []*Series{b2, a2}, []float64{20, 10})
	m, ok := s.Machine("m")
	if !ok {
		t.Fatal("no machine")
	}
	got := map[string]float64{}
	for _, v := range m.Metrics {
		got[v.Name] = v.Value
	}
	if len(m.Metrics) != 2 || got["a"] != 10 || got["b"] != 20 {
		t.Fatalf("metrics %+v, want a=10 b=20", m.Metrics)
	}
	if m.Metrics[0].Name != "a" {
		t.Fatalf("order %+v, want a first", m.Metrics)
	}
}
