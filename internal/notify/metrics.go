package notify

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus series. Labels take values from
// fixed sets (channel type, result), never channel names.
type metrics struct {
	messages *prometheus.CounterVec   // sysmonstm_notifications_total{type,result}
	attempts *prometheus.CounterVec   // sysmonstm_notification_attempts_total{type,result}
	duration *prometheus.HistogramVec // sysmonstm_notification_duration_seconds{type}
}

// newMetrics creates the series, at zero for every type and result, and
// registers them on reg when it is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_notifications_total",
			Help: "Notifications by channel type and outcome: success (delivered) or failure (given up after every retry, or not retryable).",
		}, []string{"type", "result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_notification_attempts_total",
			Help: "Delivery attempts by channel type and outcome, retries included.",
		}, []string{"type", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sysmonstm_notification_duration_seconds",
			Help:    "Duration of one delivery attempt (connect, send, read the answer) by channel type, in seconds.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
	}
	for _, t := range Types() {
		for _, r := range []string{"success", "failure"} {
			m.messages.WithLabelValues(t, r)
			m.attempts.WithLabelValues(t, r)
		}
		m.duration.WithLabelValues(t)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.attempts, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("notify: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func result(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

// attempt counts one delivery attempt that took d.
func (m *metrics) attempt(typ string, ok bool, d time.Duration) {
	m.attempts.WithLabelValues(typ, result(ok)).Inc()
	m.duration.WithLabelValues(typ).Observe(d.Seconds())
}

// message counts one message's final outcome.
func (m *metrics) message(typ string, ok bool) {
	m.messages.WithLabelValues(typ, result(ok)).Inc()
}
