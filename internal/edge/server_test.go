package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// startEdge runs a real edge on a loopback port until the test ends.
func startEdge(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.ListenHTTP == "" {
		opts.ListenHTTP = "127.0.0.1:0"
	}
	if opts.Key == "" {
		opts.Key = testKey
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge Run: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

// dial opens a WebSocket to the edge; header may carry the key.
func dial(t *testing.T, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1), &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(MaxMessageBytes)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func keyHeader(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}}
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// browserMsg is any message of the browser stream.
type browserMsg struct {
	Type      string          `json:"type"`
	Machine   json.RawMessage `json:"machine"`
	Machines  []apiMachine    `json:"machines"`
	Ts        int64           `json:"ts"`
	Publisher bool            `json:"publisher"`
	Metrics   []wireValue     `json:"metrics"`
}

func read(t *testing.T, c *websocket.Conn) browserMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m browserMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// readUntil reads browser messages until ok accepts one.
func readUntil(t *testing.T, c *websocket.Conn, what string, ok func(browserMsg) bool) browserMsg {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := read(t, c); ok(m) {
			return m
		}
	}
	t.Fatalf("no %s within 5s", what)
	return browserMsg{}
}

func TestNewRefusesToRunOpen(t *testing.T) {
	f := func(opts Options, want string) {
		t.Helper()
		opts.ListenHTTP = "127.0.0.1:0"
		s, err := New(opts)
		if err == nil {
			s.Close()
			t.Fatalf("%+v: started", opts)
		}
		if strings.Contains(err.Error(), "--") {
			t.Errorf("error %q names a flag; the command layer does that", err)
		}
		if got := config.Flagged(err).Error(); !strings.Contains(got, want) {
			t.Fatalf("error %q lacks %q", got, want)
		}
	}
	f(Options{}, "no publish key configured: set --key")
	f(Options{Key: "short"}, "--key is 5 characters, need at least 16")
	f(Options{Key: testKey, TLSCert: "x.pem"}, "--tls-cert and --tls-key go together")
}

func TestPublishNeedsKey(t *testing.T) {
	s, base := startEdge(t, Options{})
	f := func(header string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/publish", nil)
		for _, h := range []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="} {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error":"missing or wrong publish key`) ||
			resp.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("Authorization %q: %d %s %v", header, resp.StatusCode, body, resp.Header)
		}
	}
	f("")
	f("Bearer ")
	f("Bearer wrong-key-0123456789abcdef")
	f("Bearer " + testKey + "x")
	f("Bearer " + testKey[:len(testKey)-1])
	f(testKey) // no scheme
	f("Basic " + testKey)
	if n := s.unauthorized.Load(); n != 7 {
		t.Fatalf("unauthorized = %d, want 7", n)
	}
	if s.state.Publisher() {
		t.Fatal("a refused publisher counts as connected")
	}

	c := dial(t, base+"/api/publish", keyHeader(testKey))
	send(t, c, metricsMsg("web-1", ts0, val("load1", 1)))
	testutil.Until(t, 10*time.Second, "machine published", func() bool { return s.state.Len() == 1 })
	if !s.state.Publisher() {
		t.Fatal("publisher not connected")
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	_, base := startEdge(t, Options{})
	f := func(method, path string, status int, ctype string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != status || !strings.HasPrefix(h.Get("Content-Type"), ctype) {
			t.Errorf("%s %s: %d %s, want %d %s", method, path, resp.StatusCode, h.Get("Content-Type"), status, ctype)
		}
		if h.Get("Content-Security-Policy") != "default-src 'self'; frame-ancestors 'none'" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: headers %v", method, path, h)
		}
		if status >= 400 && !json.Valid(body) {
			t.Errorf("%s %s: error body %q is not JSON", method, path, body)
		}
	}
	f("GET", "/", 200, "text/html")
	f("GET", "/ui/edge.js", 200, "text/javascript")
	f("GET", "/ui/dom.js", 200, "text/javascript")
	f("GET", "/ui/edge.css", 200, "text/css")
	f("GET", "/ui/index.html", 404, "application/json")
	f("GET", "/ui/../server.go", 404, "application/json")
	f("GET", "/api/machines", 200, "application/json")
	f("GET", "/api/machines/nope", 404, "application/json")
	f("GET", "/health", 200, "application/json")
	f("GET", "/machines", 404, "application/json")
	f("POST", "/api/machines", 405, "application/json")
	f("POST", "/api/publish", 405, "application/json")
	f("GET", "/api/publish", 401, "application/json")
	f("GET", "/ws", 426, "application/json") // not an upgrade

	// The page and its scripts: no inline script or style anywhere.
	for _, name := range []string{"index.html", "edge.js", "dom.js"} {
		b := string(uiAssets[name].body)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "style=", "onclick", "onerror", "<script>"} {
			if strings.Contains(b, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestBrowserStream(t *testing.T) {
	s, base := startEdge(t, Options{})
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	send(t, pub, fmt.Sprintf(`{"type":"snapshot","part":0,"last":true,"machines":[{"id":"web-1","labels":{"env":"<b>prod</b>"},"online":true,"metrics":[{"name":"cpu_usage_percent","labels":{"cpu":"total"},"value":5,"ts":%d}]}]}`, ts0))
	testutil.Until(t, 10*time.Second, "snapshot applied", func() bool { return s.state.Len() == 1 })

	b := dial(t, base+"/ws", http.Header{"Origin": {"https://status.example.com"}}) // behind a proxy
	snap := read(t, b)
	if snap.Type != "snapshot" || !snap.Publisher || len(snap.Machines) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	m := snap.Machines[0]
	if m.ID != "web-1" || !m.Online || m.Labels["env"] != "<b>prod</b>" || len(m.Spark["cpu"]) != 1 || m.Spark["cpu"][0][1] != 5 {
		t.Fatalf("snapshot machine %+v", m)
	}

	// A browser cannot publish: what it sends is ignored, and the stream
	// goes on.
	send(t, b, metricsMsg("evil", ts0, val("load1", 1)))
	send(t, b, `{"subscribe":["x"]}`)
	send(t, pub, metricsMsg("web-1", ts0+1000, val("load1", 0.25)))
	got := readUntil(t, b, "metrics of web-1", func(m browserMsg) bool { return m.Type == "metrics" })
	if string(got.Machine) != `"web-1"` || got.Ts != ts0+1000 || len(got.Metrics) != 1 || *got.Metrics[0].Value != 0.25 {
		t.Fatalf("metrics %+v", got)
	}
	if s.state.Len() != 1 {
		t.Fatal("a browser message created a machine")
	}

	// The publisher goes: browsers hear it, and nothing shows online.
	pub.Close(websocket.StatusNormalClosure, "")
	st := readUntil(t, b, "status", func(m browserMsg) bool { return m.Type == "status" })
	if st.Publisher {
		t.Fatal("status says the publisher is there")
	}
	var list []apiMachine
	getJSON(t, base+"/api/machines", &list)
	if len(list) != 1 || list[0].Online {
		t.Fatalf("machines without a publisher: %+v", list)
	}
	var one apiMachine
	getJSON(t, base+"/api/machines/web-1", &one)
	if len(one.Metrics) != 2 || len(one.Metrics[0].Points) != 1 {
		t.Fatalf("machine with windows: %+v", one)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestBadPublishMessagesAreDroppedNotFatal(t *testing.T) {
	s, base := startEdge(t, Options{})
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	send(t, pub, `{"type":`)
	send(t, pub, `{"type":"metrics","machine":"a","ts":1,"metrics":[]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	send(t, pub, metricsMsg("ok", ts0, val("load1", 1)))
	testutil.Until(t, 10*time.Second, "valid message after bad ones", func() bool { return s.state.Len() == 1 })
	if s.rejected.Load() != 3 || s.accepted.Load() != 1 {
		t.Fatalf("rejected %d accepted %d", s.rejected.Load(), s.accepted.Load())
	}

	// Past the read limit the connection ends (the hub never sends that).
	big := `{"type":"metrics","machine":"a","pad":"` + strings.Repeat("x", MaxMessageBytes) + `"}`
	_ = pub.Write(ctx, websocket.MessageText, []byte(big))
	testutil.Until(t, 10*time.Second, "oversized message ends the publisher", func() bool { return !s.state.Publisher() })
}

func TestNewPublisherReplacesOld(t *testing.T) {
	s, base := startEdge(t, Options{})
	first := dial(t, base+"/api/publish", keyHeader(testKey))
	testutil.Until(t, 10*time.Second, "first publisher", s.state.Publisher)
	second := dial(t, base+"/api/publish", keyHeader(testKey))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := first.Read(ctx)
	if websocket.CloseStatus(err) != StatusReplaced {
		t.Fatalf("first publisher: %v, want close %d", err, StatusReplaced)
	}
	send(t, second, metricsMsg("from-second", ts0, val("load1", 1)))
	testutil.Until(t, 10*time.Second, "second publisher's data", func() bool { return s.state.Len() == 1 })
	if !s.state.Publisher() || s.publishers.Load() != 2 {
		t.Fatalf("publisher %v connections %d", s.state.Publisher(), s.publishers.Load())
	}
}

// TestSlowBrowserIsDropped: a browser that stops reading is cut after the
// write timeout; the publisher and a reading browser go on undisturbed.
func TestSlowBrowserIsDropped(t *testing.T) {
	s, base := startEdge(t, Options{WriteTimeout: 200 * time.Millisecond, WSQueue: 8})
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	stuck := dial(t, base+"/ws", nil) // never read
	reader := dial(t, base+"/ws", nil)
	read(t, reader) // snapshot
	_ = stuck

	// Values with long labels, for many machines: megabytes per second.
	pad := strings.Repeat("p", MaxLabelValueBytes)
	var vals []string
	for i := 0; i < MaxSeriesPerMachine; i++ {
		vals = append(vals, fmt.Sprintf(`{"name":"m","labels":{"i":"%d","pad":%q},"value":%d}`, i, pad, i))
	}
	start := time.Now()
	var lastTs int64
	var readerTs atomic.Int64 // newest metrics ts the reader got from m0
	go func() {
		for {
			_, b, err := reader.Read(context.Background())
			if err != nil {
				return
			}
			var m struct {
				Type, Machine string
				Ts            int64
			}
			if json.Unmarshal(b, &m) == nil && m.Type == "metrics" && m.Machine == "m0" {
				readerTs.Store(m.Ts)
			}
		}
	}()
	for i := 0; s.droppedClients.Load() == 0; i++ {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("stuck browser not dropped after %d messages", i)
		}
		lastTs = ts0 + int64(i)*1000
		send(t, pub, metricsMsg(fmt.Sprint("m", i%20), lastTs, vals...))
	}
	t.Logf("stuck browser dropped after %s", time.Since(start).Round(time.Millisecond))
	// The reader still gets the newest values.
	send(t, pub, metricsMsg("m0", lastTs+1000, vals[0]))
	testutil.Until(t, 10*time.Second, "the reader gets the newest values", func() bool { return readerTs.Load() == lastTs+1000 })
	if n := s.clients.Load(); n != 1 || s.droppedClients.Load() != 1 {
		t.Fatalf("%d browsers connected, %d dropped; want the reader only", n, s.droppedClients.Load())
	}
}

func TestShutdownClosesStreams(t *testing.T) {
	s, err := New(Options{ListenHTTP: "127.0.0.1:0", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr()
	b := dial(t, base+"/ws", nil)
	read(t, b)
	pub := dial(t, base+"/api/publish", keyHeader(testKey))
	testutil.Until(t, 10*time.Second, "publisher", s.state.Publisher)
	cancel()
	for _, c := range []*websocket.Conn{b, pub} {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		for err == nil {
			_, _, err = c.Read(rctx)
		}
		rcancel()
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("close: %v, want 1001", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
