package live

import (
	"sync"
	"sync/atomic"
)

// Event types.
const (
	EventMetrics = "metrics" // one batch of a machine's values
	EventMachine = "machine" // a machine connected, changed, came online or went offline
)

// Event is one message of the live stream.
type Event struct {
	Type    string // EventMetrics, EventMachine, or another type given to Publish
	Machine string // machine id; "" for events not tied to a machine
	// JSON is the pre-encoded WebSocket message, shared by every subscriber:
	// never modify it.
	JSON []byte
}

// DefaultQueue is the subscriber queue length used when Subscribe gets 0.
const DefaultQueue = 256

// Subscription receives the live events. Its queue is bounded: a subscriber
// that falls a full queue behind is dropped (its channel is closed and
// Dropped reports true) so that it never slows Update.
type Subscription struct {
	state *State
	// filter is the set of machine ids whose metrics and processes events
	// are wanted; nil means every machine. Machine events always pass.
	filter atomic.Pointer[map[string]struct{}]

	mu      sync.Mutex // protects ch against send after close, closed, dropped
	ch      chan Event
	closed  bool
	dropped bool
}

// C returns the event channel. It is closed by Close or when the subscriber
// is dropped.
func (sub *Subscription) C() <-chan Event { return sub.ch }

// Dropped reports whether the subscription was closed because its queue was
// full.
func (sub *Subscription) Dropped() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.dropped
}

// SetMachines narrows metrics and processes events to the given machine ids; an empty list
// means every machine. Machine and other events are never filtered.
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

// Close ends the subscription and closes its channel. It is safe to call more
// than once and after a drop.
func (sub *Subscription) Close() {
	sub.mu.Lock()
	if !sub.closed {
		sub.closed = true
		close(sub.ch)
	}
	sub.mu.Unlock()
	sub.state.subs.remove(sub)
}

// send queues ev without blocking; it reports whether the subscriber was
// dropped by this call.
func (sub *Subscription) send(ev Event) (dropped bool) {
	if ev.Type == EventMetrics || ev.Type == EventProcesses {
		if f := sub.filter.Load(); f != nil {
			if _, ok := (*f)[ev.Machine]; !ok {
				return false
			}
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return false
	}
	select {
	case sub.ch <- ev:
		return false
	default:
		sub.closed = true
		sub.dropped = true
		close(sub.ch)
		return true
	}
}

// subscribers is the copy-on-write list of subscriptions: publishing reads
// it without a lock.
type subscribers struct {
	list atomic.Pointer[[]*Subscription]
	mu   sync.Mutex // serialises writers of list
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

// Subscribe starts a subscription with a queue of the given length
// (DefaultQueue when queue <= 0). The caller must Close it.
//
// Subscribe first, then read Machines: events that race with the snapshot
// are delivered (possibly repeating what the snapshot shows), never lost.
func (s *State) Subscribe(queue int) *Subscription {
	if queue <= 0 {
		queue = DefaultQueue
	}
	sub := &Subscription{state: s, ch: make(chan Event, queue)}
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
			s.log.Warn("live subscriber dropped: queue full", "queue", cap(sub.ch))
			s.subs.remove(sub)
		}
	}
}
