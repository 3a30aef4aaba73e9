// Package history reads the hub's history back from a Prometheus-compatible
// TSDB (VictoriaMetrics, Prometheus, Mimir, Thanos) through its standard
// query API, for `hub --history-url`: history charts and export
// (web.History) and the PromQL API, proxied.
//
// Data flow:
//
//	agent → ingest → store (+ remote write tee) → TSDB
//	                                               ↑ /api/v1/query*, /api/v1/series
//	browser → web (history, export) → history.Client
//	Grafana → /api/v1/* → history.Proxy ──────────┘
package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 64 << 20
	DefaultExportChunk      = time.Hour
)

// Options configures a Client.
type Options struct {
	// URL is the TSDB's Prometheus query API base (the URL that
	// /api/v1/query is under): http://vm:8428, http://prometheus:9090,
	// http://mimir/prometheus. user:password@ in it is sent as basic auth;
	// https:// uses TLS with the system's roots.
	URL string
	// BearerTokenFile and BasicAuthFile hold credentials read before every
	// request (first line), as for remote write; at most one.
	BearerTokenFile string
	BasicAuthFile   string
	// Timeout bounds one request to the TSDB (connect, query, answer);
	// 0 = DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds one TSDB answer read by history and export;
	// a larger one fails the request. 0 = DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// ExportChunk is the time span of one export request per series; 0 =
	// DefaultExportChunk (3,600 samples at 1 s).
	ExportChunk time.Duration
	// Transport carries the requests; nil = a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Registerer receives sysmonstm_history_requests_total{result} and
	// sysmonstm_history_request_duration_seconds; nil registers nothing.
	Registerer prometheus.Registerer
}

// Client reads history from a TSDB's query API. It is safe for concurrent
// use.
type Client struct {
	opts   Options
	base   *url.URL
	target remotewrite.Target // credentials, and the redacted URL for logs
	http   *http.Client
	log    *slog.Logger
	// requests counts TSDB requests by result: ok, refused (4xx, too
	// large), unavailable (network, timeout, 5xx, credentials, garbage).
	requests *prometheus.CounterVec
	duration prometheus.Histogram

	// mu protects closed and probed.
	mu sync.Mutex
	// closed reports that the TSDB's range selectors include their left
	// end ([t-d, t], Prometheus 2.x) rather than exclude it ((t-d, t],
	// VictoriaMetrics, Prometheus 3); probed that it was asked.
	closed, probed bool
}

// New checks the options and returns a client; it does not contact the
// TSDB.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("history URL %q: want an absolute http(s) URL such as http://victoria:8428", remotewrite.RedactURL(opts.URL))
	}
	if opts.BearerTokenFile != "" && opts.BasicAuthFile != "" {
		return nil, errors.New("history: give a bearer token file or a basic auth file, not both")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.ExportChunk <= 0 {
		opts.ExportChunk = DefaultExportChunk
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		opts: opts, base: u, log: opts.Logger,
		target: remotewrite.Target{URL: opts.URL, BearerTokenFile: opts.BearerTokenFile, BasicAuthFile: opts.BasicAuthFile},
		http:   &http.Client{Transport: opts.Transport, Timeout: opts.Timeout},
	}
	c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sysmonstm_history_requests_total",
		Help: "Requests to the --history-url TSDB (history, export, proxied PromQL) by result: ok, refused (4xx, answer too large), unavailable.",
	}, []string{"result"})
	c.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sysmonstm_history_request_duration_seconds",
		Help:    "Duration of history and export requests to the --history-url TSDB.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})
	for _, r := range []string{"ok", "refused", "unavailable"} {
		c.requests.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		for _, m := range []prometheus.Collector{c.requests, c.duration} {
			if err := opts.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("register history metrics: %w", err)
			}
		}
	}
	return c, nil
}

// count records one TSDB request's result.
func (c *Client) count(err error) {
	var re *RefusedError
	switch {
	case err == nil:
		c.requests.WithLabelValues("ok").Inc()
	case errors.As(err, &re):
		c.requests.WithLabelValues("refused").Inc()
	case errors.Is(err, context.Canceled):
		// the caller went away: no verdict on the TSDB
	default:
		c.requests.WithLabelValues("unavailable").Inc()
	}
}

// Redacted is the TSDB's URL without credentials, for logs.
func (c *Client) Redacted() string { return c.target.Redacted() }

// UnavailableError is a TSDB that could not be reached, timed out, or
// answered with a server error, a refusal of the hub's credentials or
// something that is not a Prometheus API answer. The HTTP layer answers
// 503 with its message (no credentials in it).
type UnavailableError struct{ msg string }

func (e *UnavailableError) Error() string { return e.msg }

// Unavailable marks the error for the HTTP layer (503).
func (e *UnavailableError) Unavailable() bool { return true }

// RefusedError is a query the TSDB refused as the caller's (4xx other than
// 401/403: a limit of the TSDB, a bad selector); the HTTP layer answers 400
// with its message.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// ClientError marks the error for the HTTP layer (400).
func (e *RefusedError) ClientError() bool { return true }

func (c *Client) unavailable(format string, args ...any) error {
	return &UnavailableError{msg: "history TSDB " + c.Redacted() + ": " + fmt.Sprintf(format, args...)}
}

// post sends form to the API path (e.g. /api/v1/query) and returns the
// body of a 2xx answer, read up to MaxResponseBytes.
func (c *Client) post(ctx context.Context, path string, form url.Values) ([]byte, error) {
	began := time.Now()
	body, err := c.do(ctx, path, form)
	c.duration.Observe(time.Since(began).Seconds())
	c.count(err)
	return body, err
}

func (c *Client) do(ctx context.Context, path string, form url.Values) ([]byte, error) {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, c.unavailable("%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sysmonstm-history")
	if err := c.authorize(req); err != nil {
		return nil, c.unavailable("%v", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message quotes the URL, credentials included
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, c.unavailable("no answer within %s", c.opts.Timeout)
		}
		return nil, c.unavailable("unreachable: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.unavailable("reading the answer: %v", err)
	}
	if int64(len(body)) > c.opts.MaxResponseBytes {
		return nil, &RefusedError{msg: fmt.Sprintf("history TSDB answer exceeds %d bytes; use a larger step, a shorter range or narrower matchers", c.opts.MaxResponseBytes)}
	}
	switch {
	case resp.StatusCode/100 == 2:
		return body, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, c.unavailable("refused the hub's credentials (%s); check --history-bearer-token-file or --history-basic-auth-file", resp.Status)
	case resp.StatusCode/100 == 4:
		return nil, &RefusedError{msg: "history TSDB refused the query: " + apiErrorText(body, resp.Status)}
	default:
		return nil, c.unavailable("%s", apiErrorText(body, resp.Status))
	}
}

// apiErrorText is the "error" of a Prometheus API error body, else the
// HTTP status; at most 512 bytes.
func apiErrorText(body []byte, status string) string {
	msg := status
	if r, err := decodeResponse(body); err == nil && r.Error != "" {
		msg = status + ": " + r.Error
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return msg
}

// formatTime is t (ms since epoch) as the API's seconds with milliseconds.
func formatTime(t int64) string {
	return strconv.FormatFloat(float64(t)/1000, 'f', 3, 64)
}
