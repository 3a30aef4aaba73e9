package alert

import (
	"context"
	"encoding/json"
	"time"
)

// A follower (PostgreSQL, not the leader) shows the leader's alerts, not
// its own evaluation: the API reads the stored rows, and Follow publishes
// the rows' changes as live events and counts them for sysmonstm_alerts.

// Follow, on a follower, re-reads the stored active alerts and publishes
// every one that is new or changed since the last call, and every one no
// longer active (resolved, or a pending one removed: state "inactive"), as
// the leader's flush publishes them on its hub. The hub calls it when the
// alerts table changes (NOTIFY) and on every resync; on the leader it does
// nothing.
func (e *Engine) Follow(ctx context.Context) error {
	if e.leader.Load() {
		return nil
	}
	recs, err := loadActiveAlerts(ctx, e.db)
	if err != nil {
		return err
	}
	next := make(map[string]string, len(recs))
	active := make(map[string]*record, len(recs))
	var changed []Alert
	e.mu.Lock()
	prev := e.view
	for _, r := range recs {
		b, err := json.Marshal(r.a)
		if err != nil {
			continue
		}
		next[r.a.ID] = string(b)
		active[r.a.ID] = r
		if prev[r.a.ID] != string(b) {
			changed = append(changed, r.a)
		}
	}
	gone := map[string]string{}
	for id, body := range prev {
		if _, ok := next[id]; !ok {
			gone[id] = body
		}
	}
	e.view = next
	e.m.setAlertGauges(active)
	e.mu.Unlock()
	for id, body := range gone {
		a, err := getAlert(ctx, e.db, id)
		if err != nil {
			// Removed: a pending alert that never fired.
			if json.Unmarshal([]byte(body), &a) != nil {
				continue
			}
			a.State, a.UpdatedAt = StateInactive, e.now().UTC()
		}
		changed = append(changed, a)
	}
	if e.opts.Publish == nil {
		return nil
	}
	for _, a := range changed {
		if ev, err := alertEvent(a); err == nil {
			e.opts.Publish(ev)
		}
	}
	return nil
}

// followAfterWrite runs Follow at once after a follower wrote an alert
// (an acknowledgement), so its own clients see it without waiting for the
// notification.
func (e *Engine) followAfterWrite(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.Follow(fctx); err != nil {
		e.log.Warn("re-read alerts after an acknowledgement", "err", err)
	}
}
