package tui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestClientAlertsAndAck(t *testing.T) {
	var engine, wrapped atomic.Bool
	var ackPath, ackAuth, ackMethod atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/alerts":
			if !engine.Load() {
				w.WriteHeader(404)
				w.Write([]byte(`{"error":"not found"}`))
				return
			}
			alerts := `[{"id":"a1","rule_id":"r1","rule_name":"CPU high","machine":"web-1","state":"firing","value":97.5,"started_at":"2026-11-22T11:55:00Z","acknowledged":false}]`
			if wrapped.Load() {
				alerts = `{"alerts":` + alerts + `}`
			}
			w.Write([]byte(alerts))
		case strings.HasSuffix(r.URL.Path, "/ack"):
			ackPath.Store(r.URL.Path)
			ackAuth.Store(r.Header.Get("Authorization"))
			ackMethod.Store(r.Method)
			if strings.Contains(r.URL.Path, "forbidden") {
				w.WriteHeader(403)
				w.Write([]byte(`{"error":"admin role required"}`))
				return
			}
			w.Write([]byte(`{"id":"a1","acknowledged":true}`))
		case r.URL.Path == "/api/machines/web-1":
			w.Write([]byte(`{"id":"web-1","processes":[{"pid":42,"name":"postgres\u001b[2J","user":"pg","cpu_percent":12.5,"rss_bytes":1048576}]}`))
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Alerts(ctx); !errors.Is(err, ErrNoAlerts) {
		t.Fatalf("404: err %v, want ErrNoAlerts", err)
	}
	engine.Store(true)
	as, err := c.Alerts(ctx)
	if err != nil || len(as) != 1 || as[0].ID != "a1" || as[0].State != "firing" || as[0].StartedAt.IsZero() {
		t.Fatalf("alerts %+v %v", as, err)
	}
	wrapped.Store(true) // {"alerts":[…]} works too
	if as, err := c.Alerts(ctx); err != nil || len(as) != 1 || as[0].Name != "CPU high" {
		t.Fatalf("wrapped alerts %+v %v", as, err)
	}
	if err := c.Ack(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if ackMethod.Load() != "POST" || ackPath.Load() != "/api/alerts/a1/ack" || ackAuth.Load() != "Bearer s3cret" {
		t.Fatalf("ack request %v %v %v", ackMethod.Load(), ackPath.Load(), ackAuth.Load())
	}
	err = c.Ack(ctx, "forbidden")
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "role") {
		t.Fatalf("403 ack: %v", err)
	}
	ps, err := c.Processes(ctx, "web-1")
	if err != nil || len(ps) != 1 || ps[0].PID != 42 || ps[0].Mem != 1048576 {
		t.Fatalf("processes %+v %v", ps, err)
	}
	if _, err := NewClient("127.0.0.1:8000", "", nil); err == nil {
		t.Fatal("a URL without scheme was accepted")
	}
}

// TestClientStreamsAndReconnects runs the client against a WebSocket server
// that sends a snapshot and a metrics event, then drops the connection: the
// fleet fills, shows "disconnected", and the client comes back by itself.
func TestClientStreamsAndReconnects(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.WriteHeader(404)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		n := conns.Add(1)
		ctx := r.Context()
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"snapshot","machines":[{"id":"web-1","hostname":"web-1.example","labels":{"env":"prod"},"online":true,"connected":true,"last_seen":"2026-11-22T12:00:00Z","info":{"cpu_threads":4},"metrics":[{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":12.5,"ts":1}]}]}`))
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"metrics","machine":"web-2","ts":2,"metrics":[{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":55},{"name":"memory_usage_percent","labels":{},"value":null}]}`))
		if n == 1 {
			time.Sleep(100 * time.Millisecond)
			c.Close(websocket.StatusTryAgainLater, "client too slow")
			return
		}
		<-ctx.Done()
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, "", nil)
	f := NewFleet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, f) }()
	sawDisconnect := false
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn := f.Conn()
		if !conn.Connected && conn.Err != "" {
			sawDisconnect = true
		}
		// Connected again, and the new connection's metrics event (after
		// its snapshot, which alone holds only web-1) applied.
		var web2 bool
		f.Read(func(v FleetView) { web2 = v.Machine("web-2") != nil })
		if sawDisconnect && conn.Connected && conns.Load() >= 2 && web2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawDisconnect || conns.Load() < 2 || !f.Conn().Connected {
		t.Fatalf("disconnect seen %v, connections %d, connected %v", sawDisconnect, conns.Load(), f.Conn().Connected)
	}
	f.Read(func(v FleetView) {
		m1, m2 := v.Machine("web-1"), v.Machine("web-2")
		if m1 == nil || m1.CPU != 12.5 || m1.Hostname != "web-1.example" || m1.Labels != "env=prod" || m1.Info.CPUThreads != 4 {
			t.Fatalf("web-1 %+v", m1)
		}
		if m2 == nil || m2.CPU != 55 || m2.MemPct == m2.MemPct {
			t.Fatalf("web-2 %+v", m2)
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
