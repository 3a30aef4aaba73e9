package alert

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"sync/atomic"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/notify"
	"github.com/sysmonstm/sysmonstm/internal/wire"
)

// Alert states. StateInactive appears only in live events: it announces
// that a pending alert's condition broke before `for` elapsed (the alert is
// gone, it never fired).
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
	StateInactive = "inactive"
)

// Ack is who acknowledged an alert, when, and why (one definition, in
// internal/wire).
type Ack = wire.Ack

// Alert is one episode of one (rule, machine, series), its JSON form the
// API's and the live stream's: one definition, in internal/wire.
type Alert = wire.Alert

// record is the engine's copy of an alert with its notification state.
// Every field but last is protected by Engine.mu.
type record struct {
	a            Alert
	seriesKey    string // "" for offline alerts
	notified     bool   // a firing notification went out (not yet resolved)
	lastNotified time.Time
	// last is the latest observed value (math.Float64bits), written under
	// the machine lock on every sample of an active alert.
	last atomic.Uint64
	// deleted: a pending alert that never fired; removed from the database.
	deleted bool
	// persisted: the record was written to the database at least once.
	persisted bool
}

// storedAlert is an alert row's body in SQLite. The series key is not
// stored (it holds bytes JSON cannot carry); it is rebuilt from Metric and
// Labels.
type storedAlert struct {
	Alert
	Notified     bool      `json:"notified"`
	LastNotified time.Time `json:"last_notified"`
}

// snapshot copies the record's alert for the API, with LastValue filled in
// for active alerts. Caller holds Engine.mu.
func (r *record) snapshot() Alert {
	a := r.a
	if a.State == StatePending || a.State == StateFiring {
		v := math.Float64frombits(r.last.Load())
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			a.LastValue = &v
		}
	}
	return a
}

func (r *record) stored() storedAlert {
	return storedAlert{Alert: r.a, Notified: r.notified, LastNotified: r.lastNotified}
}

func recordFromStored(s storedAlert) *record {
	r := &record{a: s.Alert, notified: s.Notified, lastNotified: s.LastNotified, persisted: true}
	if s.Kind != KindOffline {
		r.seriesKey = metric.SeriesKey(s.Metric, metric.FromMap(s.Labels))
	}
	r.a.LastValue = nil
	r.last.Store(math.Float64bits(s.Value))
	return r
}

// identity is the key of the (rule, machine, series) an alert belongs to.
func identity(ruleID, machine, seriesKey string) string {
	return ruleID + "\x00" + machine + "\x00" + seriesKey
}

func (r *record) identity() string { return identity(r.a.RuleID, r.a.Machine, r.seriesKey) }

// notifyAlert is the alert as the notify package takes it.
func (r *record) notifyAlert() notify.Alert {
	a := r.a
	n := notify.Alert{
		ID: a.ID, RuleID: a.RuleID, RuleName: a.RuleName, Machine: a.Machine,
		Metric: a.Metric, Labels: a.Labels, Severity: a.Severity, State: a.State,
		Value: a.Value, Threshold: a.Threshold, Op: a.Op, Description: a.Description,
		StartedAt: a.StartedAt, Acknowledged: a.Acknowledged, Silenced: a.Silenced,
	}
	if a.ResolvedAt != nil {
		n.ResolvedAt = *a.ResolvedAt
	}
	if a.Ack != nil {
		n.AckedBy = a.Ack.By
	}
	return n
}

// newID returns a random 16-hex-digit id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}
