package auth

import "github.com/prometheus/client_golang/prometheus"

// Reasons a login is refused (label of sysmonstm_login_refusals_total).
const (
	// RefusedLocked: the client address or the user name is locked out,
	// or the attempts already being checked for it could use up the
	// failures left before its lock (429).
	RefusedLocked = "locked"
	// RefusedBusy: every password check was busy for PasswordCheckWait,
	// or too many logins were waiting for one (503).
	RefusedBusy = "busy"
	// RefusedBadCredentials: unknown user or wrong password (401).
	RefusedBadCredentials = "bad_credentials"
)

// loginMetrics counts refused logins. Its methods are safe for concurrent
// use.
type loginMetrics struct {
	refused *prometheus.CounterVec
}

// newLoginMetrics registers the login counters on reg (nil: not exported).
func newLoginMetrics(reg prometheus.Registerer) *loginMetrics {
	m := &loginMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sysmonstm_login_refusals_total",
			Help: "Logins refused, by reason: locked (lock-out), busy (no free password check), bad_credentials (unknown user or wrong password).",
		}, []string{"reason"}),
	}
	for _, r := range []string{RefusedLocked, RefusedBusy, RefusedBadCredentials} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.refused)
	}
	return m
}

func (m *loginMetrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }
