package live

import (
	"context"
	"time"
)

// Run marks machines offline when they have sent nothing for the offline
// timeout (checked every second, each change sent as a machine event), drops
// stale series, and writes the registry when it changed (at most every
// PersistEvery, and once more on exit). It returns nil when ctx ends, or the
// error of the final registry write.
func (s *State) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastWrite time.Time
	var sweeps int
	for {
		select {
		case <-ctx.Done():
			return s.persist()
		case <-tick.C:
		}
		now := s.now()
		sweeps++
		s.sweep(now, sweeps%10 == 0)
		if s.opts.StatePath != "" && s.dirty.Load() && now.Sub(lastWrite) >= s.opts.PersistEvery {
			if err := s.persist(); err != nil {
				s.log.Error("write machine registry", "path", s.opts.StatePath, "err", err)
			}
			lastWrite = now
		}
	}
}

// offlineAfter is m's offline timeout: OfflineAfter, but at least three
// collection intervals. Caller holds m.mu.
func (s *State) offlineAfter(m *machine) time.Duration {
	d := s.opts.OfflineAfter
	if iv := 3 * time.Duration(m.info.IntervalMs) * time.Millisecond; iv > d {
		d = iv
	}
	return d
}

// sweep marks machines offline whose data is older than their timeout,
// forgets those offline for ForgetAfter and, with prune, drops series that
// have not been updated for StalenessAfter.
func (s *State) sweep(now time.Time, prune bool) {
	for _, m := range s.list() {
		if s.expired(m, now) {
			s.forget(m.id, now, "offline for "+s.opts.ForgetAfter.String())
			continue
		}
		m.mu.Lock()
		if m.online && now.Sub(m.lastSeen) > s.offlineAfter(m) {
			s.setOnline(m, false)
			m.procs = nil // a list that no longer updates would mislead
			s.dirty.Store(true)
			s.log.Info("machine offline", "machine", m.id, "last_seen", m.lastSeen)
			s.publishMachine(m)
		}
		if prune {
			m.prune(m.lastTs - s.opts.StalenessAfter.Milliseconds())
		}
		m.mu.Unlock()
	}
}

// prune drops the series whose latest value is older than minTs (ms since
// epoch). Caller holds m.mu.
func (m *machine) prune(minTs int64) {
	keep := m.values[:0]
	for _, e := range m.values {
		if e.ts >= minTs {
			keep = append(keep, e)
		}
	}
	if len(keep) == len(m.values) {
		return
	}
	clear(m.values[len(keep):])
	m.values = keep
	m.truncated = false // room again; Update marks it anew if still too many
	m.index.reset()
	for i, e := range m.values {
		m.index.add(e.series, i)
	}
	m.hint = 0
}
