package live

// Info returns one machine's identity and status (info, online, connected,
// last_seen, last_ts) without copying its latest values or its process list:
// Metrics and Processes are nil. It is cheap enough to call whenever a
// consumer (the alert engine) needs a machine's labels.
func (s *State) Info(id string) (Machine, bool) {
	m := s.get(id, false)
	if m == nil {
		return Machine{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot(false, false), true
}

// Infos returns every machine, sorted by id, like Machines but without the
// latest values or process lists (Metrics and Processes are nil).
func (s *State) Infos() []Machine {
	ms := s.list()
	out := make([]Machine, len(ms))
	for i, m := range ms {
		m.mu.Lock()
		out[i] = m.snapshot(false, false)
		m.mu.Unlock()
	}
	return out
}
