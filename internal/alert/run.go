package alert

import (
	"context"
	"time"
)

// Run does the engine's housekeeping until ctx ends: every Tick it promotes
// pending alerts whose `for` elapsed, persists and publishes state changes
// and hands grouped notifications to the channels; every second it detects
// offline machines and stale series, applies silences and repeats; every
// 10 minutes it prunes history older than Retention. It returns nil when
// ctx ends, after a last flush.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	leadDone := make(chan struct{})
	go func() {
		defer close(leadDone)
		e.runLeadership(ctx)
	}()
	tick := time.NewTicker(e.opts.Tick)
	defer tick.Stop()
	var st runState
	for {
		select {
		case <-ctx.Done():
			e.flush(e.now())
			e.stopWorkers()
			<-leadDone
			return nil
		case <-tick.C:
		}
		e.step(ctx, e.now(), &st)
	}
}

// runState is what Run remembers between ticks.
type runState struct {
	lastSweep, lastPrune time.Time
	rebuilt              uint64 // rules version every machine was brought to
}

// Step does one round of Run's housekeeping at now, for code that drives
// the engine with its own clock instead of running Run (tests of the
// layers above the engine). Calls are serialised and share one state
// between them; never call Step while Run runs.
func (e *Engine) Step(ctx context.Context, now time.Time) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	e.step(ctx, now, &e.stepState)
}

// step is one tick of Run.
func (e *Engine) step(ctx context.Context, now time.Time, st *runState) {
	if v := e.set.Load().version; v != st.rebuilt || e.rebuildNeeded.Swap(false) {
		st.rebuilt = v
		e.rebuildAll(now)
	}
	e.promote(now)
	if now.Sub(st.lastSweep) >= time.Second {
		st.lastSweep = now
		e.sweep(now)
		e.countOutbox(ctx)
	}
	e.flush(now)
	e.flushGroups(now)
	if now.Sub(st.lastPrune) >= 10*time.Minute {
		st.lastPrune = now
		if err := e.prune(ctx, now); err != nil && ctx.Err() == nil {
			e.log.Error("prune alert history", "err", err)
		}
	}
}

// rebuildAll brings every machine up to the current rules, so that alerts
// of deleted rules resolve even on machines that send nothing.
func (e *Engine) rebuildAll(now time.Time) {
	rs := e.set.Load()
	for _, m := range e.machineList() {
		m.mu.Lock()
		if m.version != rs.version {
			e.rebuild(m, rs, now.UnixNano())
		}
		m.mu.Unlock()
	}
}

// promote fires pending alerts whose `for` elapsed since their last
// sample, as long as that sample is recent.
func (e *Engine) promote(now time.Time) {
	e.mu.Lock()
	if len(e.pending) == 0 {
		e.mu.Unlock()
		return
	}
	type ref struct {
		s *slot
		m *machineState
	}
	refs := make([]ref, 0, len(e.pending))
	for s, m := range e.pending {
		refs = append(refs, ref{s, m})
	}
	e.mu.Unlock()
	ns := now.UnixNano()
	for _, r := range refs {
		r.m.mu.Lock()
		s := r.s
		if s.state == stPending && ns-s.since >= s.rule.forNs && s.ss != nil && ns-s.ss.lastSample <= int64(promoteGrace) {
			e.fire(r.m, s, s.value, ns)
		}
		r.m.mu.Unlock()
	}
}

// sweep fires offline alerts, resolves alerts of stale series and of
// restored alerts never seen again, and applies silences and repeats.
func (e *Engine) sweep(now time.Time) {
	ns := now.UnixNano()
	stale := int64(e.opts.StaleAfter)
	startNs := e.started.UnixNano()
	for _, m := range e.machineList() {
		m.mu.Lock()
		for _, s := range m.offline {
			if s.state != stInactive {
				continue
			}
			// After a hub restart a machine gets `for` from the start.
			last := max(m.lastSeen, startNs)
			if ns-last >= s.rule.forNs {
				s.since = last
				s.value = float64(ns-m.lastSeen) / 1e9
				e.fireOffline(m, s, ns)
			}
		}
		dropped := false
		for key, ss := range m.series {
			if ns-ss.lastSample < stale {
				continue
			}
			for _, s := range ss.slots {
				e.closeSlot(m, s, ns, "stale")
			}
			delete(m.series, key)
			dropped = true
		}
		if dropped {
			clear(m.ptrs)
			clear(m.pos)
			m.pos = m.pos[:0]
		}
		m.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	set := e.set.Load()
	for key, r := range e.restored {
		if _, ok := set.byID[r.a.RuleID]; !ok {
			delete(e.restored, key)
			e.endRecordLocked(r, now, "rule deleted or disabled")
		} else if now.Sub(e.restoredAt) >= e.opts.StaleAfter {
			delete(e.restored, key)
			e.endRecordLocked(r, now, "stale")
		}
	}
	for _, r := range e.active {
		e.considerLocked(r, now)
	}
	if e.leader.Load() {
		e.m.setAlertGauges(e.active)
	}
}

// countOutbox sets sysmonstm_alert_outbox_pending (the leader's view).
func (e *Engine) countOutbox(ctx context.Context) {
	if !e.shared || !e.leader.Load() {
		return
	}
	n, err := countOutbox(ctx, e.db)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("count the notification outbox", "err", err)
		}
		return
	}
	e.m.outboxPending.Set(float64(n))
}
