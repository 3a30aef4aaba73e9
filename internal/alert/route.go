package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// EventAlert is the live event type of alert changes.
const EventAlert = "alert"

// flush persists the alerts changed since the last flush, decides their
// notifications and publishes them as live events.
func (e *Engine) flush(now time.Time) {
	e.mu.Lock()
	if len(e.dirty) == 0 && len(e.outboxNew) == 0 {
		e.mu.Unlock()
		return
	}
	if !e.leader.Load() {
		// A follower's evaluation is its own: the leader writes, publishes
		// and notifies (followers publish what it writes, Follow). While it
		// takes over, the changes wait for it.
		if !e.syncing.Load() {
			clear(e.dirty)
		}
		e.mu.Unlock()
		return
	}
	for _, r := range e.dirty {
		e.considerLocked(r, now)
	}
	recs := make([]*record, 0, len(e.dirty))
	rows := make([]alertRow, 0, len(e.dirty))
	events := make([]live.Event, 0, len(e.dirty))
	for id, r := range e.dirty {
		delete(e.dirty, id)
		recs = append(recs, r)
		if !(r.deleted && !r.persisted) { // a pending alert born and gone since the last flush: nothing to write
			rows = append(rows, alertRow{deleted: r.deleted, body: r.stored()})
			r.persisted = true
		}
		if e.opts.Publish != nil {
			if ev, err := alertEvent(r.snapshot()); err == nil {
				events = append(events, ev)
			} else {
				e.log.Error("encode alert event", "alert", id, "err", err)
			}
		}
	}
	e.m.setAlertGauges(e.active)
	outbox := e.outboxNew
	e.outboxNew = nil
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := writeAlerts(ctx, e.writer(), rows, outbox); err != nil {
		e.log.Error("persist alert state; will retry", "alerts", len(rows), "err", err)
		e.mu.Lock()
		for _, r := range recs {
			if _, newer := e.dirty[r.a.ID]; !newer {
				e.dirty[r.a.ID] = r
			}
		}
		e.outboxNew = append(outbox, e.outboxNew...)
		e.mu.Unlock()
	} else if len(outbox) > 0 {
		e.mu.Lock()
		for _, ent := range outbox {
			ent.written = true
		}
		e.mu.Unlock()
	}
	for _, ev := range events {
		e.opts.Publish(ev)
	}
}

// alertEvent encodes {"type":"alert","alert":{…}}.
func alertEvent(a Alert) (live.Event, error) {
	b, err := json.Marshal(struct {
		Type  string `json:"type"`
		Alert Alert  `json:"alert"`
	}{EventAlert, a})
	if err != nil {
		return live.Event{}, err
	}
	return live.Event{Type: EventAlert, Machine: a.Machine, JSON: b}, nil
}

// considerLocked applies silences to r and queues the notification it is
// due: the first firing one (also when a silence ends), a repeat, or the
// resolution of a notified alert. Only the leader notifies. Caller holds
// e.mu.
func (e *Engine) considerLocked(r *record, now time.Time) {
	if r.deleted || !e.leader.Load() {
		return
	}
	e.applySilenceLocked(r, now)
	switch r.a.State {
	case StateFiring:
		if r.a.Silenced {
			return
		}
		if !r.notified {
			r.notified, r.lastNotified = true, now
			e.enqueueLocked(r, now)
			e.dirty[r.a.ID] = r
		} else if r.a.Ack == nil && e.opts.RepeatInterval > 0 && now.Sub(r.lastNotified) >= e.opts.RepeatInterval {
			r.lastNotified = now
			e.enqueueLocked(r, now)
			e.dirty[r.a.ID] = r
			e.m.notifications.WithLabelValues("repeat").Inc()
		}
	case StateResolved:
		// A resolution is sent for every notified alert, silenced or not,
		// so that no channel is left with a firing alert that never ends.
		if r.notified {
			r.notified = false
			e.enqueueLocked(r, now)
			e.dirty[r.a.ID] = r
		}
	}
}

// applySilenceLocked sets r's silenced state from the active silences.
// Caller holds e.mu.
func (e *Engine) applySilenceLocked(r *record, now time.Time) {
	if r.a.State == StateResolved && r.a.ResolvedAt != nil && now.Sub(*r.a.ResolvedAt) > time.Second {
		return // history keeps the state it resolved with
	}
	var id string
	for _, s := range e.silences {
		if s.activeAt(now) && s.matches(&r.a) && (id == "" || s.ID < id) {
			id = s.ID
		}
	}
	cur := ""
	if r.a.SilencedBy != nil {
		cur = *r.a.SilencedBy
	}
	if id == cur {
		return
	}
	if id == "" {
		r.a.Silenced, r.a.SilencedBy = false, nil
	} else {
		r.a.Silenced, r.a.SilencedBy = true, &id
	}
	r.a.UpdatedAt = now.UTC()
	e.dirty[r.a.ID] = r
}

// group collects one channel's alert changes during GroupWait.
type group struct {
	first   time.Time
	alerts  map[string]notify.Alert // alert id → latest state
	entries []*outboxEntry          // the outbox rows it sends (PostgreSQL)
}

// enqueueLocked adds r to the groups of the channels it routes to. Caller
// holds e.mu.
func (e *Engine) enqueueLocked(r *record, now time.Time) {
	targets := e.routeLocked(r)
	if len(targets) == 0 {
		e.m.notifications.WithLabelValues("unrouted").Inc()
		return
	}
	na := r.notifyAlert()
	for _, id := range targets {
		g := e.groups[id]
		if g == nil {
			g = &group{first: now, alerts: map[string]notify.Alert{}}
			e.groups[id] = g
		}
		g.alerts[na.ID] = na
		if e.shared {
			ent := &outboxEntry{id: newID(), notifier: id, alert: na, created: now}
			g.entries = append(g.entries, ent)
			e.outboxNew = append(e.outboxNew, ent)
		}
	}
}

// routeLocked returns the channels r goes to: its rule's notifiers, or
// when the rule names none, every channel routing r's severity. Caller
// holds e.mu.
func (e *Engine) routeLocked(r *record) []string {
	var out []string
	if rule, ok := e.rules[r.a.RuleID]; ok && len(rule.Notifiers) > 0 {
		for _, id := range rule.Notifiers {
			if _, ok := e.notifiers[id]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	for id, n := range e.notifiers {
		if slices.Contains(n.Config.Severities, r.a.Severity) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// flushGroups hands every group older than GroupWait whose outbox rows
// are written to its channel's delivery goroutine as one message.
func (e *Engine) flushGroups(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
outer:
	for id, g := range e.groups {
		if now.Sub(g.first) < e.opts.GroupWait {
			continue
		}
		for _, ent := range g.entries {
			if !ent.written {
				continue outer // sent once recorded
			}
		}
		delete(e.groups, id)
		e.handOffLocked(id, g)
	}
}

// handOffLocked queues group g as one message for channel id. Caller
// holds e.mu.
func (e *Engine) handOffLocked(id string, g *group) {
	n, ok := e.notifiers[id]
	if !ok {
		// Deleted meanwhile: nothing to send, nothing to replay.
		e.markDoneLater(entryIDs(g.entries), "unrouted")
		return
	}
	msg := e.message(g)
	w := e.workerLocked(id)
	select {
	case w.queue <- job{cfg: n.Config, msg: msg, outbox: entryIDs(g.entries)}:
		e.m.notifications.WithLabelValues("queued").Inc()
	default:
		e.markDoneLater(entryIDs(g.entries), "dropped")
		e.m.notifications.WithLabelValues("dropped").Inc()
		e.log.Warn("notification dropped: the channel's queue is full (is it failing?)", "notifier", id, "name", n.Config.Name, "queue", cap(w.queue))
	}
}

// message builds one notification from a group.
func (e *Engine) message(g *group) notify.Message {
	alerts := make([]notify.Alert, 0, len(g.alerts))
	firing := 0
	for _, a := range g.alerts {
		alerts = append(alerts, a)
		if a.State == StateFiring {
			firing++
		}
	}
	slices.SortFunc(alerts, func(a, b notify.Alert) int {
		if (a.State == StateFiring) != (b.State == StateFiring) {
			if a.State == StateFiring {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.RuleName, b.RuleName), cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.ID, b.ID))
	})
	m := notify.Message{Status: notify.StatusResolved, Alerts: alerts}
	if firing > 0 {
		m.Status = notify.StatusFiring
	}
	m.Title = title(m.Status, firing, alerts)
	if e.opts.URL != nil {
		if base := e.opts.URL(); base != "" {
			m.URL = strings.TrimRight(base, "/") + "/alerts"
		}
	}
	return m
}

// title summarises a message: "[FIRING:2] CPU high on web-1, web-2".
func title(status string, firing int, alerts []notify.Alert) string {
	var b strings.Builder
	if status == notify.StatusFiring {
		fmt.Fprintf(&b, "[FIRING:%d] ", firing)
	} else {
		b.WriteString("[RESOLVED] ")
	}
	b.WriteString(distinct(alerts, 2, func(a notify.Alert) string { return a.RuleName }))
	b.WriteString(" on ")
	b.WriteString(distinct(alerts, 3, func(a notify.Alert) string { return a.Machine }))
	return b.String()
}

// distinct joins up to n distinct values of f, then "+K more".
func distinct(alerts []notify.Alert, n int, f func(notify.Alert) string) string {
	var vals []string
	seen := map[string]bool{}
	for _, a := range alerts {
		v := f(a)
		if !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	if len(vals) <= n {
		return strings.Join(vals, ", ")
	}
	return strings.Join(vals[:n], ", ") + fmt.Sprintf(" +%d more", len(vals)-n)
}

// job is one message for one channel.
type job struct {
	cfg    notify.Config
	msg    notify.Message
	outbox []string // its outbox rows (PostgreSQL)
}

// worker delivers one channel's messages in order, off the hot path: a
// slow or failing channel only fills its own queue.
type worker struct {
	queue  chan job
	cancel context.CancelFunc
}

// workerLocked returns channel id's worker, starting it. Caller holds e.mu.
func (e *Engine) workerLocked(id string) *worker {
	if w := e.workers[id]; w != nil {
		return w
	}
	parent := e.runCtx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	w := &worker{queue: make(chan job, e.opts.QueueSize), cancel: cancel}
	e.workers[id] = w
	e.workersWG.Add(1)
	go func() {
		defer e.workersWG.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case j := <-w.queue:
				e.deliver(ctx, j)
			}
		}
	}()
	return w
}

// deliver sends one message, counts the outcome and marks its outbox
// rows done. A leader that lost its lock sends nothing: its successor
// sends the rows.
func (e *Engine) deliver(ctx context.Context, j job) {
	if !e.fence(ctx) {
		e.m.notifications.WithLabelValues("not_leader").Inc()
		return
	}
	if e.opts.Sender == nil {
		e.m.notifications.WithLabelValues("failed").Inc()
		e.markDone(ctx, j.outbox, "failed")
		return
	}
	start := time.Now()
	if err := e.opts.Sender.Send(ctx, j.cfg, j.msg); err != nil {
		if ctx.Err() != nil {
			return // cancelled (stopped, or no longer leader): the rows stay open
		}
		e.m.notifications.WithLabelValues("failed").Inc()
		e.log.Warn("notification failed", "notifier", j.cfg.ID, "name", j.cfg.Name, "type", j.cfg.Type, "alerts", len(j.msg.Alerts), "err", err)
		e.markDone(ctx, j.outbox, "failed")
		return
	}
	e.markDone(ctx, j.outbox, "sent")
	e.m.notifications.WithLabelValues("sent").Inc()
	e.log.Debug("notification sent", "notifier", j.cfg.ID, "status", j.msg.Status, "alerts", len(j.msg.Alerts), "took", time.Since(start))
}

// markDone records the outcome of a message's outbox rows; a failure
// leaves them open (a next leader sends them again).
func (e *Engine) markDone(ctx context.Context, ids []string, result string) {
	if len(ids) == 0 {
		return
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := markDone(mctx, e.db, ids, result, e.now()); err != nil {
		e.log.Warn("record notification outcome (a next alert leader may send it again)", "err", err)
	}
}

// markDoneLater is markDone off the caller's locks.
func (e *Engine) markDoneLater(ids []string, result string) {
	if len(ids) == 0 {
		return
	}
	e.workersWG.Add(1)
	go func() {
		defer e.workersWG.Done()
		e.markDone(context.Background(), ids, result)
	}()
}

// removeWorkerLocked stops a deleted channel's worker. Caller holds e.mu.
func (e *Engine) removeWorkerLocked(id string) {
	if w := e.workers[id]; w != nil {
		w.cancel()
		delete(e.workers, id)
	}
	delete(e.groups, id)
}

// stopWorkers cancels every delivery and waits for the workers to exit.
func (e *Engine) stopWorkers() {
	e.mu.Lock()
	for id, w := range e.workers {
		w.cancel()
		delete(e.workers, id)
	}
	e.mu.Unlock()
	e.workersWG.Wait()
}
