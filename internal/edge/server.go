package edge

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
)

// MinKeyLength is the shortest publish key the edge accepts, in characters
// (see ValidateKey).
const MinKeyLength = 16

// Options configures a Server. Key is required; the other zero values take
// the documented defaults.
type Options struct {
	ListenHTTP string // default 127.0.0.1:8080
	// Key is the publish key a hub must present (Authorization: Bearer);
	// at least MinKeyLength bytes. There is no way to run without one.
	Key     string
	TLSCert string // PEM files: serve HTTPS (and wss://); both or neither
	TLSKey  string
	// Window is the span of the recent values kept per series; default 5m.
	Window time.Duration
	// Points is the number of window buckets per series; default 300
	// (one per second for 5m). A bucket keeps its newest value.
	Points int
	// MaxMachines bounds the machines kept; default 10000. Messages that
	// would add more are rejected.
	MaxMachines int
	// WSQueue is the per-browser event queue (see live.Subscription);
	// default 64.
	WSQueue int
	// WriteTimeout bounds one message to a browser; a browser that takes
	// longer is dropped. Default 5s.
	WriteTimeout time.Duration
	// MaxViewers bounds the open browser streams (/ws, memory); default
	// 50,000. A browser beyond it is answered 503.
	MaxViewers int
	// MaxConnsPerIP is how many connections one client address (an IPv4
	// address, or an IPv6 /64) may hold open, browsers and the publishing
	// hub alike; a further one is closed as soon as it is accepted.
	// Default 256, negative: no limit.
	MaxConnsPerIP int
	// ConnLimitExempt lists client addresses without that limit; nil:
	// loopback (127.0.0.0/8, ::1), where a reverse proxy on the edge's
	// host speaks for every browser.
	ConnLimitExempt []netip.Prefix
	Logger          *slog.Logger
}

// Server is a running edge: the publish endpoint, the read-only API and
// page, and the browser stream.
type Server struct {
	opts    Options
	log     *slog.Logger
	state   *State
	fan     *live.State // fan-out of browser events (bounded, coalescing queues)
	keyHash [sha256.Size]byte
	ln      net.Listener
	srv     *http.Server
	tls     bool
	handler http.Handler

	ctx    context.Context // cancelled on shutdown: ends every WebSocket
	cancel context.CancelFunc

	pubMu  sync.Mutex // protects pubSeq and pubConn
	pubSeq uint64     // id of the current publisher; 0 when none
	pub    *publisher

	snapMu      sync.Mutex // protects the browser snapshot cache below
	snapBytes   []byte
	snapVersion uint64
	snapAt      time.Time

	badLog     rate.Sometimes // rate-limits the log line of rejected messages
	refusedLog rate.Sometimes // rate-limits the log line of refused browsers
	reg        *prometheus.Registry

	// Counters shown by GET /health.
	accepted       atomic.Uint64 // publish messages applied
	rejected       atomic.Uint64 // publish messages rejected
	unauthorized   atomic.Uint64 // publish attempts without the key
	publishers     atomic.Uint64 // publisher connections accepted
	clients        atomic.Int64  // browser streams open or being opened
	droppedClients atomic.Uint64 // browser streams cut for being too slow
	refusedClients atomic.Uint64 // browser streams refused at MaxViewers
}

// New checks opts and binds the listener, so that a port conflict or a
// missing key is reported before Run.
func New(opts Options) (*Server, error) {
	if opts.Key == "" {
		return nil, &config.SettingError{Reason: "no publish key configured: set {key} (or SYSMONSTM_KEY) to a random secret of at least 16 characters, the same as the hub's {edge-key}; the edge never runs without one"}
	}
	if err := ValidateKey(opts.Key); err != nil {
		return nil, keyError("key", err)
	}
	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		return nil, &config.SettingError{Reason: "{tls-cert} and {tls-key} go together: give both or neither"}
	}
	if opts.ListenHTTP == "" {
		opts.ListenHTTP = "127.0.0.1:8080"
	}
	if opts.Window <= 0 {
		opts.Window = 5 * time.Minute
	}
	if opts.Points <= 0 {
		opts.Points = 300
	}
	if opts.MaxMachines <= 0 {
		opts.MaxMachines = 10000
	}
	if opts.WSQueue <= 0 {
		opts.WSQueue = 64
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.MaxViewers <= 0 {
		opts.MaxViewers = 50_000
	}
	if opts.MaxConnsPerIP == 0 {
		opts.MaxConnsPerIP = 256
	}
	if opts.ConnLimitExempt == nil {
		opts.ConnLimitExempt = netguard.Loopback()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fan, err := live.New(live.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		state:   newState(opts.Window, opts.Points, opts.MaxMachines),
		fan:     fan,
		keyHash: sha256.Sum256([]byte(opts.Key)),
		badLog:  rate.Sometimes{First: 5, Interval: 10 * time.Second},
		reg:     prometheus.NewRegistry(),

		refusedLog: rate.Sometimes{First: 1, Interval: time.Minute},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()

	var tlsConf *tls.Config
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.tls = true
	}
	if s.ln, err = net.Listen("tcp", opts.ListenHTTP); err != nil {
		return nil, &config.SettingError{Setting: "listen-http", Value: opts.ListenHTTP, Reason: "cannot listen (is another edge running? change {listen-http})", Err: err}
	}
	s.ln = netguard.Limit(sndbufListener{s.ln}, netguard.ListenerOptions{
		Name:       "http",
		MaxPerAddr: opts.MaxConnsPerIP,
		Exempt:     opts.ConnLimitExempt,
		Metrics:    netguard.NewMetrics(s.reg),
		Logger:     s.log.With("component", "netguard"),
	}) // under TLS: the handshake counts
	s.registerMetrics()
	if tlsConf != nil {
		s.ln = tls.NewListener(s.ln, tlsConf)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv.RegisterOnShutdown(s.cancel)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the page's URL.
func (s *Server) URL() string {
	if s.tls {
		return "https://" + s.Addr() + "/"
	}
	return "http://" + s.Addr() + "/"
}

// Run serves until ctx is done, then closes every WebSocket (1001) and
// shuts the HTTP server down within 10 s.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("edge ready", "url", s.URL(), "window", s.opts.Window, "max_machines", s.opts.MaxMachines)
	select {
	case err := <-errc:
		s.cancel()
		return fmt.Errorf("HTTP server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("edge shutting down")
	s.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("HTTP server: %w", err)
	}
	return nil
}

// Close ends every WebSocket without stopping the listener (tests that
// serve Handler themselves).
func (s *Server) Close() {
	s.cancel()
	_ = s.ln.Close()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /api/machines", s.handleMachines)
	mux.HandleFunc("GET /api/machines/{id}", s.handleMachine)
	mux.HandleFunc("GET /api/publish", s.handlePublish)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.HandleFunc("GET /ui/{file}", serveAsset)
	return s.recoverPanics(securityHeaders(s.tls, httpjson.NotFound(mux, "method not allowed: the edge is read-only")))
}

// handleHealth answers 200 while the process runs, with the publisher
// state and counters.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	machines, publisher, droppedSeries := s.state.stats()
	writeJSON(w, http.StatusOK, map[string]any{
		"status":                  "ok",
		"publisher":               publisher,
		"machines":                machines,
		"clients":                 s.clients.Load(),
		"dropped_clients":         s.droppedClients.Load(),
		"refused_clients":         s.refusedClients.Load(),
		"publish_connections":     s.publishers.Load(),
		"accepted_messages":       s.accepted.Load(),
		"rejected_messages":       s.rejected.Load(),
		"unauthorized_publishers": s.unauthorized.Load(),
		"dropped_series":          droppedSeries,
	})
}

// handleMachines answers GET /api/machines: every public machine with its
// latest values.
func (s *Server) handleMachines(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.state.list(false))
}

// handleMachine answers GET /api/machines/{id}: one machine with the window
// of every series.
func (s *Server) handleMachine(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, ok := s.state.machine(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown machine %q", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// securityHeaders sets the headers every response carries and keeps
// request bodies from holding a connection: no endpoint takes one, so a
// request that declares one is served without reading it and its
// connection closed after the answer. (Otherwise net/http would read up to
// 256 KiB of it after the answer, with no deadline: a client dripping a
// body would hold the connection and its goroutine for ever.)
func securityHeaders(tlsOn bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if tlsOn {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if r.ContentLength != 0 { // -1: chunked
			h.Set("Connection", "close")
			// Fails the read of the unread body after the answer at once.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			r.Body = http.NoBody
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v as the JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) { httpjson.Error(w, status, msg) }

// recoverPanics answers 500 {"error":"internal error"} when a handler panics
// and logs the stack; the client never sees it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(v)
			}
			s.log.Error("http handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// connSendBuffer caps the kernel send buffer of every connection (bytes):
// the memory a viewer that stops reading can pin is bounded, and such a
// viewer blocks its writer (and is cut) long before the kernel's default
// autotuned buffer of several MiB would fill.
const connSendBuffer = 512 << 10

// sndbufListener sets connSendBuffer on every accepted TCP connection.
type sndbufListener struct{ net.Listener }

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(connSendBuffer)
	}
	return c, err
}
