// Package bus is the hubs' shared sample bus on NATS JetStream (`hub
// --nats`): it publishes agents' batches durably before they are
// acknowledged, stores them in a Prometheus-compatible TSDB with remote
// write from a consumer every hub shares, and feeds every hub's live state
// with every machine's updates. docs/architecture.md, "Several hubs on
// NATS JetStream", has the data flow and the failure cases.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
)

// Defaults of Options.
const (
	DefaultMaxAge     = 2 * time.Hour
	DefaultDuplicates = 2 * time.Minute
	connectTimeout    = 5 * time.Second
)

// Options configure New.
type Options struct {
	// URLs are the NATS servers (nats://host:port; user:password@ in a URL
	// is used and never logged).
	URLs []string
	// CredsFile is a NATS credentials file (JWT and seed); "" for none.
	CredsFile string
	// Replicas of the streams: 1, or 3 (or 5) in a NATS cluster.
	Replicas int
	// MaxAge keeps batches on the samples stream this long: the backlog
	// the storage consumers may fall behind by; default 2h.
	MaxAge time.Duration
	// MaxBytes bounds the samples stream, bytes; 0: no bound but MaxAge.
	MaxBytes int64
	// Duplicates is JetStream's de-duplication window of batch ids;
	// default 2m.
	Duplicates time.Duration
	// Targets are the remote-write receivers the storage consumer writes
	// every batch to; none: this hub runs no storage consumer.
	Targets []remotewrite.Target
	// AckWait is how long JetStream waits for a hub's storage consumer to
	// acknowledge a fetched batch before it gives the batch to another
	// hub; default 30s.
	AckWait time.Duration
	// Client posts to Targets; nil: a client with a 30 s timeout.
	Client *http.Client
	// Live takes the other hubs' live updates: the hub's live sink (live
	// state and alert engine).
	Live ingest.Live
	// NoteSeq, if set, learns the seqs other hubs stored
	// (ingest.Server.NoteSeq).
	NoteSeq func(machine string, instance, seq uint64)
	// Limits check what is read from the bus; zero: metric.DefaultLimits.
	Limits     metric.Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Bus is a hub's connection to the bus. New connects and creates the
// streams; Run consumes; Close disconnects.
type Bus struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	nc      *nats.Conn
	js      jetstream.JetStream
	samples jetstream.Stream
	origin  string    // this process's id on the bus
	rawPool sync.Pool // *[]byte: Publish's uncompressed message buffer
	urls    string    // redacted, for messages

	// mu protects helloFrom.
	mu sync.Mutex
	// helloFrom is, per machine, the hub whose hello was the newest seen:
	// a disconnect from another hub (the agent left it for this one) does
	// not mark the machine disconnected.
	helloFrom map[string]string
}

// New connects to NATS and creates (or updates) the streams. A NATS that
// cannot be reached within 5 s is an error; once connected, the
// connection reconnects forever.
func New(ctx context.Context, opts Options) (*Bus, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("bus: no NATS URL")
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Duplicates <= 0 {
		opts.Duplicates = DefaultDuplicates
	}
	if opts.AckWait <= 0 {
		opts.AckWait = storageAckWait
	}
	if opts.Limits == (metric.Limits{}) {
		opts.Limits = metric.DefaultLimits
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Bus{opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer), origin: nats.NewInbox()[len("_INBOX."):],
		urls: RedactURLs(opts.URLs), helloFrom: map[string]string{}}
	nopts := []nats.Option{
		nats.Name("sysmonstm hub"),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.m.connected.Set(0)
			b.log.Warn("NATS disconnected; reconnecting (agents' batches are refused meanwhile)", "urls", b.urls, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.m.connected.Set(1)
			b.log.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("NATS error", "err", err)
		}),
	}
	if opts.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opts.CredsFile))
	}
	nc, err := nats.Connect(strings.Join(opts.URLs, ","), nopts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", b.urls, redactErr(err, opts.URLs))
	}
	b.nc = nc
	b.m.connected.Set(1)
	if mp := nc.MaxPayload(); mp < MaxMessageBytes {
		b.log.Warn("NATS max_payload is below a bus message's limit: a batch larger than it (a machine with tens of thousands of series) cannot be published and its agent keeps resending it; set max_payload: 8MB in the NATS servers' configuration",
			"max_payload", mp, "want", MaxMessageBytes)
	}
	// Pending publishes expire, so live updates whose PubAck never comes
	// (NATS lost them) do not pile up against the pending bound.
	b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS JetStream: %w", err)
	}
	if err := b.setUpStreams(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// streamSetupWindow is how long a starting hub keeps trying to create its
// streams: a NATS cluster started with the hubs (one compose file, one
// boot) may still be electing its JetStream leaders, or its servers may
// answer slowly for a while, and a replicated stream then takes longer
// than one attempt's 10 s.
const streamSetupWindow = time.Minute

// setUpStreams runs createStreams until it succeeds or streamSetupWindow
// has passed, logging each failed attempt; the last error is returned.
func (b *Bus) setUpStreams(ctx context.Context) error {
	deadline := time.Now().Add(streamSetupWindow)
	wait := time.Second
	for {
		err := b.createStreams(ctx)
		if err == nil || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		b.log.Warn("NATS JetStream streams not set up yet; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// createStreams creates the samples and state streams, or updates their
// limits to these options.
func (b *Bus) createStreams(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	maxBytes := b.opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        SamplesStream,
		Description: "sysmonstm: agents' batches, until the storage consumers wrote them and MaxAge passed",
		Subjects:    []string{samplesSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.opts.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgSize:  MaxMessageBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		Duplicates:  b.opts.Duplicates,
	})
	if err != nil {
		return fmt.Errorf("create stream %s on NATS %s (is JetStream enabled? are --nats-replicas %d servers in the cluster?): %w", SamplesStream, b.urls, b.opts.Replicas, err)
	}
	b.samples = s
	_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              StateStream,
		Description:       "sysmonstm: each machine's newest hello, disconnect and top-process list",
		Subjects:          []string{stateSubject + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        MaxMessageBytes,
		Storage:           jetstream.FileStorage,
		Replicas:          b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("create stream %s on NATS %s: %w", StateStream, b.urls, err)
	}
	return nil
}

// Run runs the live followers and, with Targets, the storage consumer,
// until ctx ends.
func (b *Bus) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.follow(ctx, StateStream, stateSubject+".>") })
	wg.Go(func() { b.follow(ctx, SamplesStream, samplesSubject+".>") })
	if len(b.opts.Targets) > 0 {
		wg.Go(func() { b.storeLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// Ready is nil while the bus takes batches, else why not (/ready, and
// ingest's Writable: new agent streams are refused meanwhile).
func (b *Bus) Ready() error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS %s: %s", b.urls, strings.ToLower(st.String()))
	}
	return nil
}

// Close drains nothing: what was not acknowledged is redelivered to
// another hub.
func (b *Bus) Close() {
	b.nc.Close()
}

// RedactURLs joins URLs without their user info (passwords) or query.
func RedactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = remotewrite.RedactURL(u)
	}
	return strings.Join(out, ",")
}

// redactErr replaces any password of urls that err quotes.
func redactErr(err error, urls []string) error {
	msg := err.Error()
	for _, s := range urls {
		if u, perr := url.Parse(s); perr == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "xxxxx")
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
