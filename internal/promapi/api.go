// Package promapi serves the Prometheus HTTP query API (/api/v1/query,
// query_range, series, labels, label values, metadata, buildinfo) over the
// store's history with Prometheus' own PromQL engine, so Prometheus clients
// (Grafana, promtool) work against the hub.
package promapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
)

// Defaults applied by New to zero Options fields; they are Prometheus'
// own defaults, so a query that runs there runs here.
const (
	DefaultMaxSamples    = 50_000_000 // samples one query may hold in memory at once
	DefaultTimeout       = 2 * time.Minute
	DefaultLookbackDelta = 5 * time.Minute
	// MaxPointsPerSeries is Prometheus' limit on (end-start)/step of a
	// range query.
	MaxPointsPerSeries = 11000
	// DefaultMaxBodyBytes bounds a POST form.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxConcurrent is how many queries run at once (Prometheus'
	// --query.max-concurrency default).
	DefaultMaxConcurrent = 20
	// DefaultMaxSeries is how many series one query may select or answer,
	// and one /api/v1/series answer hold (Prometheus has no such limit).
	DefaultMaxSeries = 500_000
)

// Options configures an API.
type Options struct {
	// Queryable is the history the queries read (store.Store.Queryable:
	// raw samples, then minute averages beyond the raw retention);
	// required.
	Queryable storage.Queryable
	// Live is the live state GET /federate reads; nil serves no /federate.
	Live Latest
	// MaxSamples bounds the samples one query holds in memory at once; a
	// query that needs more fails with errorType "execution". 0 =
	// DefaultMaxSamples.
	MaxSamples int
	// Timeout bounds one query's evaluation; a query that runs longer
	// fails with errorType "timeout" (503). A request's timeout parameter
	// may shorten it, never lengthen it. 0 = DefaultTimeout.
	Timeout time.Duration
	// MaxSeries bounds the series one query selects (over all its
	// selectors) and answers, and the series one /api/v1/series answer
	// lists; beyond it the request fails with errorType "execution" (422).
	// 0 = DefaultMaxSeries.
	MaxSeries int
	// MaxConcurrent bounds the queries evaluated at once; further ones
	// wait for a slot within their timeout. 0 = DefaultMaxConcurrent.
	MaxConcurrent int
	// LookbackDelta is how far back an instant selector looks for a
	// sample, and how old a latest value /federate still serves; 0 =
	// DefaultLookbackDelta.
	LookbackDelta time.Duration
	// MaxBodyBytes bounds a POST form body; 0 = DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Registerer receives the engine's prometheus_engine_* metrics; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock for a query without a time; nil = time.Now.
	Now func() time.Time
}

// API is the Prometheus query API. It is safe for concurrent use.
type API struct {
	opts   Options
	engine *promql.Engine
	// queryable is Options.Queryable limited to MaxSeries per query.
	queryable storage.Queryable
	now       func() time.Time
	// slots holds one token per query being evaluated (MaxConcurrent).
	slots chan struct{}
}

// New builds the API and its PromQL engine.
func New(opts Options) *API {
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = DefaultMaxSamples
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = DefaultLookbackDelta
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	eng := promql.NewEngine(promql.EngineOpts{
		Logger:        opts.Logger,
		Reg:           opts.Registerer,
		MaxSamples:    opts.MaxSamples,
		Timeout:       opts.Timeout,
		LookbackDelta: opts.LookbackDelta,
		// Prometheus' default for subqueries without a step: the
		// global evaluation interval, 1m.
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	})
	return &API{opts: opts, engine: eng, queryable: seriesLimited{opts.Queryable, opts.MaxSeries}, now: opts.Now, slots: make(chan struct{}, opts.MaxConcurrent)}
}

// Routes returns the API's handlers, and GET /federate when Options.Live is
// set. As in Prometheus, query, query_range, series and labels also take
// POST (a form body, as Grafana sends them); the others are GET only.
func (a *API) Routes() []httpjson.Route {
	var rs []httpjson.Route
	add := func(path string, post bool, h func(*http.Request) result) {
		rs = append(rs, httpjson.Route{Pattern: http.MethodGet + " " + path, Handler: a.serve(h)})
		if post {
			rs = append(rs, httpjson.Route{Pattern: http.MethodPost + " " + path, Handler: a.serve(h)})
		}
	}
	add("/api/v1/query", true, a.query)
	add("/api/v1/query_range", true, a.queryRange)
	add("/api/v1/series", true, a.series)
	add("/api/v1/labels", true, a.labelNames)
	add("/api/v1/label/{name}/values", false, a.labelValues)
	add("/api/v1/metadata", false, a.metadata)
	add("/api/v1/status/buildinfo", false, a.buildInfo)
	if a.opts.Live != nil {
		rs = append(rs, httpjson.Route{Pattern: "GET /federate", Handler: http.HandlerFunc(a.federate)})
	}
	return rs
}
