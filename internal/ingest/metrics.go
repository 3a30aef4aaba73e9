package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// Reasons a sample is dropped (label of sysmonstm_dropped_samples_total).
const (
	reasonInvalidBatch  = "invalid_batch"
	reasonInvalidValue  = "invalid_value"
	reasonInvalidSeries = "invalid_series"
	reasonUnknownSeries = "unknown_series"
	reasonTooNew        = "too_far_in_future"
	reasonTooOld        = "too_old"
	reasonDuplicate     = "duplicate"
	reasonOutOfOrder    = "out_of_order"
	reasonStorage       = "storage_error"
	reasonReservedName  = "reserved_name" // a sysmonstm_* name, reserved for the hub
	reasonSeriesLimit   = "series_limit"  // a new series over a series cap
	reasonDiskFull      = "disk_full"     // refused while storage is short of space; agents resend
)

// Reasons a stream or request is refused as a whole (label of
// sysmonstm_rejected_requests_total).
const (
	rejectUnauthenticated = "unauthenticated"   // no or invalid token
	rejectPermission      = "permission_denied" // token not valid for the machine
	rejectTooLarge        = "too_large"         // body or message over the size limit
	rejectMalformed       = "malformed"         // undecodable body, invalid hello, protocol violation
	rejectTooManySeries   = "too_many_series"   // series table or active series over a series cap
	rejectDiskFull        = "disk_full"         // storage short of space: stream or request refused, sender resends
	rejectBusy            = "busy"              // every remote-write request slot taken: 429, sender retries
)

type metrics struct {
	rejected         *prometheus.CounterVec
	ingested         prometheus.Counter
	dropped          *prometheus.CounterVec
	invalidSeries    prometheus.Counter
	batches          prometheus.Counter
	duplicateBatches prometheus.Counter
	streams          prometheus.Gauge
	commitSeconds    prometheus.Histogram
	liveDelay        prometheus.Histogram // sysmonstm_live_delay_seconds{stage="publish"}
	rejectedSnaps    prometheus.Counter
	refusedSeries    *prometheus.CounterVec
	activeSeries     prometheus.GaugeFunc
	rwRequests       *prometheus.CounterVec
	rwSamples        prometheus.Counter
}

// newMetrics builds the ingest metrics; active reports the active series
// counted against the series caps.
func newMetrics(reg prometheus.Registerer, active func() float64) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_rejected_requests_total",
			Help: "Agent streams and ingest requests refused as a whole, by reason.",
		}, []string{"reason"}),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_ingested_samples_total", Help: "Samples written to storage.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_dropped_samples_total", Help: "Samples not stored, by reason.",
		}, []string{"reason"}),
		invalidSeries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_invalid_series_total", Help: "Series definitions rejected by validation.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_ingest_batches_total", Help: "Agent batches stored and acknowledged.",
		}),
		duplicateBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_ingest_duplicate_batches_total", Help: "Replayed batches already stored, acknowledged without writing.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_agent_streams", Help: "Open agent gRPC streams.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sysmonstm_ingest_commit_seconds", Help: "Duration of one group commit to the write-ahead log.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		liveDelay: live.NewDelayHistogram(live.DelayPublish),
		rejectedSnaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_rejected_process_snapshots_total", Help: "Top-process snapshots rejected by validation.",
		}),
		refusedSeries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_refused_series_total",
			Help: "New series refused because a series cap was reached, by cap: max_series_per_machine, max_active_series, or memory (the hub's memory above its --max-memory high-water mark).",
		}, []string{"limit"}),
		activeSeries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sysmonstm_active_series",
			Help: "Distinct series of all machines counted against the series caps (held by a stream, or written within the idle window).",
		}, active),
		rwRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_remote_write_requests_total",
			Help: "Prometheus remote-write requests (POST /api/v1/write) answered, by HTTP status code.",
		}, []string{"code"}),
		rwSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_remote_write_samples_received_total",
			Help: "Samples (float and native histogram) in decoded remote-write requests, stored or not; stored ones also count in sysmonstm_ingested_samples_total, refused ones in sysmonstm_dropped_samples_total.",
		}),
	}
	for _, r := range []string{reasonInvalidBatch, reasonInvalidValue, reasonInvalidSeries, reasonUnknownSeries,
		reasonTooNew, reasonTooOld, reasonDuplicate, reasonOutOfOrder, reasonStorage, reasonReservedName, reasonSeriesLimit, reasonDiskFull, reasonUnsupported} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{rejectUnauthenticated, rejectPermission, rejectTooLarge, rejectMalformed, rejectTooManySeries, rejectDiskFull, rejectBusy} {
		m.rejected.WithLabelValues(r)
	}
	for _, l := range []string{limitPerMachine, limitActive, limitMemory} {
		m.refusedSeries.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(m.rejected, m.ingested, m.dropped, m.invalidSeries, m.batches, m.duplicateBatches, m.streams, m.commitSeconds, m.liveDelay, m.rejectedSnaps,
			m.refusedSeries, m.activeSeries, m.rwRequests, m.rwSamples)
	}
	return m
}

// limitedLog logs a warning once per key and period, so a misbehaving agent
// is reported without flooding the log. mu protects last.
type limitedLog struct {
	logger *slog.Logger
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
}

func newLimitedLog(l *slog.Logger, period time.Duration) *limitedLog {
	return &limitedLog{logger: l, period: period, last: map[string]time.Time{}}
}

func (l *limitedLog) warn(key, msg string, args ...any) { l.log(slog.LevelWarn, key, msg, args...) }

// log logs at level once per key and period.
func (l *limitedLog) log(level slog.Level, key, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.period {
		l.mu.Unlock()
		return
	}
	if len(l.last) > 10_000 {
		clear(l.last)
	}
	l.last[key] = now
	l.mu.Unlock()
	l.logger.Log(context.Background(), level, msg, args...)
}
