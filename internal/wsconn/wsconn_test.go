package wsconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// serve runs Keepalive on the server side of one connection and reports
// whether it cancelled the connection within wait.
func serve(t *testing.T, clientReads bool, wait time.Duration) bool {
	t.Helper()
	cancelled := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go c.CloseRead(ctx) // the server reads nothing, but answers control frames
		done := make(chan struct{})
		go func() { Keepalive(ctx, c, func() { close(done) }, 20*time.Millisecond, 100*time.Millisecond) }()
		var was bool
		select {
		case <-done:
			was = true
		case <-time.After(wait):
		}
		// Written before the result goes out, while the client still reads.
		if err := Write(ctx, c, []byte("bye"), time.Second); err != nil && clientReads {
			t.Errorf("write to a reading client: %v", err)
		}
		cancelled <- was
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if clientReads {
		go func() { // reading answers pings with pongs
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	return <-cancelled
}

func TestKeepalive(t *testing.T) {
	if serve(t, true, 500*time.Millisecond) {
		t.Fatal("a client that answers pings was cancelled")
	}
	if !serve(t, false, 2*time.Second) {
		t.Fatal("a client that never answers pings was not cancelled")
	}
}

// Messages written through WriteBuffer arrive whole and in order, those
// that fit the buffer in one write each, and larger ones still arrive.
func TestWriteBuffer(t *testing.T) {
	msgs := []string{"a", strings.Repeat("b", 3000), strings.Repeat("c", 9000), strings.Repeat("d", 50_000), "e"}
	var writes atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(WriteBuffer(w, 16<<10), r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		for i, m := range msgs {
			before := writes.Load()
			if err := Write(r.Context(), c, []byte(m), 5*time.Second); err != nil {
				t.Error(err)
				return
			}
			if n := writes.Load() - before; len(m) < 16<<10 && n != 1 {
				t.Errorf("message %d (%d bytes): %d writes, want 1", i, len(m), n)
			}
		}
		<-r.Context().Done()
	}))
	srv.Listener = testutil.CountingListener{Listener: srv.Listener, Writes: &writes}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for i, want := range msgs {
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("message %d: %d bytes starting %.10q, want %d bytes starting %.10q", i, len(got), got, len(want), want)
		}
	}
}
