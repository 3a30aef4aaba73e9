package store

import "github.com/prometheus/client_golang/prometheus"

// storeMetrics are the downsampler's own metrics; the TSDB tiers register
// theirs with a "tier" label.
type storeMetrics struct {
	runs         prometheus.Counter
	failures     prometheus.Counter
	samples      *prometheus.CounterVec // by tier
	rejected     *prometheus.CounterVec // by tier
	lastDuration prometheus.Gauge
	hours        *prometheus.CounterVec // by source
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_store_rollup_runs_total",
			Help: "Rollup passes run.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_store_rollup_failures_total",
			Help: "Rollup passes that ended with an error.",
		}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_store_rollup_samples_total",
			Help: "Rollup samples written, by destination tier.",
		}, []string{"tier"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_store_rollup_rejected_samples_total",
			Help: "Rollup samples the destination tier refused (too old, or a recomputed bucket that changed).",
		}, []string{"tier"}),
		lastDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_store_rollup_last_duration_seconds",
			Help: "Duration of the last rollup pass.",
		}),
		hours: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_store_rollup_machine_hours_total",
			Help: "Machine-hours rolled up into the 1m tier, by source: minutes (kept as the samples arrived) or raw (read back from the raw tier).",
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.failures, m.samples, m.rejected, m.lastDuration, m.hours)
	}
	return m
}
