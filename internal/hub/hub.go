// Package hub composes the hub's components — storage, live state, ingest,
// HTTP API — and runs them with their listeners, with an ordered, bounded
// shutdown. `sysmonstm hub` and `sysmonstm up` both run a Hub.
package hub

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/sysmonstm/sysmonstm/internal/bus"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
	"github.com/sysmonstm/sysmonstm/internal/promapi"
	"github.com/sysmonstm/sysmonstm/internal/store"
	"github.com/sysmonstm/sysmonstm/internal/web"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Config is the hub's settings; zero values take the documented defaults.
type Config struct {
	ListenHTTP string // default 127.0.0.1:8000
	ListenGRPC string // default 127.0.0.1:50051
	DataDir    string // required
	// Postgres is a PostgreSQL URL: users, sessions, tokens and alert
	// rules, state, silences and notifiers are kept there, shared with the
	// other hubs using it, instead of in <data-dir>/sysmonstm.db.
	Postgres     string
	RetentionRaw time.Duration // default 24h
	// StorageEngine is the raw tier's engine: store.EngineAuto (default:
	// the data directory's, else store.EngineTSDB), store.EngineTSDB or
	// store.EngineVM.
	StorageEngine string
	Retention1m   time.Duration // default 30d
	Retention1h   time.Duration // default 1y
	OfflineAfter  time.Duration // default 15s
	// ForgetOfflineAfter forgets a machine that has sent no data for this
	// long (as DELETE /api/machines/{id} does); 0 never does.
	ForgetOfflineAfter time.Duration
	TLSCert            string // PEM files; both or neither
	TLSKey             string
	// TLSClientCA, with TLS on, requires agents to present a client
	// certificate signed by this PEM CA bundle (mutual TLS on gRPC).
	TLSClientCA string
	Logger      *slog.Logger

	Limits Limits
	Conn   ConnLimits
	Query  QueryLimits

	// MinFreeDiskMiB is the free space, in MiB, kept on the data dir's
	// filesystem: below it the hub refuses samples and is not ready, and it
	// does not start; default 256 (store.DefaultMinFree).
	MinFreeDiskMiB int
	// RemoteWriteMachineLabel is the label whose value groups series
	// received by Prometheus remote write (POST /api/v1/write) into
	// dashboard machines; default "instance".
	RemoteWriteMachineLabel string
	// ExternalURL is where users reach the dashboard (behind a proxy, or on
	// a public name); links in notifications use it. Default: the HTTP
	// listener's address.
	ExternalURL string

	Alerting AlertingConfig // alerts.go
	Security SecurityConfig // security.go
	Edge     EdgeConfig     // edge.go

	RemoteWrite RemoteWriteConfig // remotewrite.go
	Bus         BusConfig         // bus.go: --nats
	History     HistoryConfig     // history.go
}

// Limits bound what one agent may send; zero values take the defaults.
// Input over a limit is refused with a clear error and counted in
// sysmonstm_rejected_requests_total or sysmonstm_dropped_samples_total.
type Limits struct {
	MaxSeriesPerMachine int   // distinct active series of one machine (and one stream's table); default 100,000
	MaxLabels           int   // labels per series; default 30
	MaxLabelValueLength int   // bytes of a label value; default 1024
	MaxMessageBytes     int   // one gRPC message; default 8 MiB
	MaxBodyBytes        int64 // one HTTP ingest or remote-write body; default 4 MiB

	// MaxActiveSeries bounds the distinct active series of all machines;
	// default 2,000,000.
	MaxActiveSeries int
	// MaxLiveSeriesPerMachine bounds the latest values the live state keeps
	// per machine (snapshots, machine objects); default 10,000.
	MaxLiveSeriesPerMachine int
	// MaxMemory is the hub's memory budget in bytes: above
	// ingest.MemoryHighWater of it new series are refused, and Go's soft
	// memory limit is ingest.MemorySoftLimit of it. MaxMemoryAuto (0, the
	// default) takes the cgroup memory limit when one is set, else none;
	// MaxMemoryOff (-1): none.
	MaxMemory int64
}

// QueryLimits bound one query of the Prometheus query API; zero values take
// the defaults (promapi's, Prometheus' own for samples and timeout).
type QueryLimits struct {
	MaxSamples int           // samples one query holds in memory at once; default 50,000,000
	Timeout    time.Duration // one query's evaluation; default 2m
	MaxSeries  int           // series one query selects or answers, and one /api/v1/series answer; default 500,000
}

// ConnLimits bound what a client may hold of the hub's listeners, before it
// has authenticated (and after, alike); zero values take the defaults.
type ConnLimits struct {
	// MaxPerIP is how many connections one client address (an IPv4
	// address, or an IPv6 /64) may hold open on each listener, HTTP and
	// gRPC; default 256, negative: no limit.
	MaxPerIP int
	// Exempt lists client addresses without that limit; nil: loopback
	// (127.0.0.0/8, ::1), where a reverse proxy or loadgen on the hub's
	// host speaks for many clients.
	Exempt []netip.Prefix
	// BodyTimeout is how long an HTTP request body may take to arrive
	// after its headers; default 30s.
	BodyTimeout time.Duration
}

// grpcHandshakeTimeout bounds a new gRPC connection's TLS handshake and
// HTTP/2 preface (gRPC's own default is 120 s), like the HTTP listener's
// header timeout.
const grpcHandshakeTimeout = 10 * time.Second

// Hub is a running hub's handle.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	store    *store.Store
	live     *live.State
	ingest   *ingest.Server
	web      *web.Server
	httpLn   net.Listener
	grpcLn   net.Listener
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	ready    atomic.Bool
	tlsConf  *tls.Config // HTTPS; nil without TLS
	tlsFiles *tlsFiles
	shutdown time.Duration

	db     *sql.DB // metadata: rules, alerts, tokens, users (internal/db)
	routes []httpjson.Route
	// Each part adds its components in its own file; see setup* and run*.
	alerts alertsPart
	sec    securityPart
	edge   edgePart
	rw     remoteWritePart
	bus    *bus.Bus // --nats; nil without
}

// New opens storage and binds both listeners, so the caller knows the
// addresses (and a port conflict is reported) before Run.
func New(cfg Config) (*Hub, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), shutdown: 10 * time.Second}
	h.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if cfg.TLSCert != "" {
		tf, err := newTLSFiles(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA)
		if err != nil {
			return nil, err
		}
		h.tlsFiles = tf
		h.tlsConf = tf.httpConfig()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			h.closeAll()
		}
	}()

	// The metadata database first: it refuses to start afresh next to a
	// hub's data whose database was lost, and the store's directory is such
	// data. Then the store, which refuses a disk below its reserve before
	// the TSDB writes there (SQLite names a full disk itself).
	var err error
	if err := h.openMetadata(); err != nil {
		return nil, err
	}
	maxMem, memFrom, err := resolveMaxMemory(cfg.Limits.MaxMemory, cgroupRoot)
	if err != nil {
		return nil, err
	}
	h.store, err = store.Open(store.Options{
		Dir:          filepath.Join(cfg.DataDir, "tsdb"),
		Engine:       cfg.StorageEngine,
		RetentionRaw: cfg.RetentionRaw,
		Retention1m:  cfg.Retention1m,
		Retention1h:  cfg.Retention1h,
		MinFree:      uint64(max(cfg.MinFreeDiskMiB, 0)) << 20,
		EngineMemory: store.EngineMemoryFor(maxMem),
		Logger:       h.log.With("component", "store"),
		Registerer:   h.reg,
	})
	if err != nil {
		if store.IsDiskFull(err) {
			return nil, &config.SettingError{Reason: fmt.Sprintf("open storage in %s: free space, then start the hub again (or lower {min-free-disk-mib})", cfg.DataDir), Err: err}
		}
		return nil, fmt.Errorf("open storage in %s: %w", cfg.DataDir, err)
	}
	h.live, err = live.New(live.Options{
		OfflineAfter:        cfg.OfflineAfter,
		ForgetAfter:         cfg.ForgetOfflineAfter,
		MaxSeriesPerMachine: cfg.Limits.MaxLiveSeriesPerMachine,
		// The alert engine is built after the live state; it ends a
		// forgotten machine's alerts.
		OnForget: func(id string) {
			if h.alerts.engine != nil {
				h.alerts.engine.Forget(id)
			}
		},
		StatePath:  filepath.Join(cfg.DataDir, "machines.json"),
		Logger:     h.log.With("component", "live"),
		Registerer: h.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("load machine registry: %w", err)
	}
	if err := h.setupSecurity(); err != nil {
		return nil, err
	}
	if err := h.setupAlerts(); err != nil {
		return nil, err
	}
	applyMaxMemory(maxMem, h.store.Engine())
	if maxMem > 0 {
		h.log.Info("memory limit: new series are refused above the high-water mark", "max_memory_mib", maxMem>>20,
			"high_water_mib", int64(float64(maxMem)*ingest.MemoryHighWater)>>20, "go_soft_limit_mib", int64(float64(maxMem)*ingest.MemorySoftLimit)>>20, "from", memFrom)
	}
	if err := h.setupRemoteWrite(); err != nil {
		return nil, err
	}
	if err := h.setupBus(); err != nil {
		return nil, err
	}
	h.ingest, err = ingest.New(ingest.Options{
		Storage:    h.storage(),
		Bus:        h.ingestBus(),
		Live:       h.ingestLive(),
		Auth:       h.ingestAuth(),
		TokenAuth:  h.sec.store.CheckAgentToken,
		Logger:     h.log.With("component", "ingest"),
		Registerer: h.reg,

		MaxSeriesPerStream: cfg.Limits.MaxSeriesPerMachine,
		MaxActiveSeries:    cfg.Limits.MaxActiveSeries,
		SeriesIdle:         seriesIdle(cfg.RetentionRaw),
		MaxBodyBytes:       cfg.Limits.MaxBodyBytes,
		MaxMemory:          maxMem,
		MemoryReserve:      h.store.RollupReserve,

		RemoteWriteMachineLabel: cfg.RemoteWriteMachineLabel,
		Limits:                  limits(cfg.Limits),
		Writable:                h.store.Writable,
	})
	if err != nil {
		return nil, err
	}
	if err := h.ingest.Restore(context.Background()); err != nil {
		return nil, err
	}
	prom := promapi.New(promapi.Options{Queryable: h.store.Queryable(), Live: h.live,
		MaxSamples: cfg.Query.MaxSamples, Timeout: cfg.Query.Timeout, MaxSeries: cfg.Query.MaxSeries, Logger: h.log.With("component", "promapi"), Registerer: h.reg})
	hist, promRoutes, err := h.setupHistory(prom)
	if err != nil {
		return nil, err
	}
	h.routes = append(h.routes, promRoutes...)
	h.web, err = web.New(web.Options{
		Live:        h.live,
		History:     hist,
		Ingest:      h.ingest.HTTPHandler(),
		RemoteWrite: h.ingest.RemoteWriteHandler(),

		RemoteWriteMachineLabel: cfg.RemoteWriteMachineLabel,
		Gatherer:                h.reg,
		Registerer:              h.reg,
		Ready:                   h.readiness,
		Logger:                  h.log.With("component", "web"),
		Routes:                  h.routes,
		Middleware:              h.middleware(),
	})
	if err != nil {
		return nil, err
	}
	if err := h.setupEdge(); err != nil {
		return nil, err
	}

	if h.grpcLn, err = net.Listen("tcp", cfg.ListenGRPC); err != nil {
		return nil, &config.SettingError{Setting: "listen-grpc", Value: cfg.ListenGRPC, Reason: "cannot listen (is another hub running? change {listen-grpc})", Err: err}
	}
	if h.httpLn, err = net.Listen("tcp", cfg.ListenHTTP); err != nil {
		return nil, &config.SettingError{Setting: "listen-http", Value: cfg.ListenHTTP, Reason: "cannot listen (is another hub running? change {listen-http})", Err: err}
	}
	guard := netguard.NewMetrics(h.reg)
	guardLog := h.log.With("component", "netguard")
	limit := func(ln net.Listener, name string) net.Listener {
		return netguard.Limit(ln, netguard.ListenerOptions{
			Name: name, MaxPerAddr: cfg.Conn.MaxPerIP, Exempt: cfg.Conn.Exempt, Metrics: guard, Logger: guardLog,
		})
	}
	h.grpcLn, h.httpLn = limit(h.grpcLn, "grpc"), limit(h.httpLn, "http") // under TLS: the handshake counts
	if h.tlsConf != nil {
		h.httpLn = tls.NewListener(h.httpLn, h.tlsConf)
	}
	opts := append(ingest.ServerOptions(cfg.Limits.MaxMessageBytes),
		grpc.ConnectionTimeout(grpcHandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	if h.tlsFiles != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(h.tlsFiles.grpcConfig())))
	}
	h.grpcSrv = grpc.NewServer(opts...)
	pb.RegisterIngestServer(h.grpcSrv, h.ingest)
	h.httpSrv = &http.Server{
		// Bodies get a deadline of their own, not ReadTimeout: that would
		// also cut WebSockets and long answers.
		Handler:           netguard.BodyTimeout(h.web.Handler(), netguard.BodyOptions{Timeout: cfg.Conn.BodyTimeout, Metrics: guard, Logger: guardLog}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	// Shutdown does not track WebSocket connections: close them explicitly.
	h.httpSrv.RegisterOnShutdown(h.web.Close)
	ok = true
	return h, nil
}

// HTTPAddr is the bound HTTP address.
func (h *Hub) HTTPAddr() string { return h.httpLn.Addr().String() }

// GRPCAddr is the bound gRPC address.
func (h *Hub) GRPCAddr() string { return h.grpcLn.Addr().String() }

// TLS reports whether the hub's listeners use TLS.
func (h *Hub) TLS() bool { return h.tlsConf != nil }

// URL is the dashboard's URL: --external-url, else the HTTP listener's.
func (h *Hub) URL() string {
	if h.cfg.ExternalURL != "" {
		return strings.TrimSuffix(h.cfg.ExternalURL, "/") + "/"
	}
	scheme := "http"
	if h.tlsConf != nil {
		scheme = "https"
	}
	return scheme + "://" + h.HTTPAddr() + "/"
}

// streamGrace is how long a shutting-down hub lets open agent streams run
// so that acks of batches in flight go out. Agents never end a stream
// themselves, so the hub then closes them; what they sent and did not get
// acknowledged they replay to the next hub (acks follow commits, so no
// acknowledged sample is lost either way).
const streamGrace = time.Second

// Run serves until ctx is done, then shuts down in order: stop taking new
// streams and requests, close agent streams after streamGrace, let writers
// finish their commits, close storage.
func (h *Hub) Run(ctx context.Context) error {
	defer h.closeAll()
	g, gctx := errgroup.WithContext(ctx)
	// Components run on their own context, cancelled only after the servers
	// stop, so the last batches still commit.
	compCtx, stopComponents := context.WithCancel(context.Background())
	defer stopComponents()
	comps, _ := errgroup.WithContext(compCtx)
	comps.Go(func() error { return h.store.Run(compCtx) })
	comps.Go(func() error { return h.live.Run(compCtx) })
	comps.Go(func() error { return h.ingest.Run(compCtx) })
	h.runAlerts(compCtx, comps)
	h.runSecurity(compCtx, comps)
	h.runEdge(compCtx, comps)
	h.runRemoteWrite(compCtx, comps)
	h.runMetadataWatch(compCtx, comps)
	h.runBus(compCtx, comps)

	g.Go(func() error {
		if err := h.grpcSrv.Serve(h.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := h.httpSrv.Serve(h.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	h.ready.Store(true)
	if h.tlsConf == nil {
		for _, a := range []struct{ flag, addr string }{{"--listen-http", h.HTTPAddr()}, {"--listen-grpc", h.GRPCAddr()}} {
			if !config.IsLoopback(a.addr) {
				h.log.Warn("PLAINTEXT on a non-loopback address: tokens, passwords and metrics cross the network unencrypted; give --tls-cert and --tls-key",
					"flag", a.flag, "addr", a.addr)
			}
		}
	}
	h.log.Info("hub ready", "http", h.URL(), "grpc", h.GRPCAddr(), "data_dir", h.cfg.DataDir)

	<-gctx.Done()
	h.ready.Store(false)
	h.log.Info("hub shutting down", "agent_streams_closed_after", streamGrace)
	done := make(chan struct{})
	go func() { h.grpcSrv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(streamGrace):
		h.grpcSrv.Stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), h.shutdown)
	defer cancel()
	_ = h.httpSrv.Shutdown(sctx)
	err := g.Wait()
	stopComponents()
	if cerr := comps.Wait(); cerr != nil && !errors.Is(cerr, context.Canceled) && err == nil {
		err = cerr
	}
	return err
}

// readiness is GET /ready's answer: nil once Run serves, until it stops,
// while the storage takes samples; else why not.
func (h *Hub) readiness() error {
	if !h.ready.Load() {
		return errors.New("not ready: starting or shutting down")
	}
	if err := h.store.Writable(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	if err := h.readyBus(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	return nil
}

func (h *Hub) closeAll() {
	if h.grpcLn != nil {
		_ = h.grpcLn.Close()
	}
	if h.httpLn != nil {
		_ = h.httpLn.Close()
	}
	h.closeBus()
	h.closeRemoteWrite()
	if h.store != nil {
		if err := h.store.Close(); err != nil {
			h.log.Error("close storage", "err", err)
		}
		h.store = nil
	}
	if h.db != nil {
		if err := h.db.Close(); err != nil {
			h.log.Error("close metadata database", "err", err)
		}
		h.db = nil
	}
}

// limits turns the configured label limits into ingest's validation limits.
func limits(l Limits) metric.Limits {
	out := metric.DefaultLimits
	if l.MaxLabels > 0 {
		out.MaxLabels = l.MaxLabels
	}
	if l.MaxLabelValueLength > 0 {
		out.MaxLabelValueLength = l.MaxLabelValueLength
	}
	return out
}

// seriesIdle is how long a series keeps counting against the series caps
// after its last use: the storage head's span (3h), or the raw retention
// when that is shorter.
func seriesIdle(retentionRaw time.Duration) time.Duration {
	if retentionRaw > 0 && retentionRaw < 3*time.Hour {
		return retentionRaw
	}
	return 3 * time.Hour
}
