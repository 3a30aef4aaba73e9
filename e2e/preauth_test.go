package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// peakRSSMiB is a process's peak resident memory (VmHWM).
func peakRSSMiB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// rawCodec sends pre-encoded messages as they are: one large hello is
// encoded once and sent on every stream.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// dialFrom opens a gRPC connection to addr from the loopback source
// address src (127.0.0.0/8 is all this machine's).
func dialFrom(t *testing.T, addr, src string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return d.DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPreAuthBogusHellosDoNotCostMemory reproduces issue #12: 250 streams
// each sending an 8 MiB hello with a bogus token (in the stream metadata,
// as current agents send it), then 250 more without metadata (as an older
// agent would) from 8 addresses. The hub refuses the first before reading
// their hello and reads the others only a few at a time, so its peak
// resident memory grows by far less than the hellos sent (before: 2.7 GB).
func TestPreAuthBogusHellosDoNotCostMemory(t *testing.T) {
	hub := startHub(t, t.TempDir(), "", "")
	time.Sleep(2 * time.Second) // let start-up allocations settle
	base := peakRSSMiB(t, hub.cmd.Process.Pid)
	hello, err := proto.Marshal(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{
		MachineId: "bogus", Token: "smt_aaaaaaaaaaaaaaaa_bogus",
		Info: &pb.HostInfo{CpuModel: strings.Repeat("x", 8<<20-1024)}, // valid, only large
	}}})
	if err != nil {
		t.Fatal(err)
	}
	attack := func(conns []*grpc.ClientConn, streams int, authz string) (refused int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range streams {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if authz != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
				}
				s, err := conns[i%len(conns)].NewStream(ctx, &pb.Ingest_ServiceDesc.Streams[0], pb.Ingest_Stream_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
				if err == nil {
					_ = s.SendMsg(hello)
					var m pb.HubMessage
					err = s.RecvMsg(&m)
				}
				if err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return refused
	}
	var withMD, withoutMD []*grpc.ClientConn
	for range 10 {
		withMD = append(withMD, dialFrom(t, hub.grpc, "127.0.0.1"))
	}
	for i := range 8 {
		withoutMD = append(withoutMD, dialFrom(t, hub.grpc, fmt.Sprintf("127.0.0.%d", 10+i)))
	}
	began := time.Now()
	if n := attack(withMD, 250, "Bearer smt_aaaaaaaaaaaaaaaa_bogus"); n != 250 {
		t.Fatalf("%d of 250 bogus streams refused", n)
	}
	peak1 := peakRSSMiB(t, hub.cmd.Process.Pid)
	if n := attack(withoutMD, 250, ""); n != 250 {
		t.Fatalf("%d of 250 bogus streams without metadata refused", n)
	}
	peak2 := peakRSSMiB(t, hub.cmd.Process.Pid)
	t.Logf("hub peak RSS %.0f MiB at start; %.0f MiB after 250 × 8 MiB bogus hellos with a metadata token; %.0f MiB after 250 more without (%s)",
		base, peak1, peak2, time.Since(began).Round(time.Millisecond))
	if peak1-base > 64 {
		t.Errorf("250 bogus hellos with a metadata token grew the hub's peak RSS by %.0f MiB", peak1-base)
	}
	if peak2-base > 256 {
		t.Errorf("250 bogus hellos without a metadata token grew the hub's peak RSS by %.0f MiB", peak2-base)
	}
	// A real agent still gets in.
	startAgent(t, hub, "after-attack")
	testutil.WaitFor(t, 20*time.Second, "agent after the attack online", func() error {
		var ms []machine
		getJSON(t, "http://"+hub.http+"/api/machines", &ms)
		for _, m := range ms {
			if m.ID == "after-attack" && m.Online {
				return nil
			}
		}
		return fmt.Errorf("not online")
	})
}

// slowBody sends a POST to path whose body arrives a byte every 200 ms
// and reports how long until the hub closed the connection (at most
// limit; then ok is false).
func slowBody(t *testing.T, addr, path string, limit time.Duration, hdr ...string) (took time.Duration, ok bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	req := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n{"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = c.SetReadDeadline(began.Add(limit))
		_, _ = io.Copy(io.Discard, bufio.NewReader(c)) // any answer, then EOF
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			took = time.Since(began)
			return took, took < limit
		case <-tick.C:
			_, _ = c.Write([]byte(" "))
		}
	}
}

// TestSlowBodiesAreCut: request bodies dripping a byte every 200 ms (an
// ingest with a valid token, a login) are cut at --request-body-timeout
// and counted, while a WebSocket lives on past it.
func TestSlowBodiesAreCut(t *testing.T) {
	hub := startHub(t, t.TempDir(), "", "", "--request-body-timeout", "1s")
	ws, ctx := dialHubWS(t, hub, 30*time.Second)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for _, c := range []struct {
		path string
		hdr  []string
	}{
		{"/api/v1/ingest", []string{"Authorization", "Bearer " + hub.token}},
		{"/api/auth/login", nil},
	} {
		wg.Go(func() {
			took, ok := slowBody(t, hub.http, c.path, 8*time.Second, c.hdr...)
			if !ok {
				t.Errorf("slow body to %s still open after %s", c.path, took.Round(time.Millisecond))
				return
			}
			if took < time.Second {
				t.Errorf("slow body to %s closed after %s, before the 1s deadline", c.path, took)
			}
			t.Logf("slow body to %s closed after %s", c.path, took.Round(time.Millisecond))
		})
	}
	wg.Wait()
	if v := promValue(t, "http://"+hub.http+"/metrics", `sysmonstm_rejected_connections_total{listener="http",reason="body_timeout"}`); v != 2 {
		t.Errorf("body_timeout counted %v times, want 2", v)
	}
	// The WebSocket, open since before the slow bodies, still answers.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ws.Ping(pctx); err != nil {
		t.Fatalf("WebSocket after the body deadline: %v", err)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")
}

// TestConnectionsPerAddressAreCapped: with --max-conns-per-ip 3 (and no
// exemption, as if the clients were remote) a fourth connection from one
// address to either listener is closed at once and counted; other
// addresses are not affected.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "", "--max-conns-per-ip", "3", "--conn-limit-exempt", "")
	dial := func(addr string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedAtOnce reports whether the hub closes c within a second
	// without an answer (an open connection just waits for a request).
	closedAtOnce := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return err != nil
	}
	for _, l := range []struct{ name, addr string }{{"http", hub.http}, {"grpc", hub.grpc}} {
		var held []net.Conn
		for range 3 {
			held = append(held, dial(l.addr))
		}
		for i, c := range held {
			if closedAtOnce(c) {
				t.Fatalf("%s: connection %d of 3 closed", l.name, i+1)
			}
		}
		if !closedAtOnce(dial(l.addr)) {
			t.Fatalf("%s: a fourth connection from one address stayed open with --max-conns-per-ip 3", l.name)
		}
		if v := promValue(t, "http://"+hub.http+"/metrics", fmt.Sprintf(`sysmonstm_rejected_connections_total{listener=%q,reason="per_ip_limit"}`, l.name)); v != 1 {
			t.Errorf("%s: per_ip_limit counted %v times, want 1", l.name, v)
		}
		for _, c := range held {
			c.Close()
		}
	}
	// 127.0.0.1 (the test's own requests above) was never limited.
	if code, err := httpGet("http://" + hub.http + "/health"); err != nil || code != http.StatusOK {
		t.Fatalf("/health from another address: %d %v", code, err)
	}
}
