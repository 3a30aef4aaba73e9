// Package web serves the hub's HTTP API: machines and their latest values,
// history queries, exports, the live WebSocket stream, self-telemetry and the
// embedded UI.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// History is the stored-data side the API reads; *store.Store satisfies
// it, and *history.Client (an external TSDB, hub --history-url).
type History interface {
	Query(ctx context.Context, q store.Query) (*store.Result, error)
	Export(ctx context.Context, q store.Query, fn store.ExportFunc) error
}

// ClientError is implemented by History errors that are the caller's fault
// (e.g. a range with too many points); they answer 400 instead of 500.
type ClientError interface {
	error
	ClientError() bool
}

// Unavailable is implemented by History errors of a backend that cannot
// answer now (an external TSDB down); they answer 503 with their message,
// which must hold no secret.
type Unavailable interface {
	error
	Unavailable() bool
}

// Options configures a Server.
type Options struct {
	Live    *live.State // required
	History History     // required
	// Ingest is mounted at POST /api/v1/ingest when not nil.
	Ingest http.Handler
	// RemoteWrite is mounted at POST /api/v1/write when not nil.
	RemoteWrite http.Handler
	// RemoteWriteMachineLabel is the label whose value is the id of a
	// machine of source remote_write: its history and export select its
	// series by it; "" = instance.
	RemoteWriteMachineLabel string
	Gatherer                prometheus.Gatherer   // served at GET /metrics when not nil
	Registerer              prometheus.Registerer // receives sysmonstm_websocket_clients and sysmonstm_live_delay_seconds{stage="websocket"}; nil registers nothing
	Ready                   func() error          // GET /ready: nil = ready, else the reason (503); nil func = always ready
	Logger                  *slog.Logger
	// MaxQueryPoints bounds the points per series a history query may ask
	// for ((to-from)/step); default 11000.
	MaxQueryPoints int
	// WSQueue is the per-client event queue of /ws; default live.DefaultQueue.
	WSQueue int
	// Now is the clock for relative times ("now", "-1h"); default time.Now.
	Now func() time.Time
	// Routes are further handlers mounted on the same mux (alerts, auth,
	// admin APIs), with http.ServeMux patterns such as "GET /api/rules".
	Routes []httpjson.Route
	// Middleware wraps every route (authentication and authorization);
	// nil serves every request as is.
	Middleware func(http.Handler) http.Handler
}

// Server is the HTTP API.
type Server struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	wsClients prometheus.Gauge
	liveDelay prometheus.Histogram // sysmonstm_live_delay_seconds{stage="websocket"}
	handler   http.Handler

	ctx    context.Context // cancelled by Close: ends every WebSocket
	cancel context.CancelFunc
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if opts.Live == nil {
		return nil, errors.New("web: Options.Live is required")
	}
	if opts.History == nil {
		return nil, errors.New("web: Options.History is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxQueryPoints <= 0 {
		opts.MaxQueryPoints = 11000
	}
	if opts.WSQueue <= 0 {
		opts.WSQueue = live.DefaultQueue
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		now:  opts.Now,
		wsClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_websocket_clients",
			Help: "WebSocket clients connected to /ws.",
		}),
		liveDelay: live.NewDelayHistogram(live.DelayWebSocket),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.wsClients, s.liveDelay} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register web metrics: %w", err)
			}
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends every WebSocket connection with 1001 (going away). Hijacked
// connections are not tracked by http.Server.Shutdown: register it with
// http.Server.RegisterOnShutdown. Afterwards /ws answers 503.
func (s *Server) Close() {
	s.cancel()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", s.handleReady)
	mux.HandleFunc("GET /api/machines", s.handleMachines)
	mux.HandleFunc("GET /api/machines/{id}", s.handleMachine)
	mux.HandleFunc("DELETE /api/machines/{id}", s.handleForget)
	mux.HandleFunc("GET /api/machines/{id}/history", s.handleHistory)
	mux.HandleFunc("GET /api/export", s.handleExport)
	mux.HandleFunc("GET /ws", s.handleWS)
	if s.opts.Ingest != nil {
		mux.Handle("POST /api/v1/ingest", s.opts.Ingest)
	}
	if s.opts.RemoteWrite != nil {
		mux.Handle("POST /api/v1/write", s.opts.RemoteWrite)
	}
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		}))
	}
	for _, rt := range s.opts.Routes {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.HandleFunc("GET /machines/{id}", serveIndex)
	for _, page := range []string{"alerts", "rules", "silences", "notifiers", "login", "admin", "explore"} {
		mux.HandleFunc("GET /"+page, serveIndex)
	}
	mux.HandleFunc("GET /app.js", serveAppJS)
	mux.HandleFunc("GET /ui/{path...}", serveUIAsset)

	var h http.Handler = httpjson.NotFound(mux, "method not allowed")
	if s.opts.Middleware != nil {
		h = s.opts.Middleware(h)
	}
	return s.logRequests(SecurityHeaders(s.recoverPanics(h)))
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON writes v as the JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError writes {"error": msg}; an export that fails before its first
// byte drops its attachment header.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Del("Content-Disposition")
	httpjson.Error(w, status, msg)
}

// statusWriter records the status and size of a response; Unwrap lets
// http.ResponseController and the WebSocket upgrade reach the real writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(status int) {
	if sw.status == 0 {
		sw.status = status
	}
	sw.ResponseWriter.WriteHeader(status)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += int64(n)
	return n, err
}

func (sw *statusWriter) Flush() {
	if f, ok := sw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// recoverPanics answers 500 {"error":"internal error"} when a handler panics
// (before it wrote anything) and logs the stack; the client never sees it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(v)
			}
			s.log.Error("http handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// logRequests logs every request at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}
