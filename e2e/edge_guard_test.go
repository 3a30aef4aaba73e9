package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// fromAddr is a dialer whose connections come from the loopback address
// ip (127.0.0.2…), so that they count apart from the harness's own
// connections from 127.0.0.1.
func fromAddr(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
}

// TestEdgeConnectionGuards: the public edge process, with
// --max-conns-per-ip 3 --conn-limit-exempt none --max-viewers 2, closes a
// 4th connection from one address at accept, answers a 3rd viewer 503, and
// counts both on its /metrics.
func TestEdgeConnectionGuards(t *testing.T) {
	t.Parallel()
	e := startEdgeRelay(t, "", "--max-conns-per-ip", "3", "--conn-limit-exempt", "none", "--max-viewers", "2")
	metrics := "http://" + e.http + "/metrics"

	guesser := fromAddr("127.0.0.2")
	for range 3 {
		c, err := guesser.Dial("tcp", e.http)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	over, err := guesser.Dial("tcp", e.http)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = over.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("4th connection from 127.0.0.2 with --max-conns-per-ip 3: not closed (%v)", err)
	}
	// Other addresses are served meanwhile.
	if got := promValue(t, metrics, `sysmonstm_rejected_connections_total{listener="http",reason="per_ip_limit"}`); got != 1 {
		t.Fatalf("per_ip_limit refusals counted %v, want 1", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	viewerClient := &http.Client{Transport: &http.Transport{DialContext: fromAddr("127.0.0.3").DialContext, DisableKeepAlives: true}}
	for i := range 2 {
		c, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", &websocket.DialOptions{HTTPClient: viewerClient})
		if err != nil {
			t.Fatalf("viewer %d: %v", i+1, err)
		}
		defer c.CloseNow()
	}
	_, resp, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", &websocket.DialOptions{HTTPClient: viewerClient})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("3rd viewer with --max-viewers 2: %v %v", err, resp)
	}
	if got := promValue(t, metrics, "sysmonstm_websocket_refused_clients_total"); got != 1 {
		t.Fatalf("refused viewers counted %v, want 1", got)
	}
	if got := promValue(t, metrics, "sysmonstm_websocket_clients"); got != 2 {
		t.Fatalf("viewers %v, want 2", got)
	}
}

// TestEdgeViewerMemory measures what an idle viewer costs the edge
// process (RSS), the figure behind the --max-viewers default in
// docs/edge.md.
func TestEdgeViewerMemory(t *testing.T) {
	const viewers = 1000
	e := startEdgeRelay(t, "")
	time.Sleep(500 * time.Millisecond)
	before := rssMiB(t, e.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range viewers {
		c, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", nil)
		if err != nil {
			t.Fatalf("viewer %d: %v", i+1, err)
		}
		defer c.CloseNow()
		go func() { // read the snapshot and whatever follows
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	testutil.WaitFor(t, 10*time.Second, "every viewer counted", func() error {
		if got := promValue(t, "http://"+e.http+"/metrics", "sysmonstm_websocket_clients"); got != viewers {
			return fmt.Errorf("%v viewers", got)
		}
		return nil
	})
	time.Sleep(time.Second)
	after := rssMiB(t, e.cmd.Process.Pid)
	perViewer := (after - before) * 1024 / viewers
	t.Logf("edge RSS %.1f MiB idle, %.1f MiB with %d viewers: %.1f KiB per viewer", before, after, viewers, perViewer)
	if perViewer > 64 {
		t.Errorf("%.1f KiB per idle viewer", perViewer)
	}
}
