package alert

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Several hubs on one PostgreSQL database all evaluate every machine (each
// sees every batch), but one of them, the leader, writes alert state and
// sends notifications. Leadership is a session-level advisory lock held on
// a connection of its own: when the leader's process or its connection
// dies, PostgreSQL releases the lock at once and a follower takes it at its
// next poll (Options.LeaderPoll). On SQLite the engine is always the
// leader. See docs/architecture.md, "Alerts across several hubs".

// leaderLockKey is the advisory lock key of the alert leader ("sysalert").
const leaderLockKey int64 = 0x73797361_6c657274

// leadership is the engine's hold on the leader lock.
type leadership struct {
	mu   sync.Mutex // protects every field below; taken before Engine.mu
	conn *sql.Conn  // the connection holding the lock; nil when not leader
	pid  int        // its server process id (tests terminate it)
}

// IsLeader reports whether this engine writes alert state and sends
// notifications (always true on SQLite).
func (e *Engine) IsLeader() bool { return e.leader.Load() }

// runLeadership campaigns for leadership every LeaderPoll until ctx ends,
// then gives it up.
func (e *Engine) runLeadership(ctx context.Context) {
	if !e.shared {
		return
	}
	t := time.NewTicker(e.opts.LeaderPoll)
	defer t.Stop()
	for {
		e.campaign(ctx)
		select {
		case <-ctx.Done():
			e.resign()
			return
		case <-t.C:
		}
	}
}

// campaign is one round of the leadership loop: a leader checks that its
// lock connection is alive (else it steps down); a follower tries to take
// the lock and, when it gets it, takes over.
func (e *Engine) campaign(ctx context.Context) {
	e.lead.mu.Lock()
	defer e.lead.mu.Unlock()
	if e.lead.conn != nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := e.lead.conn.PingContext(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("alert leadership lost: the lock connection to PostgreSQL failed", "err", err)
			e.stepDownLocked()
		}
		return
	}
	if err := e.tryLeadLocked(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("alert leadership: cannot take over", "err", err)
	}
}

// tryLeadLocked takes the lock if it is free, then takes over. Caller holds
// e.lead.mu.
func (e *Engine) tryLeadLocked(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := e.db.Conn(cctx)
	if err != nil {
		return err
	}
	var got bool
	var pid int
	if err := conn.QueryRowContext(cctx, `SELECT pg_try_advisory_lock(?), pg_backend_pid()`, leaderLockKey).Scan(&got, &pid); err != nil {
		discard(conn)
		return fmt.Errorf("try the leader lock: %w", err)
	}
	if !got {
		_ = conn.Close() // back to the pool: it holds nothing
		return nil
	}
	e.lead.conn, e.lead.pid = conn, pid
	if err := e.takeOver(cctx); err != nil {
		e.stepDownLocked()
		return err
	}
	e.m.leaderChanges.Inc()
	e.log.Info("alert leadership taken: this hub now writes alert state and sends notifications")
	return nil
}

// stepDownLocked drops the lock connection (discarded, never pooled: a
// pooled connection would keep the lock) and becomes a follower. Caller
// holds e.lead.mu.
func (e *Engine) stepDownLocked() {
	if e.lead.conn != nil {
		discard(e.lead.conn)
		e.lead.conn, e.lead.pid = nil, 0
	}
	if !e.leader.Swap(false) {
		return
	}
	e.m.leader.Set(0)
	e.m.outboxPending.Set(0)
	e.m.leaderChanges.Inc()
	e.mu.Lock()
	// What was collected or not yet written is the new leader's: it finds
	// the written part in the outbox and the rest in its own evaluation.
	clear(e.groups)
	e.outboxNew = nil
	for id, w := range e.workers {
		w.cancel()
		delete(e.workers, id)
	}
	e.view = nil
	e.mu.Unlock()
}

// resign gives leadership up (Run's end).
func (e *Engine) resign() {
	e.lead.mu.Lock()
	defer e.lead.mu.Unlock()
	e.stepDownLocked()
}

// fence reports whether this engine may send now: it is the leader and its
// lock connection answers. It narrows the window in which a leader that
// lost its lock without noticing yet still sends.
func (e *Engine) fence(ctx context.Context) bool {
	if !e.leader.Load() {
		return false
	}
	if !e.shared {
		return true
	}
	e.lead.mu.Lock()
	conn := e.lead.conn
	e.lead.mu.Unlock()
	if conn == nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return conn.PingContext(pctx) == nil
}

// writer is where the leader writes alert state: with an election, the
// connection holding the leader lock, so that a leader whose lock
// connection died (and whose successor may already write) cannot commit
// anything; else the pool.
func (e *Engine) writer() txBeginner {
	if !e.shared {
		return e.db
	}
	e.lead.mu.Lock()
	defer e.lead.mu.Unlock()
	if e.lead.conn == nil {
		return noLock{}
	}
	return e.lead.conn
}

// noLock is the writer of an engine that lost the lock between its flush's
// check and its write.
type noLock struct{}

func (noLock) BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error) {
	return nil, errors.New("not the alert leader any more")
}

// discard closes c so that its server session ends (releasing its
// advisory locks) instead of returning to the pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// takeOver makes this engine the leader: it reconciles its in-memory
// evaluation with the alert rows the previous leader wrote, then queues
// what the previous leader recorded in the outbox but did not send.
func (e *Engine) takeOver(ctx context.Context) error {
	rows, err := loadActiveAlerts(ctx, e.db)
	if err != nil {
		return err
	}
	open, err := loadOutbox(ctx, e.db)
	if err != nil {
		return err
	}
	// Until leader is set, flush keeps what reconcile marks dirty.
	e.syncing.Store(true)
	defer e.syncing.Store(false)
	e.reconcile(rows, e.now())
	e.mu.Lock()
	e.leader.Store(true)
	e.m.leader.Set(1)
	e.replayLocked(open)
	e.mu.Unlock()
	return nil
}

// reconcile adopts the stored active alerts into this engine's slots, by
// (rule, machine, series): an episode both know keeps the stored id,
// notification state and acknowledgement; one only this engine knows is
// new (written and notified at the next flush); a stored one whose slot
// is inactive here ended while no leader wrote it (resolved now, its
// resolution sent if its firing was); a stored one without a slot here
// waits to be adopted like alerts restored at start.
func (e *Engine) reconcile(rows []*record, now time.Time) {
	stored := make(map[string]*record, len(rows))
	for _, r := range rows {
		stored[r.identity()] = r
	}
	for _, m := range e.machineList() {
		m.mu.Lock()
		e.mu.Lock()
		m.eachSlot(func(s *slot) { e.reconcileSlotLocked(m, s, stored, now) })
		e.mu.Unlock()
		m.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Records of this engine not in a slot (restored at start, or of a
	// machine forgotten) give way to the stored rows.
	for id, r := range e.active {
		if row, ok := stored[r.identity()]; ok && row.a.ID != id {
			delete(e.active, id)
			delete(e.restored, r.identity())
		}
	}
	for key, r := range stored {
		e.active[r.a.ID] = r
		e.restored[key] = r
	}
	e.restoredAt = now
	e.m.setAlertGauges(e.active)
}

// reconcileSlotLocked is reconcile for one slot. Caller holds m.mu and
// e.mu.
func (e *Engine) reconcileSlotLocked(m *machineState, s *slot, stored map[string]*record, now time.Time) {
	key := ""
	if s.ss != nil {
		key = s.ss.key
	}
	id := identity(s.rule.rule.ID, m.id, key)
	row, ok := stored[id]
	delete(stored, id)
	switch {
	case s.rec != nil && ok:
		rec := s.rec
		if rec.a.ID != row.a.ID {
			delete(e.active, rec.a.ID)
			delete(e.dirty, rec.a.ID)
			rec.a.ID = row.a.ID
			e.active[rec.a.ID] = rec
		}
		if row.a.StartedAt.Before(rec.a.StartedAt) {
			// The episode began when the previous leader saw it: a pending
			// alert's `for` counts from then.
			rec.a.StartedAt = row.a.StartedAt
			if s.ss != nil {
				s.since = row.a.StartedAt.UnixNano()
			}
		}
		rec.notified, rec.lastNotified, rec.persisted = row.notified, row.lastNotified, true
		rec.a.Acknowledged, rec.a.Ack = row.a.Acknowledged, row.a.Ack
		if row.a.State == StateFiring && s.state == stPending {
			// The previous leader's `for` elapsed first: firing here too.
			s.state = stFiring
			delete(e.pending, s)
			rec.a.State, rec.a.FiredAt = StateFiring, row.a.FiredAt
		}
		e.dirty[rec.a.ID] = rec
	case s.rec != nil:
		e.dirty[s.rec.a.ID] = s.rec
	case ok:
		e.active[row.a.ID] = row
		e.endRecordLocked(row, now, "")
	}
}
