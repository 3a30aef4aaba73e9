package alert

import (
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// The transitions below are called with the slot's machine lock held; they
// take Engine.mu for the alert records. They only change memory: Run's
// flush persists, publishes and notifies.

// startPending moves an inactive slot to pending, or straight to firing
// when the rule's `for` is 0.
func (e *Engine) startPending(m *machineState, s *slot, v float64, now int64) {
	c := &s.rule.rule
	ts := time.Unix(0, now).UTC()
	rec := &record{
		a: Alert{
			ID: newID(), RuleID: c.ID, RuleName: c.Name, Kind: c.Kind, Machine: m.id,
			Metric: c.Metric, Labels: map[string]string{}, Severity: c.Severity,
			State: StatePending, Value: v, Threshold: c.Threshold, Clear: c.Clear, Op: c.Op,
			StartedAt: ts, UpdatedAt: ts,
		},
	}
	if s.ss != nil {
		rec.seriesKey = s.ss.key
		rec.a.Labels = s.ss.labels.Map()
	}
	rec.a.Description = render(renderInput{rule: c, machine: m.id, labels: s.labelsOrNil(), value: v})
	rec.last.Store(floatBits(v))
	s.rec = rec
	s.since = now
	s.state = stPending
	e.mu.Lock()
	e.active[rec.a.ID] = rec
	e.pending[s] = m
	e.dirty[rec.a.ID] = rec
	e.mu.Unlock()
	e.m.transitions.WithLabelValues(StatePending).Inc()
	if s.rule.forNs <= 0 {
		e.fire(m, s, v, now)
	}
}

// endEpisode returns s to inactive and hands back its episode's record
// (nil when it had none), keeping the machine's count of active offline
// slots.
func (m *machineState) endEpisode(s *slot) *record {
	rec := s.rec
	s.state, s.rec = stInactive, nil
	if s.ss == nil && m.offlineActive > 0 {
		m.offlineActive--
	}
	return rec
}

// dropPending ends a pending episode that never fired: no notification,
// and the alert is removed.
func (e *Engine) dropPending(m *machineState, s *slot, v float64, now int64) {
	rec := m.endEpisode(s)
	if rec == nil {
		return
	}
	e.mu.Lock()
	delete(e.pending, s)
	delete(e.active, rec.a.ID)
	rec.a.State = StateInactive
	rec.a.Value = v
	rec.a.UpdatedAt = time.Unix(0, now).UTC()
	rec.deleted = true
	e.dirty[rec.a.ID] = rec
	e.mu.Unlock()
	e.m.transitions.WithLabelValues(StateInactive).Inc()
}

// fire moves a pending slot to firing.
func (e *Engine) fire(m *machineState, s *slot, v float64, now int64) {
	rec := s.rec
	s.state = stFiring
	ts := time.Unix(0, now).UTC()
	e.mu.Lock()
	delete(e.pending, s)
	rec.a.State = StateFiring
	rec.a.Value = v
	rec.a.FiredAt = &ts
	rec.a.UpdatedAt = ts
	rec.a.Description = render(renderInput{rule: &s.rule.rule, machine: m.id, labels: s.labelsOrNil(), value: v})
	e.dirty[rec.a.ID] = rec
	e.mu.Unlock()
	e.m.transitions.WithLabelValues(StateFiring).Inc()
	e.log.Info("alert firing", "rule", rec.a.RuleName, "machine", m.id, "labels", rec.a.Labels, "value", v, "alert", rec.a.ID)
}

// fireOffline fires an offline slot (no pending stage: its `for` already
// elapsed without data). s.since and s.value are set by the caller.
func (e *Engine) fireOffline(m *machineState, s *slot, now int64) {
	c := &s.rule.rule
	ts := time.Unix(0, now).UTC()
	rec := &record{
		a: Alert{
			ID: newID(), RuleID: c.ID, RuleName: c.Name, Kind: c.Kind, Machine: m.id,
			Labels: map[string]string{}, Severity: c.Severity, State: StateFiring,
			Value: s.value, Threshold: c.For.Seconds(), Op: ">=",
			StartedAt: time.Unix(0, s.since).UTC(), FiredAt: &ts, UpdatedAt: ts,
		},
	}
	rec.a.Description = render(renderInput{rule: c, machine: m.id, value: s.value})
	rec.last.Store(floatBits(s.value))
	s.rec = rec
	s.state = stFiring
	m.offlineActive++
	e.mu.Lock()
	e.active[rec.a.ID] = rec
	e.dirty[rec.a.ID] = rec
	e.mu.Unlock()
	e.m.transitions.WithLabelValues(StateFiring).Inc()
	e.log.Info("alert firing: machine offline", "rule", c.Name, "machine", m.id, "alert", rec.a.ID)
}

// resolve ends a firing slot's episode. reason is "" when the value
// resolved it.
func (e *Engine) resolve(m *machineState, s *slot, v float64, now int64, reason string) {
	rec := m.endEpisode(s)
	if rec == nil {
		return
	}
	e.mu.Lock()
	rec.a.Value = v
	if reason == "" {
		rec.a.Description = render(renderInput{rule: &s.rule.rule, machine: m.id, labels: s.labelsOrNil(), value: v})
	}
	e.endRecordLocked(rec, time.Unix(0, now), reason)
	e.mu.Unlock()
	e.log.Info("alert resolved", "rule", rec.a.RuleName, "machine", m.id, "labels", rec.a.Labels, "value", v, "reason", reason, "alert", rec.a.ID)
}

// endRecordLocked resolves (firing) or removes (pending) an active record
// without a slot. Caller holds e.mu.
func (e *Engine) endRecordLocked(rec *record, now time.Time, reason string) {
	ts := now.UTC()
	delete(e.active, rec.a.ID)
	rec.a.UpdatedAt = ts
	if rec.a.State == StatePending {
		rec.a.State = StateInactive
		rec.deleted = true
		e.dirty[rec.a.ID] = rec
		e.m.transitions.WithLabelValues(StateInactive).Inc()
		return
	}
	rec.a.State = StateResolved
	rec.a.ResolvedAt = &ts
	rec.a.ResolvedReason = reason
	rec.a.Acknowledged = false
	rec.a.Ack = nil
	e.dirty[rec.a.ID] = rec
	e.m.transitions.WithLabelValues(StateResolved).Inc()
}

// adopt gives a new slot the alert restored from the database for the same
// (rule, machine, series), if any. Caller holds m.mu.
func (e *Engine) adopt(m *machineState, s *slot) {
	key := ""
	if s.ss != nil {
		key = s.ss.key
	}
	id := identity(s.rule.rule.ID, m.id, key)
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.restored) == 0 {
		return
	}
	rec, ok := e.restored[id]
	if !ok {
		return
	}
	delete(e.restored, id)
	s.rec = rec
	s.since = rec.a.StartedAt.UnixNano()
	s.value = rec.a.Value
	switch rec.a.State {
	case StatePending:
		s.state = stPending
		e.pending[s] = m
	case StateFiring:
		s.state = stFiring
	}
	if s.ss == nil {
		m.offlineActive++
	}
}

// refreshRule copies a changed rule's name, severity and thresholds into
// the slot's active alert. Caller holds m.mu.
func (e *Engine) refreshRule(s *slot) {
	c := &s.rule.rule
	e.mu.Lock()
	defer e.mu.Unlock()
	a := &s.rec.a
	if a.RuleName == c.Name && a.Severity == c.Severity && a.Threshold == c.Threshold && a.Op == c.Op && equalClear(a.Clear, c.Clear) {
		return
	}
	a.RuleName, a.Severity, a.Clear = c.Name, c.Severity, c.Clear
	if c.Kind == KindThreshold {
		a.Threshold, a.Op = c.Threshold, c.Op
	}
	e.dirty[a.ID] = s.rec
}

func equalClear(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// labelsOrNil is the slot's series labels (nil for offline slots).
func (s *slot) labelsOrNil() metric.Labels {
	if s.ss == nil {
		return nil
	}
	return s.ss.labels
}
