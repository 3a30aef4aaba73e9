package alert

import (
	"cmp"
	"context"
	"slices"
)

// Silences returns every silence not yet pruned: active ones first, then
// by start, newest first.
func (e *Engine) Silences() []Silence {
	now := e.now()
	e.mu.Lock()
	out := make([]Silence, 0, len(e.silences))
	for _, s := range e.silences {
		c := *s
		c.Active = s.activeAt(now)
		out = append(out, c)
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Silence) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		return cmp.Or(b.StartsAt.Compare(a.StartsAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Silence returns silence id, with Active computed now.
func (e *Engine) Silence(id string) (Silence, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.silences[id]
	if !ok {
		return Silence{}, false
	}
	c := *s
	c.Active = s.activeAt(e.now())
	return c, true
}

// CreateSilence creates a silence from its JSON form (matchers, starts_at,
// ends_at or duration, comment; docs/api.md, "Silences") on behalf of by,
// stores it and applies it to the active alerts at once. It starts now
// unless starts_at says otherwise. Invalid input is a *FieldError.
func (e *Engine) CreateSilence(ctx context.Context, b []byte, by string) (Silence, error) {
	now := e.nowUTC()
	s, err := decodeSilence(b, now)
	if err != nil {
		return Silence{}, err
	}
	s.ID = newID()
	s.CreatedBy = by
	s.CreatedAt = now
	if err := e.addSilence(ctx, s); err != nil {
		return Silence{}, err
	}
	c := *s
	c.Active = s.activeAt(e.now())
	return c, nil
}

// addSilence stores s and applies it to the active alerts at once.
func (e *Engine) addSilence(ctx context.Context, s *Silence) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := saveSilence(ctx, e.db, s); err != nil {
		return err
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silences[s.ID] = s
	for _, r := range e.active {
		e.applySilenceLocked(r, now)
	}
	return nil
}

// ExpireSilence ends silence id now; alerts it muted that still fire are
// notified on the next sweep.
func (e *Engine) ExpireSilence(ctx context.Context, id string) (Silence, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	now := e.nowUTC()
	e.mu.Lock()
	old, ok := e.silences[id]
	var s Silence
	if ok {
		s = *old
	}
	e.mu.Unlock()
	if !ok {
		return Silence{}, notFound("silence %q", id)
	}
	if s.EndsAt.After(now) {
		s.EndsAt = now
		if s.StartsAt.After(now) {
			s.StartsAt = now
		}
		if err := saveSilence(ctx, e.db, &s); err != nil {
			return Silence{}, err
		}
	}
	s.compile()
	e.mu.Lock()
	e.silences[id] = &s
	for _, r := range e.active {
		e.applySilenceLocked(r, now)
	}
	e.mu.Unlock()
	s.Active = false
	return s, nil
}
