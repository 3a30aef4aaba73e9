package alert

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// engineMetrics are the engine's self-telemetry (see docs/alerts.md).
type engineMetrics struct {
	evaluations   prometheus.Counter
	transitions   *prometheus.CounterVec // to
	notifications *prometheus.CounterVec // result
	alerts        *prometheus.GaugeVec   // state, severity
	leader        prometheus.Gauge
	leaderChanges prometheus.Counter
	outboxPending prometheus.Gauge
}

func newEngineMetrics(r prometheus.Registerer) (*engineMetrics, error) {
	m := &engineMetrics{
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_alert_evaluations_total",
			Help: "Samples evaluated against alert rules (one per matching rule and sample).",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_alert_transitions_total",
			Help: "Alert state changes by the state entered (pending, firing, resolved, inactive = pending that broke off).",
		}, []string{"to"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_alert_notifications_total",
			Help: "Notification routing outcomes: queued (a message handed to a channel), sent, failed, dropped (channel queue full), unrouted (an alert change no channel takes), repeat (a repeat of a firing alert).",
		}, []string{"result"}),
		alerts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sysmonstm_alerts",
			Help: "Active alerts by state (pending, firing) and severity.",
		}, []string{"state", "severity"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_alert_leader",
			Help: "1 while this hub writes alert state and sends notifications (always on SQLite; on PostgreSQL, the hub holding the leader lock), else 0.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysmonstm_alert_leader_changes_total",
			Help: "Times this hub took or lost the alert leadership (PostgreSQL).",
		}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysmonstm_alert_outbox_pending",
			Help: "Notifications recorded in the PostgreSQL outbox and not yet sent, as the leader counts them every second (0 on followers and on SQLite).",
		}),
	}
	for _, s := range []string{StatePending, StateFiring} {
		for _, sev := range []string{SeverityWarning, SeverityCritical} {
			m.alerts.WithLabelValues(s, sev).Set(0)
		}
	}
	for _, to := range []string{StatePending, StateFiring, StateResolved, StateInactive} {
		m.transitions.WithLabelValues(to)
	}
	for _, res := range []string{"queued", "sent", "failed", "dropped", "unrouted", "repeat", "not_leader"} {
		m.notifications.WithLabelValues(res)
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.evaluations, m.transitions, m.notifications, m.alerts, m.leader, m.leaderChanges, m.outboxPending} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("register alert metrics: %w", err)
			}
		}
	}
	return m, nil
}

// setAlertGauges recounts sysmonstm_alerts. Caller holds Engine.mu.
func (m *engineMetrics) setAlertGauges(active map[string]*record) {
	var n [2][2]int
	for _, r := range active {
		i, j := 0, 0
		if r.a.State == StateFiring {
			i = 1
		}
		if r.a.Severity == SeverityCritical {
			j = 1
		}
		n[i][j]++
	}
	for i, s := range []string{StatePending, StateFiring} {
		for j, sev := range []string{SeverityWarning, SeverityCritical} {
			m.alerts.WithLabelValues(s, sev).Set(float64(n[i][j]))
		}
	}
}
