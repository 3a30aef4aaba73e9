package alert

import (
	"cmp"
	"context"
	"net/http"
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

func (e *Engine) silence(id string) (Silence, bool) {
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

// expireSilence ends silence id now; alerts it muted that still fire are
// notified on the next sweep.
func (e *Engine) expireSilence(ctx context.Context, id string) (Silence, error) {
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

func (e *Engine) handleListSilences(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Silences())
}

func (e *Engine) handleGetSilence(w http.ResponseWriter, r *http.Request) {
	s, ok := e.silence(r.PathValue("id"))
	if !ok {
		e.fail(w, r, notFound("silence %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (e *Engine) handleCreateSilence(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, false)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	now := e.nowUTC()
	s, err := decodeSilence(b, now)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	s.ID = newID()
	s.CreatedBy = principal(r)
	s.CreatedAt = now
	if err := e.addSilence(r.Context(), s); err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "silence created", "silence", s.ID, "ends_at", s.EndsAt)
	c := *s
	c.Active = s.activeAt(e.now())
	writeJSON(w, http.StatusCreated, c)
}

func (e *Engine) handleExpireSilence(w http.ResponseWriter, r *http.Request) {
	s, err := e.expireSilence(r.Context(), r.PathValue("id"))
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "silence expired", "silence", s.ID)
	writeJSON(w, http.StatusOK, s)
}
