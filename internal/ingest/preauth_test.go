package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// The test's tokens: goodToken passes TokenAuth and Auth (for any machine
// but "other"); anything else is refused.
const goodToken = "smt_good"

// newPreauthEnv is newEnv with opts' limits and auth functions (the test
// server takes hellos up to the hub's 8 MiB message limit).
func newPreauthEnv(t *testing.T, opts Options) *env {
	t.Helper()
	return newEnv(t, t.TempDir(), nil, func(o *Options) {
		opts.Storage, opts.Live, opts.Registerer = o.Storage, o.Live, o.Registerer
		if opts.HelloTimeout == 0 {
			opts.HelloTimeout = 5 * time.Second
		}
		*o = opts
	})
}

func testAuth(_ context.Context, token, machine string) error {
	switch {
	case token != goodToken:
		return errors.New("unknown or invalid token")
	case machine == "other":
		return fmt.Errorf("%w: token is bound to another machine", ErrPermissionDenied)
	}
	return nil
}

func testTokenAuth(_ context.Context, token string) error {
	if token != goodToken {
		return errors.New("unknown or invalid token")
	}
	return nil
}

// rawCodec sends pre-encoded messages as they are, so that a test can send
// one large encoded hello on many streams without encoding it again.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// openRaw opens a stream with the given authorization metadata ("" for
// none) and sends msg, an encoded AgentMessage (nil: send nothing). It
// returns the stream's end: the first message or error from the hub.
func (e *env) openRaw(ctx context.Context, authz string, msg []byte) (*pb.HubMessage, error) {
	if authz != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
	}
	s, err := e.conn.NewStream(ctx, &pb.Ingest_ServiceDesc.Streams[0], pb.Ingest_Stream_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return nil, err
	}
	if msg != nil {
		_ = s.SendMsg(msg) // an error here (hub ended the stream) shows in RecvMsg
	}
	var m pb.HubMessage
	if err := s.RecvMsg(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

func encodeHello(t *testing.T, h *pb.Hello) []byte {
	t.Helper()
	b, err := proto.Marshal(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: h}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBogusMetadataTokenCostsNoHello reproduces issue #12's 8 MiB hellos
// with a bogus token: each stream is refused Unauthenticated before the hub
// reads its hello, so the hub allocates next to nothing of the 8 MiB per
// stream (before pre-authentication it read and decoded every one).
func TestBogusMetadataTokenCostsNoHello(t *testing.T) {
	e := newPreauthEnv(t, Options{Auth: testAuth, TokenAuth: testTokenAuth})
	const streams = 16
	// The hello passes validation (host info strings have no limit of their
	// own): only the token is wrong.
	hello := encodeHello(t, &pb.Hello{MachineId: "m", Token: "bogus", Info: &pb.HostInfo{CpuModel: strings.Repeat("x", 8<<20-1024)}})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := e.openRaw(ctx, "Bearer bogus", hello)
			errs <- err
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "token rejected") {
			t.Fatalf("bogus metadata token: %v, want Unauthenticated", err)
		}
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	sent := uint64(streams * len(hello))
	t.Logf("%d streams × %.0f MiB bogus hellos: the process allocated %.1f MiB in all (%.1f%% of what was sent)",
		streams, float64(len(hello))/(1<<20), float64(allocated)/(1<<20), 100*float64(allocated)/float64(sent))
	if allocated > sent/8 {
		t.Fatalf("allocated %d MiB for %d MiB of hellos with a bogus token: the hellos were read", allocated>>20, sent>>20)
	}
	if got := promtest.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectUnauthenticated)); got != streams {
		t.Fatalf("rejected{unauthenticated} = %v, want %d", got, streams)
	}
}

// TestMetadataToken: a stream authenticates with its metadata token (the
// hello's may be empty or the same); a different hello token, a malformed
// header, or a token not valid for the hello's machine is refused.
func TestMetadataToken(t *testing.T) {
	e := newPreauthEnv(t, Options{Auth: testAuth, TokenAuth: testTokenAuth})
	ctx := t.Context()
	f := func(authz, helloToken, machine string, want codes.Code, wantMsg string) {
		t.Helper()
		m, err := e.openRaw(ctx, authz, encodeHello(t, &pb.Hello{MachineId: machine, Token: helloToken}))
		if want == codes.OK {
			if err != nil || m.GetWelcome() == nil {
				t.Errorf("authorization %q, hello token %q: %v, want a welcome", authz, helloToken, err)
			}
			return
		}
		if status.Code(err) != want || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("authorization %q, hello token %q, machine %q: %v, want %s %q", authz, helloToken, machine, err, want, wantMsg)
		}
	}
	f("Bearer "+goodToken, "", "m1", codes.OK, "")
	f("bearer "+goodToken, goodToken, "m2", codes.OK, "")
	f("", goodToken, "m3", codes.OK, "") // an older agent: the hello's token
	f("Bearer "+goodToken, "smt_other", "m4", codes.Unauthenticated, "differs from the stream's authorization metadata")
	f("Basic dXNlcjpwdw==", goodToken, "m5", codes.Unauthenticated, `not "Bearer <token>"`)
	f("Bearer "+goodToken, "", "other", codes.PermissionDenied, "--machine other")
	f("", "", "m6", codes.Unauthenticated, "token rejected")
}

// TestHellosWithoutMetadataTokenAreBounded: streams without a metadata token
// read their hello under a bounded number of slots, per client address and
// in all; one more is refused at once (ResourceExhausted, counted), while a
// stream with a metadata token needs no slot.
func TestHellosWithoutMetadataTokenAreBounded(t *testing.T) {
	e := newPreauthEnv(t, Options{Auth: testAuth, TokenAuth: testTokenAuth, MaxPendingHellos: 4, MaxPendingHellosPerAddr: 2})
	// Two streams that never send their hello hold this address's slots.
	holdCtx, release := context.WithCancel(t.Context())
	held := make(chan error, 2)
	for range 2 {
		go func() { _, err := e.openRaw(holdCtx, "", nil); held <- err }()
	}
	testutil.Until(t, 5*time.Second, "2 hello slots taken", func() bool { return e.srv.hellos.pending() >= 2 })
	began := time.Now()
	_, err := e.openRaw(t.Context(), "", encodeHello(t, &pb.Hello{MachineId: "m", Token: goodToken}))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "upgrade the agent") {
		t.Fatalf("third stream without a metadata token from one address: %v, want ResourceExhausted", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("refusal took %s: the stream waited", took)
	}
	if got := promtest.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectPreAuthLimit)); got != 1 {
		t.Fatalf("rejected{preauth_limit} = %v, want 1", got)
	}
	if m, err := e.openRaw(t.Context(), "Bearer "+goodToken, encodeHello(t, &pb.Hello{MachineId: "m"})); err != nil || m.GetWelcome() == nil {
		t.Fatalf("stream with a metadata token while the slots are taken: %v", err)
	}
	release()
	for range 2 {
		<-held
	}
	testutil.Until(t, 5*time.Second, "the hello slots freed after their streams ended", func() bool { return e.srv.hellos.pending() == 0 })
	if m, err := e.openRaw(t.Context(), "", encodeHello(t, &pb.Hello{MachineId: "m2", Token: goodToken})); err != nil || m.GetWelcome() == nil {
		t.Fatalf("stream without a metadata token once slots are free: %v", err)
	}
}

// TestHelloSlots: the total and per-address bounds, release, and the
// IPv6 /64 grouping.
func TestHelloSlots(t *testing.T) {
	h := newHelloSlots(3, 2)
	from := func(ip string) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}})
	}
	take := func(ip string) func() {
		t.Helper()
		rel, err := h.acquire(from(ip))
		if err != nil {
			t.Fatalf("acquire from %s: %v", ip, err)
		}
		return rel
	}
	refused := func(ip string) {
		t.Helper()
		if _, err := h.acquire(from(ip)); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("acquire from %s: %v, want ResourceExhausted", ip, err)
		}
	}
	a1 := take("2001:db8::1")
	take("2001:db8::2")
	refused("2001:db8::3") // same /64
	take("192.0.2.1")
	refused("192.0.2.2") // 3 in all
	a1()
	take("192.0.2.2")
	if h.pending() != 3 || len(h.byAddr) != 3 {
		t.Fatalf("pending %d, addresses %d; want 3 and 3", h.pending(), len(h.byAddr))
	}
}

// FuzzStreamToken: any authorization metadata value gives a token without
// blanks or an error, never a panic.
func FuzzStreamToken(f *testing.F) {
	for _, s := range []string{"Bearer smt_abc", "bearer  x ", "Basic dXNlcg==", "Bearer", "Bearer a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", v))
		tok, err := streamToken(ctx)
		if err == nil && (tok == "" || strings.ContainsAny(tok, " \t")) {
			t.Fatalf("streamToken(%q) = %q without an error", v, tok)
		}
	})
}
