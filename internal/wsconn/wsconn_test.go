package wsconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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
