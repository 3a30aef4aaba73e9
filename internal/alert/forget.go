package alert

// ReasonForgotten is the resolved_reason of the alerts a forgotten machine
// had.
const ReasonForgotten = "machine forgotten"

// Forget ends every alert of machine id and drops the engine's state of it:
// firing alerts resolve with the reason "machine forgotten" (channels that
// were told an alert fired get its resolution, once), pending ones are
// dropped, and nothing more is sent about the machine until it reports
// again. The live state calls it when a machine is forgotten.
func (e *Engine) Forget(id string) {
	e.machinesMu.Lock()
	m := e.machines[id]
	delete(e.machines, id)
	e.machinesMu.Unlock()
	now := e.now()
	if m != nil {
		ns := now.UnixNano()
		m.mu.Lock()
		m.eachSlot(func(s *slot) { e.closeSlot(m, s, ns, ReasonForgotten) })
		m.series, m.offline, m.offlineActive = map[string]*seriesState{}, nil, 0
		clear(m.ptrs)
		m.pos = m.pos[:0]
		m.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Alerts restored at start and not yet adopted by a slot.
	for key, r := range e.restored {
		if r.a.Machine == id {
			delete(e.restored, key)
			e.endRecordLocked(r, now, ReasonForgotten)
		}
	}
	for _, r := range e.active {
		if r.a.Machine == id {
			e.endRecordLocked(r, now, ReasonForgotten)
		}
	}
	if e.leader.Load() {
		e.m.setAlertGauges(e.active)
	}
}
