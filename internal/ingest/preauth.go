package ingest

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// TokenAuthFunc checks an agent token alone, before the machine id it will
// write as is known; nil error means a valid token. AuthFunc still decides
// once the hello names the machine.
type TokenAuthFunc func(ctx context.Context, token string) error

// Defaults of the bound on streams that authenticate by their hello.
const (
	defaultMaxPendingHellos        = 4
	defaultMaxPendingHellosPerAddr = 1
)

// rejectPreAuthLimit (label of sysmonstm_rejected_requests_total): a
// stream without a metadata token refused because too many such streams
// were reading their hello at once.
const rejectPreAuthLimit = "preauth_limit"

// admit authenticates a new stream and reads its hello. A stream whose
// metadata carries "authorization: Bearer <token>" is checked with
// TokenAuth before anything it sent is read: a bad token costs the hub no
// message. A stream without one (an agent older than the metadata token,
// or a hub without TokenAuth) reads its hello, token inside, under a
// pending-hello slot: at most MaxPendingHellos such hellos are in memory at
// once, MaxPendingHellosPerAddr per client address, and a stream finding
// none free is refused at once. It returns the hello and the token the
// stream authenticated with.
func (s *Server) admit(gs pb.Ingest_StreamServer) (*pb.Hello, string, error) {
	ctx := gs.Context()
	token, err := streamToken(ctx)
	if err != nil && s.opts.Auth != nil {
		return nil, "", s.authFailed(ctx, "", err, false)
	}
	if s.opts.Auth != nil {
		if token != "" && s.opts.TokenAuth != nil {
			if err := s.opts.TokenAuth(ctx, token); err != nil {
				return nil, "", s.authFailed(ctx, "", err, false)
			}
		} else {
			release, err := s.hellos.acquire(ctx)
			if err != nil {
				s.m.rejected.WithLabelValues(rejectPreAuthLimit).Inc()
				return nil, "", err
			}
			defer release()
		}
	}
	hello, err := s.recvHello(gs)
	if err != nil {
		return nil, "", err
	}
	machine := hello.GetMachineId()
	if err := s.validateHello(hello); err != nil {
		s.once.warn("hello:"+machine, "agent hello rejected", "machine", machine, "err", err)
		s.m.rejected.WithLabelValues(rejectMalformed).Inc()
		return nil, "", status.Error(codes.InvalidArgument, err.Error())
	}
	if s.opts.Auth == nil {
		return hello, hello.GetToken(), nil
	}
	switch ht := hello.GetToken(); {
	case token == "":
		token = ht
	case ht != "" && ht != token:
		return nil, "", s.authFailed(ctx, machine, errors.New("the hello's token differs from the stream's authorization metadata"), false)
	}
	if err := s.opts.Auth(ctx, token, machine); err != nil {
		return nil, "", s.authFailed(ctx, machine, err, false)
	}
	return hello, token, nil
}

// streamToken is the token of a stream's "authorization: Bearer <token>"
// metadata; "" when the stream has none.
func streamToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errors.New("more than one authorization metadata value")
	}
	tok, ok := auth.ParseBearer(vals[0])
	if !ok {
		return "", errors.New(`authorization metadata is not "Bearer <token>"`)
	}
	return tok, nil
}

// helloSlots bounds the streams reading a hello before their token is
// checked. mu protects n and byAddr; byAddr holds only addresses with a
// slot taken, so its size is at most max.
type helloSlots struct {
	max, maxPerAddr int

	mu     sync.Mutex
	n      int
	byAddr map[netip.Addr]int
}

func newHelloSlots(max, maxPerAddr int) *helloSlots {
	return &helloSlots{max: max, maxPerAddr: maxPerAddr, byAddr: map[netip.Addr]int{}}
}

// acquire takes a slot for the stream of ctx, or says why there is none;
// release gives it back.
func (h *helloSlots) acquire(ctx context.Context) (release func(), err error) {
	var key netip.Addr
	keyed := false
	if p, ok := peer.FromContext(ctx); ok {
		key, keyed = netguard.PeerOf(p.Addr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n >= h.max {
		return nil, status.Errorf(codes.ResourceExhausted, "%d agents are already authenticating without a token in the stream metadata; retry later, or upgrade the agent (current agents send it there)", h.n)
	}
	if keyed && h.byAddr[key] >= h.maxPerAddr {
		return nil, status.Errorf(codes.ResourceExhausted, "%d agents from %s are already authenticating without a token in the stream metadata; retry later, or upgrade the agent (current agents send it there)", h.byAddr[key], key)
	}
	h.n++
	if keyed {
		h.byAddr[key]++
	}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.n--
		if keyed {
			if h.byAddr[key] <= 1 {
				delete(h.byAddr, key)
			} else {
				h.byAddr[key]--
			}
		}
	}, nil
}

// pending is the number of slots taken (for tests).
func (h *helloSlots) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
