package netguard

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection is refused or cut (label of
// sysmonstm_rejected_connections_total).
const (
	ReasonPerIPLimit  = "per_ip_limit" // over the open connections of one address
	ReasonBodyTimeout = "body_timeout" // a request body slower than its deadline
)

// Metrics counts what the guards refuse. One Metrics serves every listener
// of a process; its methods are safe for concurrent use.
type Metrics struct {
	rejected *prometheus.CounterVec
}

// NewMetrics registers the guards' counters on reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_rejected_connections_total",
			Help: "Connections refused at accept or cut while a request body was slow, by listener and reason.",
		}, []string{"listener", "reason"}),
	}
	m.rejected.WithLabelValues("http", ReasonPerIPLimit)
	m.rejected.WithLabelValues("grpc", ReasonPerIPLimit)
	m.rejected.WithLabelValues("http", ReasonBodyTimeout)
	if reg != nil {
		reg.MustRegister(m.rejected)
	}
	return m
}

func (m *Metrics) reject(listener, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(listener, reason).Inc()
	}
}

// onceLog logs a warning at most once per key and period, so a client
// hammering a limit is reported without flooding the log. mu protects last.
type onceLog struct {
	log    *slog.Logger
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
}

// maxLogKeys bounds onceLog's memory: past it the map starts over.
const maxLogKeys = 10_000

func newOnceLog(l *slog.Logger, period time.Duration) *onceLog {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &onceLog{log: l, period: period, last: map[string]time.Time{}}
}

func (l *onceLog) warn(key, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.period {
		l.mu.Unlock()
		return
	}
	if len(l.last) >= maxLogKeys {
		clear(l.last)
	}
	l.last[key] = now
	l.mu.Unlock()
	l.log.Warn(msg, args...)
}
