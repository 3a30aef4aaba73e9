// Package ingest owns the hub's intake: the agents' gRPC streams and the JSON
// HTTP ingest. It validates what arrives, drops duplicates by sequence number,
// writes samples to storage in group commits, acknowledges a batch only after
// its commit (so it is in the write-ahead log), and feeds the live state.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Storage is what ingest needs of the store; *store.Store implements it.
type Storage interface {
	// Appender returns a raw-tier appender whose Commit makes samples durable.
	Appender(ctx context.Context) store.Appender
	// NoteWritten tells the store a machine's data is complete up to maxTs (ms).
	NoteWritten(machine string, maxTs int64)
	// NewestSamples calls fn with the newest sample (t in ms) in [mint,
	// maxt] of every series named name; Restore reads the last stored seq
	// of each agent with it.
	NewestSamples(ctx context.Context, name string, mint, maxt int64, fn func(ls labels.Labels, t int64, v float64)) error
	// MachineSeries calls fn with the labels of every series of a machine
	// with data in [mint, maxt]; Restore counts them against the series
	// caps.
	MachineSeries(ctx context.Context, mint, maxt int64, fn func(ls labels.Labels)) error
}

// Live is what ingest needs of the live state.
type Live interface {
	Connect(info live.MachineInfo)
	Disconnect(id string)
	// Update takes one accepted batch; series and values are reused for
	// later batches once it returns, so it must not keep them.
	Update(id string, ts int64, series []*live.Series, values []float64)
	SetProcesses(id string, ts int64, procs []live.Process)
	Known(id string) bool
}

// AuthFunc checks an agent's token for a machine id; nil error admits it.
// An error wrapping ErrPermissionDenied means the token is valid but not
// for this machine (gRPC PermissionDenied, HTTP 403); any other error
// means no valid token (gRPC Unauthenticated, HTTP 401).
type AuthFunc func(ctx context.Context, token, machine string) error

// ErrPermissionDenied is wrapped by AuthFunc errors for a valid token that
// may not write as the machine id.
var ErrPermissionDenied = errors.New("permission denied")

// Options configure a Server.
type Options struct {
	Storage Storage
	Live    Live
	// Bus, when set, takes the agents' batches, HTTP ingest and
	// remote-write samples instead of Storage (see Bus); nil: one hub,
	// everything committed to Storage.
	Bus Bus
	// Auth checks tokens; nil admits every agent. It is asked again every
	// AuthRecheck while a stream is open, so a revoked or expired token's
	// stream ends within about that long.
	Auth AuthFunc
	// AuthRecheck is the period of those re-checks; default 2s.
	AuthRecheck time.Duration
	// TokenAuth, with Auth, checks a token on its own before anything sent
	// with it is read: a stream's "authorization: Bearer" metadata before
	// its first message (see admit), an HTTP ingest token before the body.
	// nil: every stream authenticates by its hello, under the pending-hello
	// bound, and HTTP ingest reads the body before Auth checks the token.
	TokenAuth TokenAuthFunc
	// MaxPendingHellos bounds the streams, with Auth, reading their hello
	// before their token is checked (no metadata token): at most this many
	// at once (default 4) and MaxPendingHellosPerAddr (default 1) from one
	// client address; more are refused with ResourceExhausted.
	MaxPendingHellos        int
	MaxPendingHellosPerAddr int
	// Interval is the collection interval sent to agents in Welcome; 0 keeps
	// each agent's own.
	Interval time.Duration
	Limits   metric.Limits // zero value = metric.DefaultLimits
	// MaxSeriesPerStream bounds one stream's series table and the distinct
	// active series of one machine over all streams and HTTP ingest;
	// default 100,000.
	MaxSeriesPerStream int
	// MaxActiveSeries bounds the distinct active series of all machines;
	// default 2,000,000.
	MaxActiveSeries int
	// SeriesIdle is how long a series keeps counting against the series
	// caps after its last HTTP write or the end of the last stream that
	// defined it; default 3h (the storage head's span, so the caps bound
	// the series held in memory).
	SeriesIdle time.Duration
	// MaxFuture rejects samples stamped further ahead than this; default 5m.
	MaxFuture time.Duration
	// MaxAge rejects samples older than this; default 2h (the store's
	// out-of-order window).
	MaxAge time.Duration
	// Writers is the number of commit goroutines; default 2.
	Writers int
	// HelloTimeout bounds the wait for an agent's hello; default 10s.
	HelloTimeout time.Duration
	// MaxBodyBytes bounds an HTTP ingest body and a remote-write body (as
	// sent, compressed; decompressed up to 8 times that); default 4 MiB.
	MaxBodyBytes int64
	// RemoteWriteMachineLabel is the label whose value groups
	// remote-written series into dashboard machines (and series caps);
	// default "instance".
	RemoteWriteMachineLabel string
	// RemoteWriteConcurrency bounds the remote-write requests decoded and
	// stored at once (a request waits up to 5 s for a slot, then gets 429);
	// default 16.
	RemoteWriteConcurrency int
	Logger                 *slog.Logger
	Registerer             prometheus.Registerer
	Now                    func() time.Time

	// MaxMemory, when above 0, is the hub's memory budget in bytes: while
	// the memory it cannot free passes MemoryHighWater of it, new series
	// are refused (sysmonstm_refused_series_total{limit="memory"}) and
	// existing series keep flowing (see memGuard). 0: no memory limit.
	MaxMemory int64
	// MemoryReserve, when set, returns bytes the hub will need for what it
	// has already admitted (the rollup batch of a pass over its
	// raw series); the memory guard counts them as in use. nil: none.
	MemoryReserve func() uint64

	// Writable, when set, is asked before each commit and each new stream;
	// an error refuses the samples unacknowledged (gRPC Unavailable, HTTP
	// 503 with Retry-After), so senders keep them and resend. The hub
	// passes the store's free-space guard.
	Writable func() error
}

// Server implements the gRPC Ingest service and the HTTP ingest handler.
type Server struct {
	pb.UnimplementedIngestServer

	opts    Options
	log     *slog.Logger
	m       *metrics
	seqs    *seqTable
	series  *seriesBook
	writers []*writer
	once    *limitedLog
	authLog *limitedLog // rejected tokens, once per remote address and period
	hellos  *helloSlots // streams reading a hello before their token is checked

	jobs sync.Pool // *job, see newJob

	rwSlots   chan struct{} // remote-write requests being served
	rwPool    sync.Pool     // *rwBuffers
	rwSeed    maphash.Seed  // of the series cache's keys
	rwCacheMu sync.RWMutex  // protects rwCache
	rwCache   map[uint64]*rwEntry

	mu     sync.Mutex // protects next
	next   int        // round-robin writer assignment
	ctx    context.Context
	cancel context.CancelFunc

	recheckMu  sync.Mutex    // protects recheckNow
	recheckNow chan struct{} // closed by RecheckAuth
}

// New validates opts and builds a Server. Call Restore, then Run.
func New(opts Options) (*Server, error) {
	if opts.Storage == nil || opts.Live == nil {
		return nil, errors.New("ingest: Storage and Live are required")
	}
	if opts.Limits == (metric.Limits{}) {
		opts.Limits = metric.DefaultLimits
	}
	if opts.MaxSeriesPerStream <= 0 {
		opts.MaxSeriesPerStream = 100_000
	}
	if opts.MaxActiveSeries <= 0 {
		opts.MaxActiveSeries = 2_000_000
	}
	if opts.SeriesIdle <= 0 {
		opts.SeriesIdle = 3 * time.Hour
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = 5 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 2 * time.Hour
	}
	if opts.Writers <= 0 {
		opts.Writers = 2
	}
	if opts.HelloTimeout <= 0 {
		opts.HelloTimeout = 10 * time.Second
	}
	if opts.AuthRecheck <= 0 {
		opts.AuthRecheck = 2 * time.Second
	}
	if opts.MaxPendingHellos <= 0 {
		opts.MaxPendingHellos = defaultMaxPendingHellos
	}
	if opts.MaxPendingHellosPerAddr <= 0 {
		opts.MaxPendingHellosPerAddr = defaultMaxPendingHellosPerAddr
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.RemoteWriteMachineLabel == "" {
		opts.RemoteWriteMachineLabel = DefaultRemoteWriteMachineLabel
	}
	if opts.RemoteWriteConcurrency <= 0 {
		opts.RemoteWriteConcurrency = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		seqs:    newSeqTable(),
		series:  newSeriesBook(opts.MaxSeriesPerStream, opts.MaxActiveSeries, opts.SeriesIdle),
		once:    newLimitedLog(opts.Logger, time.Minute),
		authLog: newLimitedLog(opts.Logger, 5*time.Minute),
		hellos:  newHelloSlots(opts.MaxPendingHellos, opts.MaxPendingHellosPerAddr),
		ctx:     ctx,
		cancel:  cancel,

		rwSlots: make(chan struct{}, opts.RemoteWriteConcurrency),
		rwPool:  sync.Pool{New: func() any { return &rwBuffers{} }},
		rwSeed:  maphash.MakeSeed(),
		rwCache: map[uint64]*rwEntry{},
	}
	s.series.mem = newMemGuard(opts.MaxMemory, opts.MemoryReserve, opts.Logger)
	s.m = newMetrics(opts.Registerer, func() float64 { _, n := s.series.counts(""); return float64(n) })
	for i := 0; i < opts.Writers; i++ {
		s.writers = append(s.writers, newWriter(s))
	}
	s.m.rejected.WithLabelValues(rejectPreAuthLimit)
	return s, nil
}

// Run commits queued batches until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	defer s.cancel()
	var wg sync.WaitGroup
	if g := s.series.mem; g != nil {
		wg.Go(func() { g.run(ctx) })
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.expireSeries(ctx)
	}()
	for _, w := range s.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Server) pickWriter() *writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writers[s.next%len(s.writers)]
	s.next++
	return w
}

// Stream serves one agent's stream.
func (s *Server) Stream(gs pb.Ingest_StreamServer) error {
	ctx := gs.Context()
	// Taken before the token is first checked: a RecheckAuth (a token
	// revoked on another hub) from here on reaches this stream.
	recheck := s.recheckSignal()
	hello, token, err := s.admit(gs)
	if err != nil {
		return err
	}
	machine := hello.GetMachineId()

	if err := s.writable(); err != nil {
		return s.refuse(machine, err)
	}

	st := newStream(s, hello, s.pickWriter())
	if err := st.admitSeq(); err != nil {
		return err
	}
	defer st.releaseSeries()
	if s.opts.Bus != nil {
		if err := s.busWelcome(ctx, machine, hello.GetInstance()); err != nil {
			return err
		}
	}
	welcome := &pb.Welcome{
		Settings: &pb.Settings{IntervalMs: s.opts.Interval.Milliseconds()},
		LastSeq:  s.seqs.last(machine, hello.GetInstance()),
	}
	if err := gs.Send(&pb.HubMessage{Msg: &pb.HubMessage_Welcome{Welcome: welcome}}); err != nil {
		return err
	}
	s.opts.Live.Connect(machineInfo(hello))
	s.m.streams.Inc()
	s.log.Info("agent connected", "machine", machine, "hostname", hello.GetHostname(), "version", hello.GetAgentVersion(), "last_seq", welcome.LastSeq)
	defer func() {
		s.m.streams.Dec()
		s.opts.Live.Disconnect(machine)
	}()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st.cancel = cancel
	go st.sendAcks(sctx, gs)
	if s.opts.Auth != nil {
		go s.recheckAuth(sctx, st, token, recheck)
	}

	// Receive on a goroutine so that a failed commit or a revoked token
	// ends the stream at once, not at the agent's next message: returning
	// from this handler closes the stream, which ends the pending Recv.
	done := make(chan error, 1)
	go func() { done <- s.receive(sctx, gs, st) }()
	select {
	case err := <-done:
		return err
	case <-sctx.Done():
		if cause := context.Cause(sctx); !errors.Is(cause, context.Canceled) {
			return cause
		}
		return <-done
	}
}

// receive reads the agent's messages until the stream ends.
func (s *Server) receive(sctx context.Context, gs pb.Ingest_StreamServer, st *stream) error {
	machine := st.machine
	f := &frame{s: s}
	for {
		f.reset()
		err := gs.RecvMsg(f)
		st.recvAt = s.opts.Now()
		if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		if err != nil {
			if status.Code(err) == codes.ResourceExhausted {
				// A message over --max-message-bytes, refused by gRPC.
				s.m.rejected.WithLabelValues(rejectTooLarge).Inc()
				s.once.warn("toolarge:"+machine, "agent stream closed: message too large", "machine", machine, "err", err)
			}
			s.log.Info("agent disconnected", "machine", machine, "err", err)
			return nil
		}
		if f.fast {
			if err := st.queue(sctx, st.validate(f.takeJob(), f.ids)); err != nil {
				return err
			}
			continue
		}
		switch m := f.Msg.(type) {
		case *pb.AgentMessage_Series:
			if err := st.define(m.Series.GetSeries()); err != nil {
				s.m.rejected.WithLabelValues(rejectTooManySeries).Inc()
				s.once.warn("series:"+machine, "agent stream closed: too many series", "machine", machine, "err", err)
				return status.Error(codes.ResourceExhausted, err.Error())
			}
		case *pb.AgentMessage_Batch:
			if err := st.queue(sctx, st.batch(m.Batch)); err != nil {
				return err
			}
		case *pb.AgentMessage_Processes:
			ts, procs, err := s.processSnapshot(m.Processes)
			if err != nil {
				s.m.rejectedSnaps.Inc()
				s.once.warn("processes:"+machine, "process snapshot rejected", "machine", machine, "err", err)
				continue
			}
			s.opts.Live.SetProcesses(machine, ts, procs)
		case *pb.AgentMessage_Hello:
			s.m.rejected.WithLabelValues(rejectMalformed).Inc()
			return status.Error(codes.InvalidArgument, "hello sent twice on one stream")
		default:
			s.m.rejected.WithLabelValues(rejectMalformed).Inc()
			return status.Error(codes.InvalidArgument, "empty or unknown message")
		}
	}
}

// queue publishes a received batch to the live state and queues it for
// its writer; the error is the stream's end while it waits.
func (st *stream) queue(sctx context.Context, j *job) error {
	st.publish(j)
	if err := st.w.room.Acquire(sctx, weigh(j)); err != nil {
		return context.Cause(sctx)
	}
	select {
	case st.w.q <- j:
		return nil
	case <-sctx.Done():
		st.w.room.Release(weigh(j))
		return context.Cause(sctx)
	}
}

// RecheckAuth asks Auth again now for every open stream, instead of at
// their next AuthRecheck: the hub calls it when tokens changed elsewhere
// (another hub or the CLI revoked one).
func (s *Server) RecheckAuth() {
	s.recheckMu.Lock()
	if s.recheckNow != nil {
		close(s.recheckNow)
	}
	s.recheckNow = make(chan struct{})
	s.recheckMu.Unlock()
}

// recheckSignal is closed by the next RecheckAuth.
func (s *Server) recheckSignal() <-chan struct{} {
	s.recheckMu.Lock()
	defer s.recheckMu.Unlock()
	if s.recheckNow == nil {
		s.recheckNow = make(chan struct{})
	}
	return s.recheckNow
}

// recheckAuth asks Auth again every AuthRecheck (and at RecheckAuth: now is
// the signal taken before the stream's first check) and ends the stream
// when the token is no longer accepted (revoked, expired, deleted).
func (s *Server) recheckAuth(ctx context.Context, st *stream, token string, now <-chan struct{}) {
	t := time.NewTicker(s.opts.AuthRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
		// The next signal before this check: a RecheckAuth during it is
		// not lost.
		now = s.recheckSignal()
		if err := s.opts.Auth(ctx, token, st.machine); err != nil {
			if ctx.Err() != nil {
				return
			}
			st.fail(s.authFailed(ctx, st.machine, err, true))
			return
		}
	}
}

// authFailed logs a rejected token once per remote address and period,
// and returns the gRPC status the stream ends with. machine is "" when the
// token was refused before the hello.
func (s *Server) authFailed(ctx context.Context, machine string, err error, open bool) error {
	remote := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote = hostOf(p.Addr.String())
	}
	code, what, reason := codes.Unauthenticated, "token rejected", rejectUnauthenticated
	if errors.Is(err, ErrPermissionDenied) {
		code, what, reason = codes.PermissionDenied, "token not allowed for this machine", rejectPermission
	}
	s.m.rejected.WithLabelValues(reason).Inc()
	if open {
		what += " on an open stream; closing it"
	}
	s.authLog.warn("auth:"+remote, "agent "+what, "machine", machine, "remote", remote, "err", err)
	if machine == "" {
		return status.Errorf(codes.Unauthenticated, "token rejected: %v; create one with `sysmonstm token create` and pass it with --token", err)
	}
	if code == codes.PermissionDenied {
		return status.Errorf(code, "token not allowed for machine %q: %v; use a token created for it with `sysmonstm token create --machine %s`", machine, err, machine)
	}
	return status.Errorf(code, "token rejected for machine %q: %v; create one with `sysmonstm token create` and pass it with --token", machine, err)
}

// hostOf is the host part of a HOST:PORT address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (s *Server) recvHello(gs pb.Ingest_StreamServer) (*pb.Hello, error) {
	type result struct {
		msg *pb.AgentMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := gs.Recv()
		ch <- result{m, err}
	}()
	timer := time.NewTimer(s.opts.HelloTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		h := r.msg.GetHello()
		if h == nil {
			s.m.rejected.WithLabelValues(rejectMalformed).Inc()
			return nil, status.Error(codes.InvalidArgument, "first message must be a hello")
		}
		return h, nil
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %s", s.opts.HelloTimeout)
	}
}

func (s *Server) validateHello(h *pb.Hello) error {
	if err := metric.ValidateMachineID(h.GetMachineId()); err != nil {
		return err
	}
	if len(h.GetHostname()) > 1024 {
		return fmt.Errorf("hostname is %d bytes, limit 1024", len(h.GetHostname()))
	}
	ls := protoLabels(h.GetLabels())
	if err := s.opts.Limits.ValidateSeries("machine_labels", ls); err != nil {
		return fmt.Errorf("machine labels: %w", err)
	}
	return nil
}

func machineInfo(h *pb.Hello) live.MachineInfo {
	info := live.MachineInfo{
		ID:           h.GetMachineId(),
		Hostname:     h.GetHostname(),
		Labels:       protoLabels(h.GetLabels()),
		AgentVersion: h.GetAgentVersion(),
		IntervalMs:   h.GetIntervalMs(),
		Source:       live.SourceAgent,
	}
	if hi := h.GetInfo(); hi != nil {
		info.OS = hi.GetOs()
		info.Platform = hi.GetPlatform()
		info.KernelVersion = hi.GetKernelVersion()
		info.Arch = hi.GetArch()
		info.CPUModel = hi.GetCpuModel()
		info.CPUCores = hi.GetCpuCores()
		info.CPUThreads = hi.GetCpuThreads()
		info.MemoryTotalBytes = hi.GetMemoryTotalBytes()
		if bt := hi.GetBootTimeUnix(); bt > 0 {
			info.BootTime = time.Unix(bt, 0).UTC()
		}
	}
	return info
}

// protoLabels converts and sorts wire labels; validation is the caller's.
func protoLabels(in []*pb.Label) metric.Labels {
	ls := make(metric.Labels, len(in))
	for i, l := range in {
		ls[i] = metric.Label{Name: l.GetName(), Value: l.GetValue()}
	}
	return ls.Sort()
}

// ServerOptions are the gRPC server options the agents' ingest needs: the
// message limit (bytes) and the codec that decodes batches straight into
// pooled jobs (see frame). Without the codec the server still works, with
// one allocation per message and per value slice more (docs/benchmarks.md,
// "Ingest headroom (issue #16)").
func ServerOptions(maxMessageBytes int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.ForceServerCodecV2(codec{proto: encoding.GetCodecV2(grpcproto.Name)}),
	}
}
