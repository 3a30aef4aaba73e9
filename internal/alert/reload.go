package alert

import (
	"context"
	"encoding/json"
)

// Reload re-reads rules, notifiers and silences from the database, for
// changes another hub sharing it made (PostgreSQL, --postgres). A changed
// rule set is applied to the live stream as a local change would be;
// silences apply to the active alerts at once; a deleted notifier's
// delivery goroutine stops. It reports whether anything changed.
func (e *Engine) Reload(ctx context.Context) (bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	rules, err := loadRules(ctx, e.db)
	if err != nil {
		return false, err
	}
	nots, err := loadNotifiers(ctx, e.db)
	if err != nil {
		return false, err
	}
	sils, err := loadSilences(ctx, e.db)
	if err != nil {
		return false, err
	}
	newRules := make(map[string]Rule, len(rules))
	for _, r := range rules {
		newRules[r.ID] = r
	}
	newNots := make(map[string]Notifier, len(nots))
	for _, n := range nots {
		newNots[n.Config.ID] = n
	}
	newSils := make(map[string]*Silence, len(sils))
	for _, s := range sils {
		newSils[s.ID] = s
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := false
	if !sameJSON(e.rules, newRules) {
		e.rules = newRules
		e.bumpLocked()
		changed = true
	}
	if !sameJSON(e.notifiers, newNots) {
		for id := range e.notifiers {
			if _, ok := newNots[id]; !ok {
				e.removeWorkerLocked(id)
			}
		}
		e.notifiers = newNots
		changed = true
	}
	// Silences pruned here but not yet there (or the reverse) differ only
	// in ended ones; the comparison is of what is stored.
	if !sameJSON(e.silences, newSils) {
		e.silences = newSils
		for _, r := range e.active {
			e.applySilenceLocked(r, now)
		}
		changed = true
	}
	return changed, nil
}

// sameJSON reports whether two maps of stored objects encode alike.
func sameJSON[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false
		}
		ja, err1 := json.Marshal(va)
		jb, err2 := json.Marshal(vb)
		if err1 != nil || err2 != nil || string(ja) != string(jb) {
			return false
		}
	}
	return true
}
