package agent

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// testHub is a minimal hub for tests: it checks the protocol rules an agent
// must follow, keeps what it "stored" across server restarts (like a WAL
// would) and acknowledges every batch.
type testHub struct {
	sysmonstmv1.UnimplementedIngestServer

	mu         sync.Mutex
	hellos     []*sysmonstmv1.Hello
	authz      [][]string                    // each stream's "authorization" metadata
	stored     map[uint64]*sysmonstmv1.Batch // by seq, first copy wins
	lastSeq    uint64                        // highest contiguous stored seq
	received   int                           // batches received, duplicates included
	violations []string
	defs       map[uint32]*sysmonstmv1.SeriesDef // every def ever received
	defsSent   int                               // defs received in all streams
	streams    int
	token      string // accepted token; "" accepts any
	interval   int64  // interval_ms sent in welcome
	noAck      bool   // store batches but do not ack them
	discard    bool   // lose batches: neither store nor ack them
	shared     bool   // several agents stream here: welcome.last_seq is always 0
	settings   chan *sysmonstmv1.Settings
	snapshots  []*sysmonstmv1.ProcessSnapshot // every snapshot received
}

func newTestHub() *testHub {
	return &testHub{
		stored:   make(map[uint64]*sysmonstmv1.Batch),
		defs:     make(map[uint32]*sysmonstmv1.SeriesDef),
		settings: make(chan *sysmonstmv1.Settings, 4),
	}
}

func (h *testHub) violate(format string, args ...any) {
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
}

func (h *testHub) Stream(stream grpc.BidiStreamingServer[sysmonstmv1.AgentMessage, sysmonstmv1.HubMessage]) error {
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := msg.GetHello()
	h.mu.Lock()
	if hello == nil {
		h.violate("first message is %T, not hello", msg.GetMsg())
		h.mu.Unlock()
		return status.Error(codes.InvalidArgument, "hello first")
	}
	h.hellos = append(h.hellos, hello)
	md, _ := metadata.FromIncomingContext(stream.Context())
	h.authz = append(h.authz, md.Get("authorization"))
	if h.token != "" && hello.GetToken() != h.token {
		h.mu.Unlock()
		return status.Error(codes.Unauthenticated, "unknown token")
	}
	h.streams++
	welcomeSeq := h.lastSeq
	if h.shared {
		welcomeSeq = 0
	}
	welcome := &sysmonstmv1.Welcome{LastSeq: welcomeSeq, Settings: &sysmonstmv1.Settings{IntervalMs: h.interval}}
	h.mu.Unlock()

	var sendMu sync.Mutex
	send := func(m *sysmonstmv1.HubMessage) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	if err := send(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Welcome{Welcome: welcome}}); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-h.settings:
				_ = send(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Settings{Settings: s}})
			}
		}
	}()

	defined := map[uint32]bool{}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		h.mu.Lock()
		switch m := msg.GetMsg().(type) {
		case *sysmonstmv1.AgentMessage_Series:
			for _, d := range m.Series.GetSeries() {
				if defined[d.GetId()] {
					h.violate("series %d defined twice on one stream", d.GetId())
				}
				defined[d.GetId()] = true
				h.defs[d.GetId()] = d
				h.defsSent++
			}
		case *sysmonstmv1.AgentMessage_Batch:
			b := m.Batch
			h.received++
			for _, id := range b.GetSeriesIds() {
				if !defined[id] {
					h.violate("batch %d uses series %d before its definition", b.GetSeq(), id)
				}
			}
			if b.GetSeq() <= welcomeSeq {
				h.violate("batch %d resent although welcome.last_seq was %d", b.GetSeq(), welcomeSeq)
			}
			if h.discard {
				h.mu.Unlock()
				continue
			}
			if _, dup := h.stored[b.GetSeq()]; !dup {
				h.stored[b.GetSeq()] = b
			}
			for h.stored[h.lastSeq+1] != nil {
				h.lastSeq++
			}
			ack := b.GetSeq()
			noAck := h.noAck
			h.mu.Unlock()
			if !noAck {
				if err := send(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Ack{Ack: &sysmonstmv1.Ack{Seq: ack}}}); err != nil {
					return err
				}
			}
			continue
		case *sysmonstmv1.AgentMessage_Processes:
			h.snapshots = append(h.snapshots, m.Processes)
		default:
			h.violate("unexpected message %T", m)
		}
		h.mu.Unlock()
	}
}

// seqs returns the stored seqs in order.
func (h *testHub) seqs() (first, last uint64, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.stored {
		if first == 0 || s < first {
			first = s
		}
		last = max(last, s)
	}
	return first, last, len(h.stored)
}

func (h *testHub) checkViolations(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.violations {
		t.Error("protocol violation:", v)
	}
}

// server runs a testHub on a fixed address and can be stopped and restarted.
type server struct {
	t    *testing.T
	hub  *testHub
	addr string
	srv  *grpc.Server
	opts []grpc.ServerOption // e.g. TLS credentials
}

// startServer serves hub on addr ("127.0.0.1:0" picks a port).
func startServer(t *testing.T, hub *testHub, addr string) *server {
	t.Helper()
	s := &server{t: t, hub: hub, addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the old socket may linger briefly after a stop
		if lis, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.addr = lis.Addr().String()
	s.srv = grpc.NewServer(s.opts...)
	sysmonstmv1.RegisterIngestServer(s.srv, s.hub)
	go func() { _ = s.srv.Serve(lis) }()
}

func (s *server) stop() {
	if s.srv != nil {
		s.srv.Stop()
		s.srv = nil
	}
}

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
