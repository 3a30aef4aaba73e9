package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Source returns one tick's samples. It runs on the collection goroutine;
// its ctx expires at the next tick. An empty result makes no batch. The agent
// does not keep the slice after the call.
type Source func(ctx context.Context) []metric.Sample

// Defaults and limits of Options.
const (
	DefaultInterval    = time.Second
	DefaultBufferBytes = 8 << 20 // encoded bytes of unacknowledged batches
	MinInterval        = 10 * time.Millisecond
	MaxInterval        = time.Hour
	// MaxSeries bounds the agent's series table; samples of further new
	// series are dropped (logged once).
	MaxSeries = 50_000
	// submitQueue is how many Submit groups wait for the collection
	// goroutine before Submit blocks.
	submitQueue = 16
	// DefaultSnapshotInterval is how often Options.Snapshots is called.
	DefaultSnapshotInterval = 5 * time.Second
)

// Options configure an Agent. Hub and MachineID are required.
type Options struct {
	// Hub is the hub's gRPC address, host:port (or a gRPC target URI), or
	// several hubs as a comma-separated list; see ParseHubs. A host name
	// may resolve to several hubs. With several hubs the agent spreads,
	// fails over and replays as hubPicker and the Failover* timers say.
	Hub       string
	Token     string // agent token, sent as "authorization: Bearer" stream metadata and in the hello
	MachineID string
	Hostname  string        // defaults to MachineID
	Labels    metric.Labels // machine labels, sorted; "machine" is reserved
	Info      *sysmonstmv1.HostInfo
	Version   string // agent version sent in the hello

	// Interval is the collection interval, default 1s, between MinInterval
	// and MaxInterval, whole milliseconds. The hub may change it.
	Interval time.Duration
	// Phase offsets the ticks within the interval: the agent collects at
	// every multiple of the interval since the Unix epoch plus Phase
	// (modulo the interval in force). Whole milliseconds, not negative;
	// default 0, every agent on the same wall-clock boundary. loadgen
	// spreads its simulated machines over the interval with it.
	Phase time.Duration
	// BufferBytes bounds the buffered unacknowledged batches, in encoded
	// bytes; default DefaultBufferBytes.
	BufferBytes int

	// DialOptions are used to dial Hub (TLS etc.); default insecure
	// transport credentials. Ignored when Conn is set.
	DialOptions []grpc.DialOption
	// Conn, when set, is used instead of dialing Hub; the agent does not
	// close it. Many agents may share one Conn (loadgen). There is no
	// failover then.
	Conn *grpc.ClientConn
	// Resolver looks up hub host names before each connection attempt;
	// default net.DefaultResolver.
	Resolver Resolver

	// Snapshots, when set, is called every SnapshotInterval on its own
	// goroutine for a live-only snapshot (the top processes); nil results
	// are skipped. Snapshots are never buffered or replayed: the newest one
	// is sent when a stream is up, and one still waiting for the sender is
	// replaced by the next (counted as dropped). They never delay batches
	// by more than one message.
	Snapshots func(ctx context.Context) *sysmonstmv1.ProcessSnapshot
	// SnapshotInterval is how often Snapshots is called; default
	// DefaultSnapshotInterval, at least MinInterval.
	SnapshotInterval time.Duration

	Logger *slog.Logger     // default: discard
	Now    func() time.Time // wall clock; default time.Now (tests)
}

// Stats is a snapshot of an agent's counters. Batch counts are batches (one
// per tick); *Samples fields count the samples inside them.
type Stats struct {
	Collected        int64 // batches built from ticks
	CollectedSamples int64
	Sent             int64 // batches sent to a hub for the first time
	SentSamples      int64
	Resent           int64 // batches sent again on a later stream (replay)
	Acked            int64 // batches the hub confirmed durable (acks and welcome.last_seq)
	AckedSamples     int64
	Dropped          int64 // batches dropped oldest-first on buffer overflow
	DroppedSamples   int64
	SkippedSamples   int64  // NaN/±Inf values, invalid series, series over MaxSeries
	SnapshotsSent    int64  // process snapshots sent to a hub
	SnapshotsDropped int64  // process snapshots replaced before they could be sent
	Buffered         int    // unacknowledged batches held
	BufferedBytes    int    // their encoded size, bytes
	Series           int    // series in the table
	Connected        bool   // a stream is up (welcome received)
	Hub              string // the hub of the current stream, "" when none
	Reconnects       int64  // streams established after the first one
	Failovers        int64  // streams established on another hub than the previous stream's
	Errors           int64  // failed connection attempts and broken streams
	Interval         time.Duration
}

// Agent streams one machine's samples to a hub. Create it with New and run
// it with Run; Stats may be called from any goroutine.
type Agent struct {
	opts     Options
	src      Source
	log      *slog.Logger
	now      func() time.Time
	instance uint64

	// Tunables; tests shorten them.
	backoffBase    time.Duration
	backoffMax     time.Duration
	stableAfter    time.Duration // a stream that lived this long resets the backoff
	welcomeTimeout time.Duration // connect, hello and welcome with one hub
	ackTimeout     time.Duration // in-flight batches without an ack for this long break the stream (one hub)
	// The same two with several hubs, where giving up early moves to
	// another hub instead of waiting on this one.
	failoverConnectTimeout time.Duration
	failoverAckTimeout     time.Duration
	failoverStableAfter    time.Duration
	window                 int // max batches sent on a stream and not yet acked

	intervalMs atomic.Int64                                // current collection interval, ms
	intervalCh chan struct{}                               // cap 1: the interval changed
	wake       chan struct{}                               // cap 1: the buffer grew or shrank
	snapWake   chan struct{}                               // cap 1: a snapshot is pending
	submitted  chan stamped                                // groups from Submit, for the collection goroutine
	snap       atomic.Pointer[sysmonstmv1.ProcessSnapshot] // newest snapshot not sent yet

	col    collector // owned by the collection goroutine
	picker hubPicker // owned by the connect loop

	mu         sync.Mutex // protects the fields below
	buf        buffer
	defs       []*sysmonstmv1.SeriesDef // defs[id-1]; append-only
	maxSent    uint64                   // highest seq ever sent
	lastPushed uint64                   // seq of the newest batch buffered
	stats      Stats                    // counters; Buffered*, Series, Interval filled by Stats()
	lastDropAt time.Time                // last overflow log
	streams    int64                    // streams established
	lastHub    string                   // endpoint of the newest stream
	lastEnd    time.Time                // when the newest stream ended
}

// New validates opts, applies defaults and returns an agent that collects
// from src. It does not connect; Run does.
func New(opts Options, src Source) (*Agent, error) {
	if src == nil {
		return nil, errors.New("agent: source is nil")
	}
	var hubs []string
	if opts.Conn == nil {
		var err error
		if hubs, err = hubList(opts.Hub); err != nil {
			return nil, err
		}
	}
	if err := metric.ValidateMachineID(opts.MachineID); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if opts.Hostname == "" {
		opts.Hostname = opts.MachineID
	}
	if err := validateLabels(opts.Labels); err != nil {
		return nil, err
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < MinInterval || opts.Interval > MaxInterval || opts.Interval%time.Millisecond != 0 {
		return nil, fmt.Errorf("agent: interval %s out of range: must be whole milliseconds between %s and %s", opts.Interval, MinInterval, MaxInterval)
	}
	if opts.Phase < 0 || opts.Phase%time.Millisecond != 0 {
		return nil, fmt.Errorf("agent: phase %s: must be whole milliseconds, not negative", opts.Phase)
	}
	if opts.BufferBytes == 0 {
		opts.BufferBytes = DefaultBufferBytes
	}
	if opts.BufferBytes < 0 {
		return nil, fmt.Errorf("agent: buffer size %d bytes is negative", opts.BufferBytes)
	}
	if opts.SnapshotInterval == 0 {
		opts.SnapshotInterval = DefaultSnapshotInterval
	}
	if opts.SnapshotInterval < MinInterval {
		return nil, fmt.Errorf("agent: snapshot interval %s is below %s", opts.SnapshotInterval, MinInterval)
	}
	for _, c := range []byte(opts.Token) {
		if c <= ' ' || c > '~' {
			return nil, errors.New("agent: the token has a space, control or non-ASCII character, which tokens never have; copy it again from `sysmonstm token create`")
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("agent: random instance id: %w", err)
	}
	a := &Agent{
		opts:           opts,
		src:            src,
		log:            opts.Logger,
		now:            opts.Now,
		instance:       binary.LittleEndian.Uint64(rnd[:]),
		backoffBase:    500 * time.Millisecond,
		backoffMax:     30 * time.Second,
		stableAfter:    30 * time.Second,
		welcomeTimeout: 10 * time.Second,
		ackTimeout:     30 * time.Second,
		window:         256,

		failoverConnectTimeout: FailoverConnectTimeout,
		failoverAckTimeout:     FailoverAckTimeout,
		failoverStableAfter:    FailoverStableAfter,
		intervalCh:             make(chan struct{}, 1),
		wake:                   make(chan struct{}, 1),
		snapWake:               make(chan struct{}, 1),
		submitted:              make(chan stamped, submitQueue),
		buf:                    buffer{limit: opts.BufferBytes},
		picker:                 hubPicker{hubs: hubs, resolver: opts.Resolver, machine: opts.MachineID, log: opts.Logger.Warn},
	}
	a.col.init()
	a.intervalMs.Store(opts.Interval.Milliseconds())
	return a, nil
}

// hubList returns the hubs of an Options.Hub: a gRPC target URI as is,
// else ParseHubs' list.
func hubList(hub string) ([]string, error) {
	if strings.Contains(hub, ":///") || strings.HasPrefix(hub, "unix:") {
		return []string{hub}, nil // a gRPC target URI (dns:///host:port, unix:/path)
	}
	hubs, err := ParseHubs(hub)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return hubs, nil
}

func validateLabels(ls metric.Labels) error {
	for i, l := range ls {
		if !metric.ValidLabelName(l.Name) {
			return fmt.Errorf("agent: invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", l.Name)
		}
		if l.Name == metric.MachineLabel {
			return fmt.Errorf("agent: label %q is reserved: set the machine id instead", metric.MachineLabel)
		}
		if i > 0 && ls[i-1].Name >= l.Name {
			return fmt.Errorf("agent: labels not sorted by name or label %q repeated", l.Name)
		}
		if len(l.Value) > metric.DefaultLimits.MaxLabelValueLength {
			return fmt.Errorf("agent: value of label %s is %d bytes, limit %d", l.Name, len(l.Value), metric.DefaultLimits.MaxLabelValueLength)
		}
	}
	return nil
}

// Instance returns the random id of this agent process; sequence numbers
// count per instance.
func (a *Agent) Instance() uint64 { return a.instance }

// Interval returns the current collection interval.
func (a *Agent) Interval() time.Duration {
	return time.Duration(a.intervalMs.Load()) * time.Millisecond
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Buffered = a.buf.len()
	s.BufferedBytes = a.buf.bytes
	s.Series = len(a.defs)
	s.Interval = a.Interval()
	return s
}

// Run collects and streams until ctx is done, then returns nil; call it once. It never
// returns because the hub is away; it returns an error only when the
// connection cannot be set up at all (an invalid dial option).
func (a *Agent) Run(ctx context.Context) error {
	if a.opts.Conn == nil {
		// Sessions dial their own connections; check the options once.
		_, closeConn, err := a.dial(endpoint{addr: a.picker.hubs[0]})
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		closeConn()
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.collectLoop(ctx) })
	wg.Go(func() { a.connectLoop(ctx) })
	if a.opts.Snapshots != nil {
		wg.Go(func() { a.snapshotLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// dial returns a connection to ep for one session and a function that
// closes it (a no-op for Options.Conn).
func (a *Agent) dial(ep endpoint) (*grpc.ClientConn, func(), error) {
	if a.opts.Conn != nil {
		return a.opts.Conn, func() {}, nil
	}
	// One connection per session: a new stream after a failure always
	// starts on a fresh connection, so gRPC's own reconnect backoff never
	// delays ours; the session's deadline bounds connecting.
	params := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: a.backoffBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: a.backoffMax},
		MinConnectTimeout: a.welcomeTimeout,
	}
	dopts := []grpc.DialOption{grpc.WithConnectParams(params), grpc.WithKeepaliveParams(keepaliveParams)}
	if ep.name != "" {
		// Dialed by IP: TLS verifies, and :authority names, the host
		// name the address came from.
		dopts = append(dopts, grpc.WithAuthority(ep.name))
	}
	c, err := grpc.NewClient(ep.addr, append(dopts, a.opts.DialOptions...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("dial hub %s: %w", ep, err)
	}
	return c, func() { c.Close() }, nil
}

// keepaliveParams ping the hub after 15 s without traffic and drop the
// connection when no answer comes within 5 s: on an idle stream (no batch
// in flight) this notices a hub that vanished without a TCP reset. The
// hub allows pings every 10 s (its keepalive enforcement policy).
var keepaliveParams = keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 5 * time.Second}

// setInterval applies an interval from the hub; invalid values are ignored.
func (a *Agent) setInterval(ms int64) {
	if ms <= 0 {
		return
	}
	d := time.Duration(ms) * time.Millisecond
	if d < MinInterval || d > MaxInterval {
		a.log.Warn("ignoring collection interval from hub: out of range", "interval", d, "min", MinInterval, "max", MaxInterval)
		return
	}
	if a.intervalMs.Swap(ms) == ms {
		return
	}
	a.log.Info("collection interval changed by hub", "interval", d)
	select {
	case a.intervalCh <- struct{}{}:
	default:
	}
}

func (a *Agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
