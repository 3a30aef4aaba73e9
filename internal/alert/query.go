package alert

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// defaultAlertLimit is AlertQuery.Limit when none is given.
const defaultAlertLimit = 500

// AlertQuery selects alerts for Alerts.
type AlertQuery struct {
	States   []string // StatePending, StateFiring, StateResolved; empty = pending and firing
	Machine  string
	Rule     string // rule id
	Severity string
	Limit    int // default 500
}

func (q *AlertQuery) has(state string) bool { return slices.Contains(q.States, state) }

func (q *AlertQuery) matches(a *Alert) bool {
	return q.has(a.State) &&
		(q.Machine == "" || q.Machine == a.Machine) &&
		(q.Rule == "" || q.Rule == a.RuleID) &&
		(q.Severity == "" || q.Severity == a.Severity)
}

// Alerts lists alerts: active ones from memory, resolved ones from the
// history; active first (newest first), then resolved (newest first).
func (e *Engine) Alerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	if len(q.States) == 0 {
		q.States = []string{StateFiring, StatePending}
	}
	if q.Limit <= 0 {
		q.Limit = defaultAlertLimit
	}
	var active, fresh []Alert
	if !e.leader.Load() {
		// A follower shows the leader's alerts: the stored ones.
		var err error
		if active, err = e.storedActive(ctx, q); err != nil {
			return nil, err
		}
	} else {
		e.mu.Lock()
		for _, r := range e.active {
			if q.matches(&r.a) {
				active = append(active, r.snapshot())
			}
		}
		for _, r := range e.dirty { // resolved but not yet written
			if r.a.State == StateResolved && !r.deleted && q.matches(&r.a) {
				fresh = append(fresh, r.snapshot())
			}
		}
		e.mu.Unlock()
	}
	slices.SortFunc(active, func(a, b Alert) int {
		if a.State != b.State {
			if a.State == StateFiring {
				return -1
			}
			return 1
		}
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	out := active
	if q.has(StateResolved) {
		stored, err := queryAlerts(ctx, e.db, alertFilter{
			states: []string{StateResolved}, machine: q.Machine, rule: q.Rule, severity: q.Severity, limit: q.Limit,
		})
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, a := range fresh {
			seen[a.ID] = true
		}
		for _, a := range stored {
			if !seen[a.ID] {
				fresh = append(fresh, a)
			}
		}
		slices.SortFunc(fresh, func(a, b Alert) int {
			return cmp.Or(b.ResolvedAt.Compare(*a.ResolvedAt), cmp.Compare(a.ID, b.ID))
		})
		out = append(out, fresh...)
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	if out == nil {
		out = []Alert{}
	}
	return out, nil
}

// storedActive reads the stored pending and firing alerts q selects.
func (e *Engine) storedActive(ctx context.Context, q AlertQuery) ([]Alert, error) {
	var states []string
	for _, s := range []string{StateFiring, StatePending} {
		if q.has(s) {
			states = append(states, s)
		}
	}
	if len(states) == 0 {
		return nil, nil
	}
	return queryAlerts(ctx, e.db, alertFilter{states: states, machine: q.Machine, rule: q.Rule, severity: q.Severity, limit: q.Limit})
}

// Alert returns one alert by id.
func (e *Engine) Alert(ctx context.Context, id string) (Alert, error) {
	if !e.leader.Load() {
		return getAlert(ctx, e.db, id)
	}
	e.mu.Lock()
	r := e.active[id]
	if r == nil {
		r = e.dirty[id]
	}
	var a Alert
	if r != nil && !r.deleted {
		a = r.snapshot()
	}
	e.mu.Unlock()
	if a.ID != "" {
		return a, nil
	}
	if r != nil && r.deleted {
		return Alert{}, notFound("alert %q (a pending alert that never fired)", id)
	}
	return getAlert(ctx, e.db, id)
}

// nowUTC is the engine clock in UTC, truncated to milliseconds (what the
// database keeps).
func (e *Engine) nowUTC() time.Time { return e.now().UTC().Truncate(time.Millisecond) }
