package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

func newLive(t *testing.T) *live.State {
	t.Helper()
	st, err := live.New(live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// startForwarder runs a forwarder until the test ends.
func startForwarder(t *testing.T, opts ForwarderOptions, machines, metrics, labels string) *Forwarder {
	t.Helper()
	var err error
	if opts.Machines, err = ParseGlobs(machines); err != nil {
		t.Fatal(err)
	}
	if opts.Metrics, err = ParseSelectors(metrics); err != nil {
		t.Fatal(err)
	}
	if opts.MachineLabels, err = ParseGlobs(labels); err != nil {
		t.Fatal(err)
	}
	if opts.Key == "" {
		opts.Key = testKey
	}
	opts.Registerer = prometheus.NewRegistry()
	f, err := NewForwarder(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder Run: %v", err)
		}
	})
	return f
}

func publishURL(base string) string {
	return strings.Replace(base, "http://", "ws://", 1) + "/api/publish"
}

// hostSeries is what an agent sends: public headline series and private ones.
var hostSeries = []*live.Series{
	live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}}),
	live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "0"}}),
	live.NewSeries("memory_usage_percent", nil),
	live.NewSeries("memory_used_bytes", nil),
	live.NewSeries("filesystem_usage_percent", metric.Labels{{Name: "device", Value: "/dev/sda1"}, {Name: "fstype", Value: "ext4"}, {Name: "mountpoint", Value: "/"}}),
	live.NewSeries("filesystem_used_bytes", metric.Labels{{Name: "device", Value: "/dev/sda1"}, {Name: "fstype", Value: "ext4"}, {Name: "mountpoint", Value: "/"}}),
	live.NewSeries("network_receive_bytes_per_second", metric.Labels{{Name: "interface", Value: "eth0"}}),
	live.NewSeries("processes_total", nil),
	live.NewSeries("systemd_unit_active", metric.Labels{{Name: "unit", Value: "secret-backup.service"}}),
	live.NewSeries("uptime_seconds", nil),
}

var publicNames = []string{"cpu_usage_percent", "filesystem_usage_percent", "memory_usage_percent", "network_receive_bytes_per_second", "uptime_seconds"}

func hostValues(cpu float64) []float64 {
	return []float64{cpu, 99, 40, 4e9, 55, 1e10, 3e5, 321, 1, 86400}
}

func TestForwarderSendsOnlyPublicData(t *testing.T) {
	st := newLive(t)
	for _, id := range []string{"web-1", "db-secret"} {
		st.Connect(live.MachineInfo{
			ID: id, Hostname: id + ".corp.internal", KernelVersion: "6.1.0-private", CPUModel: "Xeon Private",
			Labels: metric.Labels{{Name: "env", Value: "prod"}, {Name: "owner", Value: "alice"}},
		})
		st.Update(id, ts0, hostSeries, hostValues(10))
	}
	s, base := startEdge(t, Options{})
	f := startForwarder(t, ForwarderOptions{URL: publishURL(base), Source: st}, "*,!db-*", DefaultMetrics, "env")

	testutil.Until(t, 10*time.Second, "snapshot at the edge", func() bool { return s.state.Len() == 1 })
	// Live events after the snapshot: new values, a new machine, processes.
	st.Update("web-1", ts0+1000, hostSeries, hostValues(42))
	st.SetProcesses("web-1", ts0+1000, []live.Process{{PID: 1, Name: "secret-proc", Command: "secret-proc --password hunter2"}})
	st.Connect(live.MachineInfo{ID: "web-2", Labels: metric.Labels{{Name: "env", Value: "staging"}}})
	st.Update("web-2", ts0+1000, hostSeries, hostValues(7))
	st.Update("db-secret", ts0+1000, hostSeries, hostValues(8))
	testutil.Until(t, 10*time.Second, "live values at the edge", func() bool {
		m1, ok1 := s.state.machine("web-1")
		m2, ok2 := s.state.machine("web-2")
		return ok1 && ok2 && m1.LastTs == ts0+1000 && len(m2.Metrics) > 0
	})

	var list []apiMachine
	getJSON(t, base+"/api/machines", &list)
	if len(list) != 2 || list[0].ID != "web-1" || list[1].ID != "web-2" {
		t.Fatalf("edge machines %+v", list)
	}
	for _, m := range list {
		if len(m.Labels) != 1 || m.Labels["env"] == "" {
			t.Errorf("%s: labels %v, want env only", m.ID, m.Labels)
		}
		var names []string
		for _, v := range m.Metrics {
			names = append(names, v.Name)
			if v.Name == "cpu_usage_percent" && v.Labels["cpu"] != "total" {
				t.Errorf("%s: per-CPU series %v forwarded", m.ID, v.Labels)
			}
		}
		names = slices.Compact(names)
		if !slices.Equal(names, publicNames) {
			t.Errorf("%s: metrics %v, want %v", m.ID, names, publicNames)
		}
	}
	if v := list[0].Metrics[0]; v.Name != "cpu_usage_percent" || v.Value != 42 {
		t.Errorf("web-1 cpu = %+v, want the live value 42", v)
	}
	// Nothing private anywhere in what the edge holds.
	all := ""
	for _, id := range []string{"web-1", "web-2"} {
		resp, err := http.Get(base + "/api/machines/" + id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		all += string(b)
	}
	for _, secret := range []string{"db-secret", "corp.internal", "alice", "owner", "Xeon", "6.1.0", "secret-proc", "hunter2", "secret-backup", "memory_used_bytes", "processes_total"} {
		if strings.Contains(all, secret) {
			t.Errorf("edge holds %q", secret)
		}
	}
	if s.rejected.Load() != 0 {
		t.Errorf("the edge rejected %d forwarded messages", s.rejected.Load())
	}
	if promtest.ToFloat64(f.connected) != 1 || promtest.ToFloat64(f.messages.WithLabelValues("snapshot")) != 1 || promtest.ToFloat64(f.messages.WithLabelValues("metrics")) < 2 {
		t.Errorf("forwarder metrics: connected %v snapshot %v metrics %v", promtest.ToFloat64(f.connected),
			promtest.ToFloat64(f.messages.WithLabelValues("snapshot")), promtest.ToFloat64(f.messages.WithLabelValues("metrics")))
	}

	// A machine going offline is forwarded as such.
	st.Disconnect("web-2")
	testutil.Until(t, 10*time.Second, "machine event", func() bool {
		m, _ := s.state.machine("web-2")
		return m.Labels["env"] == "staging"
	})
}

func TestForwarderWrongKey(t *testing.T) {
	st := newLive(t)
	st.Update("web-1", ts0, hostSeries, hostValues(1))
	s, base := startEdge(t, Options{})
	f := startForwarder(t, ForwarderOptions{URL: publishURL(base), Source: st, Key: "another-key-0123456789", MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, "*", DefaultMetrics, "*")
	testutil.Until(t, 10*time.Second, "rejected twice", func() bool { return promtest.ToFloat64(f.reconnects.WithLabelValues("rejected")) >= 2 })
	if s.state.Len() != 0 || s.unauthorized.Load() < 2 || promtest.ToFloat64(f.connected) != 0 {
		t.Fatalf("machines %d unauthorized %d", s.state.Len(), s.unauthorized.Load())
	}
}

func TestNewForwarderChecks(t *testing.T) {
	st := newLive(t)
	f := func(url, key, want string) {
		t.Helper()
		_, err := NewForwarder(ForwarderOptions{URL: url, Key: key, Source: st})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %q: %v, want %q", url, key, err, want)
		}
		if err != nil && strings.Contains(strings.ReplaceAll(err.Error(), url, ""), "--") {
			t.Errorf("%s %q: error %q names a flag; the command layer does that", url, key, err)
		}
	}
	f("wss://status.example.com/api/publish", "", "edge-key: the edge's publish key is required")
	f("ws://status.example.com/api/publish", testKey, "clear text")
	f("http://127.0.0.1:8080/api/publish", testKey, "scheme must be wss://")
	f("wss:///api/publish", testKey, "want wss://HOST")
	f("wss://status.example.com/api/publish", "", "at least 16")
	f("wss://status.example.com/api/publish", "short", "at least 16")
	for _, ok := range []string{"wss://status.example.com/api/publish", "ws://127.0.0.1:8080/api/publish", "ws://localhost:8080/api/publish", "ws://[::1]:8080/api/publish"} {
		if _, err := NewForwarder(ForwarderOptions{URL: ok, Key: testKey, Source: st}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestForwarderCarriesForget: a machine the hub forgets, by Forget (DELETE
// /api/machines/{id}) or after ForgetAfter offline, leaves the edge's state
// and its browsers' pages at once; the forget of a private machine stays on
// the hub.
func TestForwarderCarriesForget(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(ts0)
	st, err := live.New(live.Options{OfflineAfter: time.Minute, ForgetAfter: time.Hour, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for _, id := range []string{"web-1", "web-2", "db-secret"} {
		st.Connect(live.MachineInfo{ID: id})
		st.Update(id, ts0, hostSeries, hostValues(10))
	}
	s, base := startEdge(t, Options{})
	f := startForwarder(t, ForwarderOptions{URL: publishURL(base), Source: st}, "*,!db-*", DefaultMetrics, "env")
	testutil.Until(t, 10*time.Second, "snapshot at the edge", func() bool { return s.state.Len() == 2 })
	b := dial(t, base+"/ws", nil)
	if snap := read(t, b); snap.Type != typeSnapshot || len(snap.Machines) != 2 {
		t.Fatalf("browser snapshot %+v", snap)
	}

	// Forgotten by an admin.
	for _, id := range []string{"db-secret", "web-1"} {
		if ok, err := st.Forget(id); !ok || err != nil {
			t.Fatalf("Forget(%s) = %v, %v", id, ok, err)
		}
	}
	rm := readUntil(t, b, "remove", func(m browserMsg) bool { return m.Type == typeRemove })
	if string(rm.Machine) != `"web-1"` {
		t.Fatalf("browser told to remove %s", rm.Machine)
	}
	if list := s.state.list(false); len(list) != 1 || list[0].ID != "web-2" {
		t.Fatalf("edge machines after the forget: %+v", list)
	}

	// Forgotten after an hour without data.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	rm = readUntil(t, b, "remove after ForgetAfter", func(m browserMsg) bool { return m.Type == typeRemove })
	if string(rm.Machine) != `"web-2"` || s.state.Len() != 0 {
		t.Fatalf("removed %s, %d machines left", rm.Machine, s.state.Len())
	}
	// The forwarder counts a message once its write returned, which can be
	// after the edge relayed it to the browser.
	removes := func() float64 { return promtest.ToFloat64(f.messages.WithLabelValues(typeRemove)) }
	testutil.Until(t, 5*time.Second, "the second remove message counted", func() bool { return removes() >= 2 })
	if n := removes(); n != 2 {
		t.Errorf("remove messages sent: %v, want 2 (db-secret is private)", n)
	}
	if n := s.rejected.Load(); n != 0 {
		t.Errorf("edge rejected %d messages", n)
	}
}

// TestForwarderStalledEdgeNeverSlowsHub: an edge that accepts and then
// stops reading makes the forwarder's writes time out; it reconnects, and
// the live state's Update (the ingest path) never waits for it. The test
// runs in a synctest bubble with the edge on an in-memory listener: time is
// fake and stands still while Update runs, so an Update that waited on the
// edge would show as fake time passing, however busy the machine is.
func TestForwarderStalledEdgeNeverSlowsHub(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var accepts atomic.Int32
		release := make(chan struct{})
		ln := testutil.NewPipeListener()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			accepts.Add(1)
			<-release // never read: the forwarder's writes stall
			c.CloseNow()
		})}
		served := make(chan struct{})
		go func() { _ = srv.Serve(ln); close(served) }()
		defer func() { <-served }()
		defer srv.Close()
		defer close(release)

		st := newLive(t)
		const machines, perMachine = 40, MaxSeriesPerMachine
		pad := strings.Repeat("x", MaxLabelValueBytes)
		series := make([]*live.Series, perMachine)
		values := make([]float64, perMachine)
		for i := range series {
			series[i] = live.NewSeries("gauge", metric.Labels{{Name: "i", Value: fmt.Sprint(i)}, {Name: "pad", Value: pad}})
			values[i] = float64(i)
		}
		f := startForwarder(t, ForwarderOptions{URL: "ws://127.0.0.1:1/api/publish", DialContext: ln.Dial, Source: st,
			WriteTimeout: time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, "*", "*", "*")

		start := time.Now()
		ts := ts0
		for accepts.Load() < 3 || promtest.ToFloat64(f.reconnects.WithLabelValues("write")) < 2 {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("after 30s: %d connections, %v write failures", accepts.Load(), promtest.ToFloat64(f.reconnects.WithLabelValues("write")))
			}
			ts += 1000
			for m := 0; m < machines; m++ {
				t0 := time.Now()
				st.Update(fmt.Sprint("m", m), ts, series, values)
				if waited := time.Since(t0); waited != 0 {
					t.Fatalf("an Update waited %s while the edge was stuck", waited)
				}
			}
			time.Sleep(10 * time.Millisecond) // a batch per machine every 10 ms: the subscription queue overflows
		}
		t.Logf("%d connections in %s (fake time); dropped %v", accepts.Load(), time.Since(start), promtest.ToFloat64(f.dropped))
	})
}

// TestFilterEventIgnoresOtherEvents: alerts, processes and foreign event
// types never leave the hub.
func TestFilterEventIgnoresOtherEvents(t *testing.T) {
	f, err := NewForwarder(ForwarderOptions{URL: "ws://127.0.0.1:1/api/publish", Key: testKey, Source: newLive(t), Machines: mustGlobs(t, "*"), Metrics: Selectors{{Name: "*"}}, MachineLabels: mustGlobs(t, "*")})
	if err != nil {
		t.Fatal(err)
	}
	public := map[string]bool{}
	for _, ev := range []live.Event{
		{Type: live.EventProcesses, Machine: "a", JSON: []byte(`{"type":"processes","machine":"a","processes":[{"pid":1}]}`)},
		{Type: "alert", Machine: "a", JSON: []byte(`{"type":"alert","alert":{"id":1}}`)},
		{Type: live.EventSummary, Machine: "a", JSON: []byte(`{"type":"summary","machine":"a"}`)},
		{Type: live.EventMetrics, Machine: "a", JSON: []byte(`{"type":"metrics","machine":"a","ts":1,"metrics":[{"name":"x","labels":{},"value":1}]}`)}, // ts out of range
		{Type: live.EventMetrics, Machine: "a", JSON: []byte(`not json`)},
		{Type: live.EventMetrics, Machine: "a\x01", JSON: []byte(`{"type":"metrics","machine":"a\u0001","ts":1795639048000,"metrics":[{"name":"x","labels":{},"value":1}]}`)},
	} {
		if msg, _ := f.filterEvent(ev, public); msg != nil {
			t.Errorf("%s event forwarded: %s", ev.Type, msg)
		}
	}
	msg, typ := f.filterEvent(live.Event{Type: live.EventMetrics, Machine: "a", JSON: []byte(`{"type":"metrics","machine":"a","ts":1795639048000,"metrics":[{"name":"x","labels":{"k":"v"},"value":null},{"name":"y","labels":{"k":"v"},"value":2}]}`)}, public)
	var got pubMessage
	if typ != typeMetrics || json.Unmarshal(msg, &got) != nil || len(got.Metrics) != 1 || got.Metrics[0].Name != "y" {
		t.Fatalf("metrics event: %s %s", typ, msg)
	}
}

func mustGlobs(t *testing.T, s string) Globs {
	t.Helper()
	g, err := ParseGlobs(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
