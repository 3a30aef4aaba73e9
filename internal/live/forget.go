package live

import (
	"encoding/json"
	"time"
)

// Forget removes a machine from the live state and the registry, which is
// written at once: it leaves GET /api/machines and the overview, and
// subscribers get a machine event with "forgotten": true. Options.OnForget
// is called afterwards (the alert engine ends the machine's alerts there).
// Stored history is not touched. A machine that sends data again simply
// reappears with its next batch, under its id only until its agent's next
// hello. It reports whether the machine was known, and the error of the
// registry write (the machine is forgotten in memory either way).
func (s *State) Forget(id string) (bool, error) {
	if !s.forget(id, time.Time{}, "") {
		return false, nil
	}
	return true, s.persist()
}

// expired reports whether m is offline and has sent nothing for
// ForgetAfter.
func (s *State) expired(m *machine, now time.Time) bool {
	if s.opts.ForgetAfter <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.online && !m.lastSeen.IsZero() && now.Sub(m.lastSeen) >= s.opts.ForgetAfter
}

// forget removes id and tells subscribers and OnForget; reason, when not
// empty, is logged (automatic expiry). It reports whether id was known.
// The registry is written by the caller or by Run.
func (s *State) forget(id string, now time.Time, reason string) bool {
	s.mu.Lock()
	m := s.machines[id]
	delete(s.machines, id)
	s.mu.Unlock()
	if m == nil {
		return false
	}
	s.dirty.Store(true)
	m.mu.Lock()
	s.setOnline(m, false)
	last := m.lastSeen
	if s.subs.any() {
		b, err := json.Marshal(struct {
			Type      string  `json:"type"`
			Machine   Machine `json:"machine"`
			Forgotten bool    `json:"forgotten"`
		}{EventMachine, m.snapshot(false, false), true})
		if err == nil {
			s.Publish(Event{Type: EventMachine, Machine: m.id, JSON: b})
		}
	}
	m.mu.Unlock()
	if reason != "" {
		s.log.Info("machine forgotten", "machine", id, "reason", reason, "last_seen", last, "now", now)
	} else {
		s.log.Info("machine forgotten", "machine", id, "last_seen", last)
	}
	if s.opts.OnForget != nil {
		s.opts.OnForget(id)
	}
	return true
}
