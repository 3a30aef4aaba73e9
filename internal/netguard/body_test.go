package netguard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testBodyTimeout = 300 * time.Millisecond

// bodyServer serves h under BodyTimeout on loopback, as the hub does: a
// plain http.Server with a header timeout and no ReadTimeout.
func bodyServer(t *testing.T, h http.Handler, m *Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           BodyTimeout(h, BodyOptions{Timeout: testBodyTimeout, Metrics: m}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// readAll answers 200 with the body's length, or 400 with the read error.
func readAll(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d", len(b))
}

// TestSlowBodyIsCut: a body dripping a byte every 100 ms is cut at the
// deadline: the handler's read fails, the client gets the error answer and
// the connection is closed; it is counted.
func TestSlowBodyIsCut(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	addr := bodyServer(t, http.HandlerFunc(readAll), m)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	fmt.Fprintf(c, "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	closed := make(chan error, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			closed <- err
			return
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "request body not received within") {
			closed <- fmt.Errorf("answer %d %q", resp.StatusCode, b)
			return
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			closed <- fmt.Errorf("connection still open after the answer")
			return
		}
		closed <- nil
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			if took > 3*time.Second {
				t.Fatalf("slow body cut after %s, deadline %s", took, testBodyTimeout)
			}
			if got := testutil.ToFloat64(m.rejected.WithLabelValues("http", ReasonBodyTimeout)); got != 1 {
				t.Fatalf("body_timeout counted %v times, want 1", got)
			}
			t.Logf("slow body cut after %s (deadline %s)", took.Round(time.Millisecond), testBodyTimeout)
			return
		case <-tick.C:
			if _, err := c.Write([]byte("x")); err != nil {
				continue // the server closed; the reader reports
			}
		}
	}
}

// TestLongAnswerAfterBodyIsNotCut: once the body is read to its end, the
// deadline is gone: a handler answering after several deadlines keeps its
// request context, and the connection serves the next request.
func TestLongAnswerAfterBodyIsNotCut(t *testing.T) {
	addr := bodyServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			return // the server gave up on the request: no answer
		case <-time.After(3 * testBodyTimeout):
		}
		fmt.Fprint(w, "done")
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "POST /export HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "done" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, b)
		}
	}
}

// TestWebSocketOutlivesBodyTimeout: a WebSocket (a GET without a body)
// gets no deadline and still talks after several.
func TestWebSocketOutlivesBodyTimeout(t *testing.T) {
	addr := bodyServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		time.Sleep(2 * testBodyTimeout)
		msg := fmt.Sprintf("ping %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write after %d deadlines: %v", 2*(i+1), err)
		}
		_, b, err := c.Read(ctx)
		if err != nil || string(b) != msg {
			t.Fatalf("echo after %d deadlines: %q, %v", 2*(i+1), b, err)
		}
	}
}
