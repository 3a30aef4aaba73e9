package live

import "github.com/prometheus/client_golang/prometheus"

// Stages of sysmonstm_live_delay_seconds (its label stage).
const (
	// DelayPublish: from the hub's receipt of an agent's batch (its gRPC
	// message read and decoded) until ingest's Live.Update returned: the
	// live state has queued its metrics event for every subscriber (and
	// the hub's alert engine, behind the same Update, has evaluated it);
	// observed by ingest for agent streams.
	DelayPublish = "publish"
	// DelayWebSocket: from Update taking the batch (Event.At) until the
	// event's WebSocket message is written to a client; observed once per
	// client and event by the web server.
	DelayWebSocket = "websocket"
)

// NewDelayHistogram returns the sysmonstm_live_delay_seconds histogram of
// one stage (DelayPublish, DelayWebSocket). The stages are separate
// collectors with a constant label, so that ingest and the web server
// each register their own in the same registry.
func NewDelayHistogram(stage string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "sysmonstm_live_delay_seconds",
		Help:        "Delay of the live path in seconds, by stage: publish = agent batch received → its metrics event queued for subscribers and evaluated by the alert rules; websocket = event queued → written to a WebSocket client.",
		ConstLabels: prometheus.Labels{"stage": stage},
		// 100 µs … 3.3 s.
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
}
