package bus

import "github.com/prometheus/client_golang/prometheus"

// metrics are the bus's sysmonstm_bus_* self-metrics (docs/api.md).
type metrics struct {
	connected        prometheus.Gauge
	published        prometheus.Counter
	publishErrors    prometheus.Counter
	stored           prometheus.Counter
	storeFailed      prometheus.Counter
	redelivered      prometheus.Counter
	pending          prometheus.Gauge
	badMessages      prometheus.Counter
	applied          *prometheus.CounterVec
	followerRestarts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmonstm_bus_connected",
			Help: "1 while the hub is connected to NATS, else 0."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_published_batches_total",
			Help: "Agent batches JetStream acknowledged to this hub (duplicates included)."}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_publish_errors_total",
			Help: "Publishes to JetStream that failed or were not acknowledged in time (batch groups and live updates)."}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_stored_samples_total",
			Help: "Samples this hub's storage consumer wrote to the remote-write targets (2xx from each)."}),
		storeFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_store_failed_samples_total",
			Help: "Samples a remote-write target refused for good (4xx other than 429); their messages are terminated."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_redeliveries_total",
			Help: "Batches the storage consumer got again (a hub died or timed out before acknowledging them)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmonstm_bus_consumer_pending",
			Help: "Batches waiting for the shared storage consumer, as of this hub's last fetch (its lag)."}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_bad_messages_total",
			Help: "Bus messages dropped as undecodable or invalid."}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmonstm_bus_live_updates_total",
			Help: "Other hubs' live updates applied to this hub's live state, by kind."}, []string{"kind"}),
		followerRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmonstm_bus_follower_restarts_total",
			Help: "Times a live-view follower stalled behind its stream and was recreated after its last message."}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.published, m.publishErrors, m.stored, m.storeFailed, m.redelivered, m.pending, m.badMessages, m.applied, m.followerRestarts)
	}
	return m
}
