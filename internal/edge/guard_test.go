package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// metricsText fetches the edge's /metrics.
func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// closedByServer reports whether the server closes c (EOF or reset)
// within d, without c having sent a request.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestEdgeConnectionLimitPerAddress: with --max-conns-per-ip 3 and no
// exemption, a viewer, the publishing hub and one idle connection from
// 127.0.0.1 fill the limit; the fourth connection is closed at once and
// counted, the viewer keeps its stream, and a freed place is taken again.
func TestEdgeConnectionLimitPerAddress(t *testing.T) {
	s, base := startEdge(t, Options{MaxConnsPerIP: 3, ConnLimitExempt: []netip.Prefix{}})
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	send(t, pub, fmt.Sprintf(`{"type":"snapshot","part":0,"last":true,"machines":[{"id":"web-1","online":true,"metrics":[{"name":"load1","labels":{},"value":1,"ts":%d}]}]}`, ts0))
	testutil.Until(t, 10*time.Second, "snapshot applied", func() bool { return s.state.Len() == 1 })
	viewer := dial(t, base+"/ws", nil)
	if m := read(t, viewer); m.Type != "snapshot" {
		t.Fatalf("first message %+v", m)
	}
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	over, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if !closedByServer(over, 5*time.Second) {
		t.Fatal("a 4th connection from one address was kept open, limit 3")
	}

	// The viewer and the publisher are unharmed.
	send(t, pub, metricsMsg("web-1", ts0+1000, val("load1", 0.5)))
	got := readUntil(t, viewer, "metrics of web-1", func(m browserMsg) bool { return m.Type == "metrics" })
	if got.Ts != ts0+1000 {
		t.Fatalf("metrics %+v", got)
	}

	// A freed place serves the next connection. Tries while the server
	// has not yet seen idle's close are refused and counted too.
	idle.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	refused := 1
	var text string
	testutil.Until(t, 10*time.Second, "a freed place", func() bool {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			refused++
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		return resp.StatusCode == http.StatusOK
	})
	want := fmt.Sprintf(`sysmonstm_rejected_connections_total{listener="http",reason="per_ip_limit"} %d`, refused)
	if !strings.Contains(text, want+"\n") {
		t.Fatalf("/metrics lacks %q:\n%s", want, text)
	}
}

// TestEdgeDoesNotWaitForRequestBody: no endpoint of the edge takes a
// body. A request that declares one and drips it a byte every 100 ms gets
// its answer at once and its connection closed, instead of net/http
// reading up to 256 KiB of the body after the answer with no deadline
// (which held the connection for as long as the client kept dripping).
// A viewer on the same edge is not affected.
func TestEdgeDoesNotWaitForRequestBody(t *testing.T) {
	_, base := startEdge(t, Options{})
	viewer := dial(t, base+"/ws", nil)
	if m := read(t, viewer); m.Type != "snapshot" {
		t.Fatalf("first message %+v", m)
	}
	f := func(method, path string, status int) {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		began := time.Now()
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx", method, path)
		stop := make(chan struct{})
		defer close(stop)
		go func() { // the drip
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s %s with a dripping body: no answer after %s: %v", method, path, time.Since(began).Round(time.Millisecond), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || !resp.Close {
			t.Fatalf("%s %s with a body: %d, Connection: close %v; want %d and close", method, path, resp.StatusCode, resp.Close, status)
		}
		if _, err := br.ReadByte(); err == nil || time.Since(began) > 3*time.Second {
			t.Fatalf("%s %s with a body: connection still open after %s (%v)", method, path, time.Since(began).Round(time.Millisecond), err)
		}
	}
	f("GET", "/health", http.StatusOK)
	f("GET", "/api/machines", http.StatusOK)
	f("POST", "/api/machines", http.StatusMethodNotAllowed)

	// The viewer outlives it all.
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	send(t, pub, `{"type":"snapshot","part":0,"last":true,"machines":[{"id":"web-1","online":true}]}`)
	send(t, pub, metricsMsg("web-1", ts0, val("load1", 0.5)))
	readUntil(t, viewer, "metrics of web-1", func(m browserMsg) bool { return m.Type == "metrics" })
}

// TestEdgeViewerCap: past MaxViewers a browser gets 503 with a JSON error
// and Retry-After, counted in /health and /metrics; a freed place is
// taken again.
func TestEdgeViewerCap(t *testing.T) {
	s, base := startEdge(t, Options{MaxViewers: 2})
	a := dial(t, base+"/ws", nil)
	dial(t, base+"/ws", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("3rd viewer, limit 2: %v %+v", err, resp)
	}
	var health struct {
		Clients        int `json:"clients"`
		RefusedClients int `json:"refused_clients"`
	}
	getJSON(t, base+"/health", &health)
	if health.Clients != 2 || health.RefusedClients != 1 {
		t.Fatalf("health %+v", health)
	}
	text := metricsText(t, base)
	for _, want := range []string{"sysmonstm_websocket_clients 2\n", "sysmonstm_websocket_refused_clients_total 1\n"} {
		if !strings.Contains(text, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, text)
		}
	}
	a.Close(websocket.StatusNormalClosure, "")
	testutil.Until(t, 10*time.Second, "a freed place", func() bool { return s.clients.Load() == 1 })
	if m := read(t, dial(t, base+"/ws", nil)); m.Type != "snapshot" {
		t.Fatalf("viewer in a freed place: %+v", m)
	}
}

// TestEdgeViewerCapUnderConcurrentUpgrades: browsers opening at once
// cannot pass the cap together (the place is reserved before the
// upgrade, not counted after it).
func TestEdgeViewerCapUnderConcurrentUpgrades(t *testing.T) {
	const limit, n = 3, 30
	s, base := startEdge(t, Options{MaxViewers: limit})
	url := strings.Replace(base, "http://", "ws://", 1) + "/ws"
	type result struct {
		c      *websocket.Conn
		status int
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				st := 0
				if resp != nil {
					st = resp.StatusCode
				}
				results <- result{status: st}
				return
			}
			results <- result{c: c, status: http.StatusSwitchingProtocols}
		}()
	}
	close(start)
	codes := map[int]int{}
	for range n {
		r := <-results
		codes[r.status]++
		if r.c != nil {
			t.Cleanup(func() { r.c.CloseNow() })
		}
	}
	if codes[http.StatusSwitchingProtocols] != limit || codes[http.StatusServiceUnavailable] != n-limit {
		t.Fatalf("%d viewers at once, limit %d: answers %v", n, limit, codes)
	}
	if got := s.refusedClients.Load(); got != n-limit {
		t.Fatalf("refused_clients %d, want %d", got, n-limit)
	}
}
