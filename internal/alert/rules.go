package alert

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Rules returns every rule, sorted by name then id.
func (e *Engine) Rules() []Rule {
	e.mu.Lock()
	out := make([]Rule, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, r)
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Rule) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Rule returns rule id.
func (e *Engine) Rule(id string) (Rule, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rules[id]
	return r, ok
}

// checkNotifiers verifies that every notifier a rule names exists.
func (e *Engine) checkNotifiers(r Rule) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range r.Notifiers {
		if _, ok := e.notifiers[id]; !ok {
			return fieldErr("notifiers", "unknown notifier %q (create it first under /api/notifiers)", id)
		}
	}
	return nil
}

// CreateRule stores a new rule (an id is generated when r has none) and
// applies it to the live stream.
func (e *Engine) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if r.ID == "" {
		r.ID = newID()
	} else if _, ok := e.Rule(r.ID); ok {
		return Rule{}, conflict("rule id %q is taken; leave id out to get a new one", r.ID)
	}
	if err := e.checkNotifiers(r); err != nil {
		return Rule{}, err
	}
	now := e.now().UTC().Truncate(time.Millisecond)
	r.Builtin, r.Provisioned = false, false
	r.CreatedAt, r.UpdatedAt = now, now
	if err := saveRule(ctx, e.db, r); err != nil {
		return Rule{}, err
	}
	e.mu.Lock()
	e.rules[r.ID] = r
	e.bumpLocked()
	e.mu.Unlock()
	return r, nil
}

// UpdateRule replaces rule id with r (keeping its id, builtin mark and
// creation time).
func (e *Engine) UpdateRule(ctx context.Context, id string, r Rule) (Rule, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.Rule(id)
	if !ok {
		return Rule{}, notFound("rule %q", id)
	}
	if old.Provisioned {
		return Rule{}, conflict("rule %q is provisioned from the alerts config file (--alerts-config) and read-only here; change it in the file and restart the hub", id)
	}
	if r.ID != "" && r.ID != id {
		return Rule{}, fieldErr("id", "%q does not match the rule in the URL (%q)", r.ID, id)
	}
	if err := e.checkNotifiers(r); err != nil {
		return Rule{}, err
	}
	r.ID, r.Builtin, r.Provisioned, r.CreatedAt = id, old.Builtin, false, old.CreatedAt
	r.UpdatedAt = e.now().UTC().Truncate(time.Millisecond)
	if err := saveRule(ctx, e.db, r); err != nil {
		return Rule{}, err
	}
	e.mu.Lock()
	e.rules[id] = r
	e.bumpLocked()
	e.mu.Unlock()
	return r, nil
}

// DeleteRule removes rule id; its active alerts resolve.
func (e *Engine) DeleteRule(ctx context.Context, id string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.Rule(id)
	if !ok {
		return notFound("rule %q", id)
	}
	if old.Provisioned {
		return conflict("rule %q is provisioned from the alerts config file (--alerts-config) and read-only here; remove it from the file and restart the hub", id)
	}
	if err := deleteRow(ctx, e.db, "alert_rules", id); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.rules, id)
	e.bumpLocked()
	e.mu.Unlock()
	return nil
}
