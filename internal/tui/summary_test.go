package tui

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const summarySnapshot = `{"type":"snapshot","mode":"summary","machines":[
	{"id":"web-1","hostname":"web-1.example","labels":{"env":"prod"},"online":true,"connected":true,"last_seen":"2026-11-22T12:00:00Z",
	 "info":{"platform":"Debian","cpu_threads":4},
	 "summary":{"cpu":12.5,"mem":40,"disk_max":91.5,"load1":0.5,"net_rx":1024,"net_tx":2048,"uptime":3600,"services_ok":3,"services_total":4,"services_failed":1}},
	{"id":"bare","hostname":"bare","labels":{},"online":false,"connected":false,"last_seen":null,"info":{},"summary":{}}]}`

func TestHandleSummaryMessages(t *testing.T) {
	f := NewFleet()
	ok := func(msg string) {
		t.Helper()
		if err := f.HandleMessage([]byte(msg)); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
	}
	ok(summarySnapshot)
	if !f.SummaryMode() || !f.Conn().Connected {
		t.Fatal("summary snapshot: not in summary mode, or not connected")
	}
	f.Read(func(v FleetView) {
		m := v.Machine("web-1")
		if m == nil || m.CPU != 12.5 || m.MemPct != 40 || m.DiskPct() != 91.5 || m.Load1 != 0.5 || m.NetRx() != 1024 || m.NetTx() != 2048 || m.Uptime != 3600 {
			t.Fatalf("web-1 %+v", m)
		}
		if ok, total := m.Services(); ok != 3 || total != 4 {
			t.Fatalf("services %d/%d", ok, total)
		}
		if m.Info.CPUThreads != 4 || m.Labels != "env=prod" || !m.Online || len(m.CPUHist()) != 1 {
			t.Fatalf("web-1 meta %+v", m)
		}
		b := v.Machine("bare")
		if b == nil || !math.IsNaN(b.CPU) || !math.IsNaN(b.DiskPct()) || !math.IsNaN(b.NetRx()) || b.Online {
			t.Fatalf("bare %+v", b)
		}
		if _, total := b.Services(); total != 0 {
			t.Fatal("bare has services")
		}
	})

	// A summary event replaces every headline value: left out is unknown.
	ok(`{"type":"summary","machine":"web-1","ts":2000,"summary":{"cpu":80,"disk_max":50,"services_ok":4,"services_total":4}}`)
	// The detail view's metrics (web-1 is the focus) fill the detail but
	// the overview keeps the hub's aggregates, and the CPU history moves
	// once per summary, not once more per batch.
	ok(`{"type":"metrics","machine":"web-1","ts":2000,"metrics":[
		{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":80},
		{"name":"cpu_usage_percent","labels":{"cpu":"0"},"value":70},
		{"name":"filesystem_usage_percent","labels":{"mountpoint":"/","device":"/dev/sda1","fstype":"ext4"},"value":20},
		{"name":"network_receive_bytes_per_second","labels":{"interface":"eth0"},"value":5}]}`)
	ok(`{"type":"processes","machine":"web-1","ts":2000,"processes":[{"pid":7,"name":"nginx\u001b[2J","user":"www","command":"nginx: worker","cpu_percent":1.5,"rss_bytes":1048576,"state":"S"}]}`)
	ok(`{"type":"processes","machine":"nobody","ts":2000,"processes":[]}`)
	f.Read(func(v FleetView) {
		m := v.Machine("web-1")
		if m.CPU != 80 || !math.IsNaN(m.MemPct) || m.DiskPct() != 50 || !math.IsNaN(m.NetRx()) || !math.IsNaN(m.Load1) {
			t.Fatalf("after summary event %+v", m)
		}
		if ok, total := m.Services(); ok != 4 || total != 4 {
			t.Fatalf("services %d/%d", ok, total)
		}
		if len(m.FS) != 1 || m.FS[0].Pct != 20 || len(m.Cores) != 1 || len(m.NICs) != 1 {
			t.Fatalf("detail values %+v", m)
		}
		if h := m.CPUHist(); len(h) != 2 || h[1] != 80 || len(m.CoreHist(0)) != 1 {
			t.Fatalf("cpu history %v, core history %v", h, m.CoreHist(0))
		}
		if len(m.Processes) != 1 || m.Processes[0].Mem != 1048576 || strings.Contains(m.Processes[0].Name, "\x1b") {
			t.Fatalf("processes %+v", m.Processes)
		}
		if v.Machine("nobody") != nil {
			t.Fatal("a processes event created a machine")
		}
	})

	// Counts that make no sense are unknown.
	ok(`{"type":"summary","machine":"web-1","ts":3000,"summary":{"services_ok":5,"services_total":4}}`)
	ok(`{"type":"summary","machine":"new","ts":3000,"summary":{"services_ok":-1,"services_total":1.5,"cpu":null}}`)
	f.Read(func(v FleetView) {
		if _, total := v.Machine("web-1").Services(); total != 0 {
			t.Fatal("ok > total accepted")
		}
		if m := v.Machine("new"); m == nil || !math.IsNaN(m.CPU) {
			t.Fatal("summary of an unseen machine not kept")
		}
	})

	// A full snapshot (a hub without summary mode) leaves summary mode.
	ok(`{"type":"snapshot","machines":[]}`)
	if f.SummaryMode() {
		t.Fatal("still in summary mode after a full snapshot")
	}

	for _, bad := range []string{
		`{"type":"summary","machine":{"id":"x"},"summary":{}}`,
		`{"type":"summary","machine":"x"}`,
		`{"type":"summary","machine":"x","summary":{"cpu":tru}}`,
		`{"type":"summary","machine":"x","summary":[1]}`,
		`{"type":"processes","machine":"x"}`,
		`{"type":"processes","machine":"x","processes":{"pid":1}}`,
		`{"type":"snapshot","mode":"summary","machines":[{"id":"a","summary":{"cpu":"x"}}]}`,
	} {
		if err := f.HandleMessage([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestHandleSummaryNoAllocation: a summary event of a known machine is
// decoded without allocating (1,000 of them arrive every second).
func TestHandleSummaryNoAllocation(t *testing.T) {
	f := NewFleet()
	if err := f.HandleMessage([]byte(summarySnapshot)); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"type":"summary","machine":"web-1","ts":2000,"summary":{"cpu":80.25,"mem":41.5,"disk_max":50,"load1":1.25,"net_rx":123456,"net_tx":654321,"uptime":86400,"services_ok":4,"services_total":4,"services_failed":0}}`)
	if n := testing.AllocsPerRun(100, func() {
		if err := f.HandleMessage(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per summary event", n)
	}
}

// BenchmarkHandleSummary decodes one summary event (run: go test -bench
// HandleSummary ./internal/tui).
func BenchmarkHandleSummary(b *testing.B) {
	f := NewFleet()
	if err := f.HandleMessage([]byte(summarySnapshot)); err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"type":"summary","machine":"web-1","ts":2000,"summary":{"cpu":80.25,"mem":41.5,"disk_max":50,"load1":1.25,"net_rx":123456,"net_tx":654321,"uptime":86400,"services_ok":4,"services_total":4,"services_failed":0}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.HandleMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAlertFieldsOfTheAlertEngine(t *testing.T) {
	f := NewFleet()
	f.Update(func(w FleetWriter) { w.Machine("web-1") })
	// The engine's shape: rule_name, and "inactive" for a pending alert
	// that never fired (it is gone).
	for _, msg := range []string{
		`{"type":"alert","alert":{"id":"a1","rule_id":"r1","rule_name":"CPU usage high","machine":"web-1","state":"pending","severity":"warning","value":93.5,"started_at":"2026-11-22T11:55:00Z","acknowledged":false}}`,
		`{"type":"alert","alert":{"id":"a2","rule_id":"r1","rule_name":"CPU usage high","machine":"web-1","state":"firing","severity":"critical","value":99,"started_at":"2026-11-22T11:56:00Z","acknowledged":true}}`,
		`{"type":"alert","alert":{"id":"a1","rule_id":"r1","rule_name":"CPU usage high","machine":"web-1","state":"inactive"}}`,
		`{"type":"alert","alert":{"id":"a3","rule_id":"r1","machine":"web-1","state":"inactive"}}`,
	} {
		if err := f.HandleMessage([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	f.Read(func(v FleetView) {
		as := v.Alerts()
		if len(as) != 1 || as[0].ID != "a2" || as[0].Rule != "CPU usage high" || !as[0].Acknowledged || as[0].Severity != "critical" {
			t.Fatalf("alerts %+v", as)
		}
		if v.Machine("web-1").FiringAlerts != 1 {
			t.Fatal("firing count")
		}
	})
	f.SetAlerts([]Alert{{ID: "x", Name: "disk full", State: "resolved"}, {ID: "y", State: "inactive"}})
	f.Read(func(v FleetView) {
		if as := v.Alerts(); len(as) != 1 || as[0].Rule != "disk full" {
			t.Fatalf("alerts %+v", as)
		}
	})
}

// TestClientSummaryModeAndFocus runs the client against a WebSocket server
// in summary mode: it asks for mode=summary, and the fleet's focus (the
// detail view) becomes {"subscribe":[id]} plus a fetch of the machine,
// leaving it {"subscribe":[]}.
func TestClientSummaryModeAndFocus(t *testing.T) {
	var mu sync.Mutex
	var mode string
	var fromClient []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/machines/web-1":
			w.Write([]byte(`{"id":"web-1","hostname":"web-1.example","online":true,"info":{},"metrics":[{"name":"filesystem_usage_percent","labels":{"mountpoint":"/srv"},"value":33,"ts":1}],"processes":[]}`))
			return
		case "/ws":
		default:
			w.WriteHeader(404)
			return
		}
		mu.Lock()
		mode = r.URL.Query().Get("mode")
		mu.Unlock()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		c.Write(ctx, websocket.MessageText, []byte(summarySnapshot))
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			fromClient = append(fromClient, string(b))
			mu.Unlock()
		}
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, "", nil)
	f := NewFleet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, f) }()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("timed out waiting for %s (mode %q, client sent %q)", what, mode, fromClient)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("the summary snapshot", func() bool { return f.SummaryMode() && f.Conn().Connected })
	mu.Lock()
	if mode != "summary" || len(fromClient) != 0 {
		t.Fatalf("mode %q, client sent %q before any focus", mode, fromClient)
	}
	mu.Unlock()

	f.SetFocus("web-1")
	waitUntil("the subscribe and the detail values", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var fs int
		f.Read(func(v FleetView) { fs = len(v.Machine("web-1").FS) })
		return len(fromClient) == 1 && fs == 1
	})
	f.SetFocus("")
	waitUntil("the unsubscribe", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fromClient) == 2
	})
	mu.Lock()
	for i, want := range []string{`{"subscribe":["web-1"]}`, `{"subscribe":[]}`} {
		var got any
		if err := json.Unmarshal([]byte(fromClient[i]), &got); err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(got); string(b) != want {
			t.Fatalf("message %d: %s, want %s", i, fromClient[i], want)
		}
	}
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDetailSetsFocus: Enter puts the machine in focus (full metrics for it
// only), Esc takes it away; the alerts view opened from the detail keeps it.
func TestDetailSetsFocus(t *testing.T) {
	f := fixtureFleet(5)
	m := newTestModel(t, f, 120, 40)
	if f.Focus() != "" {
		t.Fatal("focus on the overview")
	}
	press(m, "enter")
	if m.view != viewDetail || f.Focus() != m.selected || m.selected == "" {
		t.Fatalf("after Enter: view %v focus %q selected %q", m.view, f.Focus(), m.selected)
	}
	select {
	case <-f.FocusChanged():
	default:
		t.Fatal("focus change not signalled")
	}
	press(m, "a")
	if f.Focus() != m.selected {
		t.Fatal("alerts view dropped the focus")
	}
	press(m, "esc", "esc")
	if m.view != viewOverview || f.Focus() != "" {
		t.Fatalf("after Esc: view %v focus %q", m.view, f.Focus())
	}
	m2 := New(Options{Fleet: f, Detail: "web-02"})
	if m2.view != viewDetail || f.Focus() != "web-02" {
		t.Fatal("--local detail at start without focus")
	}
}
