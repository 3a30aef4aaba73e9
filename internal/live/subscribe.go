package live

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/wire"
)

// Event types (the message types of internal/wire).
const (
	EventMetrics = wire.TypeMetrics // one batch of a machine's values
	EventMachine = wire.TypeMachine // a machine connected, changed, came online, went offline or was forgotten
)

// Event is one message of the live stream.
type Event struct {
	Type    string // EventMetrics, EventMachine, or another type given to Publish
	Machine string // machine id; "" for events not tied to a machine
	// JSON is the pre-encoded WebSocket message, shared by every subscriber:
	// never modify it.
	JSON []byte
	// At is when Update took the batch of a metrics event (the start of
	// sysmonstm_live_delay_seconds{stage="websocket"}); zero for others.
	At time.Time
	// buf, when set, holds JSON's memory: each subscriber that queues the
	// event holds it once, and Release gives that back (buf.go).
	buf *eventBuf
}

// DefaultQueue is the subscriber queue length used when Subscribe gets 0.
const DefaultQueue = 256

// maxBacklog bounds the events held for a subscriber beyond its queue that
// cannot be coalesced (alerts and other published events); past it the
// subscriber is dropped.
const maxBacklog = 1024

// Subscription receives the live events through a bounded queue. When the
// queue is full, events wait in a backlog where a machine's metrics,
// processes and machine events are coalesced: only the newest of each kind
// per machine is kept, so a subscriber that falls behind skips intermediate
// values instead of being cut off, and the backlog never outgrows the fleet.
// Only if more than maxBacklog other events pile up is the subscriber
// dropped (its channel is closed and Dropped reports true). Update and
// Publish never block on a subscriber.
type Subscription struct {
	state *State
	// summary marks a summary subscription (SubscribeSummary): it takes
	// summary events, and metrics and processes events only of the machines
	// in filter.
	summary bool
	// filter is the set of machine ids whose metrics and processes events
	// are wanted; nil means every machine (none for a summary
	// subscription). Machine events always pass.
	filter atomic.Pointer[map[string]struct{}]

	ch     chan Event    // the queue; closed by the pump when it exits
	notify chan struct{} // wakes the pump (capacity 1)
	done   chan struct{} // closed on Close or drop: the pump exits

	mu        sync.Mutex // protects everything below
	closed    bool
	dropped   bool
	pumping   bool             // the pump holds an event taken from the backlog
	order     []string         // backlog keys, oldest first
	backlog   map[string]Event // key → newest event of that key
	uncoalesc int              // backlog entries that cannot be coalesced
	seq       uint64           // makes keys of uncoalescable events unique
}

// C returns the event channel. It is closed by Close or when the subscriber
// is dropped.
func (sub *Subscription) C() <-chan Event { return sub.ch }

// Dropped reports whether the subscription was closed because it fell too
// far behind (see Subscription) or was dropped with Drop.
func (sub *Subscription) Dropped() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.dropped
}

// SetMachines narrows metrics and processes events to the given machine ids;
// an empty list means every machine (none for a summary subscription).
// Machine, summary and other events are never filtered.
func (sub *Subscription) SetMachines(ids []string) {
	if len(ids) == 0 {
		sub.filter.Store(nil)
		return
	}
	f := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		f[id] = struct{}{}
	}
	sub.filter.Store(&f)
}

// Close ends the subscription and closes its channel (asynchronously, once
// the pump has stopped). It is safe to call more than once and after a drop.
func (sub *Subscription) Close() {
	sub.mu.Lock()
	sub.stopLocked()
	sub.mu.Unlock()
	sub.state.subs.remove(sub)
}

// Drop ends a subscription whose consumer is stuck (e.g. a WebSocket write
// timed out): like Close, but it counts as a dropped client.
func (sub *Subscription) Drop() {
	sub.mu.Lock()
	first := !sub.closed
	if first {
		sub.dropped = true
	}
	sub.stopLocked()
	sub.mu.Unlock()
	sub.state.subs.remove(sub)
	if first {
		sub.state.metrics.droppedClients.Inc()
	}
}

func (sub *Subscription) stopLocked() {
	if !sub.closed {
		sub.closed = true
		close(sub.done)
	}
}

// coalesceKey names the slot an event may replace in the backlog, or "" when
// the event must be delivered as it is.
func coalesceKey(ev Event) string {
	switch ev.Type {
	case EventMetrics, EventProcesses, EventMachine, EventSummary:
		if ev.Machine != "" {
			return ev.Type + "\x00" + ev.Machine
		}
	}
	return ""
}

// wants reports whether the metrics and processes events of machine id
// pass the subscription's filter.
func (sub *Subscription) wants(id string) bool {
	f := sub.filter.Load()
	if f == nil {
		return !sub.summary
	}
	_, ok := (*f)[id]
	return ok
}

// send queues ev without blocking; it reports whether the subscriber was
// dropped by this call.
func (sub *Subscription) send(ev Event) (dropped bool) {
	switch ev.Type {
	case EventMetrics, EventProcesses:
		if !sub.wants(ev.Machine) {
			return false
		}
	case EventSummary:
		if !sub.summary {
			return false
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return false
	}
	if ev.buf != nil {
		// Held before it is queued: the consumer may release it at once.
		ev.buf.hold()
	}
	if len(sub.order) == 0 && !sub.pumping {
		select {
		case sub.ch <- ev:
			return false
		default:
		}
	}
	key := coalesceKey(ev)
	if key != "" {
		if old, ok := sub.backlog[key]; ok {
			sub.backlog[key] = ev // newer state replaces the waiting one, in place
			old.Release()
			sub.state.metrics.coalesced.Inc()
			return false
		}
	} else {
		if sub.uncoalesc >= maxBacklog {
			ev.Release()
			sub.dropped = true
			sub.stopLocked()
			return true
		}
		sub.uncoalesc++
		sub.seq++
		key = "\x01" + strconv.FormatUint(sub.seq, 10)
	}
	if sub.backlog == nil {
		sub.backlog = map[string]Event{}
	}
	sub.backlog[key] = ev
	sub.order = append(sub.order, key)
	select {
	case sub.notify <- struct{}{}:
	default:
	}
	return false
}

// pump moves backlogged events into the queue as the consumer makes room,
// oldest first. It owns closing the channel.
func (sub *Subscription) pump() {
	defer close(sub.ch)
	for {
		select {
		case <-sub.done:
			return
		case <-sub.notify:
		}
		for {
			sub.mu.Lock()
			if len(sub.order) == 0 {
				sub.pumping = false
				sub.mu.Unlock()
				break
			}
			key := sub.order[0]
			sub.order[0] = ""
			sub.order = sub.order[1:]
			ev := sub.backlog[key]
			delete(sub.backlog, key)
			if coalesceKey(ev) == "" {
				sub.uncoalesc--
			}
			sub.pumping = true
			sub.mu.Unlock()
			select {
			case sub.ch <- ev:
			case <-sub.done:
				return
			}
		}
	}
}

// subscribers is the copy-on-write list of subscriptions: publishing reads
// it without a lock.
type subscribers struct {
	list     atomic.Pointer[[]*Subscription]
	nsummary atomic.Int32 // summary subscriptions in list
	mu       sync.Mutex   // serialises writers of list
}

func (ss *subscribers) add(sub *Subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var next []*Subscription
	if cur := ss.list.Load(); cur != nil {
		next = make([]*Subscription, 0, len(*cur)+1)
		next = append(next, *cur...)
	}
	next = append(next, sub)
	if sub.summary {
		ss.nsummary.Add(1)
	}
	ss.list.Store(&next)
}

func (ss *subscribers) remove(sub *Subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	cur := ss.list.Load()
	if cur == nil {
		return
	}
	next := make([]*Subscription, 0, len(*cur))
	for _, s := range *cur {
		if s != sub {
			next = append(next, s)
		}
	}
	if len(next) == len(*cur) {
		return
	}
	if sub.summary {
		ss.nsummary.Add(-1)
	}
	if len(next) == 0 {
		ss.list.Store(nil)
		return
	}
	ss.list.Store(&next)
}

// any reports whether anyone is subscribed (so events are worth encoding).
func (ss *subscribers) any() bool {
	cur := ss.list.Load()
	return cur != nil && len(*cur) > 0
}

// summaries reports whether a summary subscription exists (so summaries are
// worth working out).
func (ss *subscribers) summaries() bool { return ss.nsummary.Load() > 0 }

// wantMetrics reports whether a subscriber takes machine id's metrics
// events: any full subscription whose filter lets them pass, or a summary
// subscription that asked for the machine. It does not allocate.
func (ss *subscribers) wantMetrics(id string) bool {
	cur := ss.list.Load()
	if cur == nil {
		return false
	}
	for _, sub := range *cur {
		if sub.wants(id) {
			return true
		}
	}
	return false
}

// Subscribe starts a subscription with a queue of the given length
// (DefaultQueue when queue <= 0). The caller must Close it.
//
// Subscribe first, then read Machines: events that race with the snapshot
// are delivered (possibly repeating what the snapshot shows), never lost.
func (s *State) Subscribe(queue int) *Subscription {
	return s.subscribe(queue, false)
}

func (s *State) subscribe(queue int, summary bool) *Subscription {
	if queue <= 0 {
		queue = DefaultQueue
	}
	sub := &Subscription{state: s, summary: summary, ch: make(chan Event, queue), notify: make(chan struct{}, 1), done: make(chan struct{})}
	go sub.pump()
	s.subs.add(sub)
	return sub
}

// Publish sends ev to every subscriber without blocking (e.g. alert events
// from the alert engine). ev.JSON must be a complete WebSocket message.
func (s *State) Publish(ev Event) {
	cur := s.subs.list.Load()
	if cur == nil {
		return
	}
	for _, sub := range *cur {
		if sub.send(ev) {
			s.metrics.droppedClients.Inc()
			s.log.Warn("live subscriber dropped: too many events it could not take", "queue", cap(sub.ch), "backlog", maxBacklog)
			s.subs.remove(sub)
		}
	}
}
