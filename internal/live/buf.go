package live

import (
	"sync"
	"sync/atomic"
)

// maxPooledEvent bounds the capacity of an event buffer kept for reuse: a
// machine with tens of thousands of series makes messages of megabytes,
// rare enough to leave to the collector.
const maxPooledEvent = 4 << 20

// eventBuf is the memory of one metrics event's JSON, shared by the
// subscribers that queued it and counted so that it can be reused once
// they have all written it. At 1 M samples/s the metrics events are about
// 110 MB/s of JSON; made anew for each event, they were 94 % of the hub's
// allocations and set off a collection every few seconds (docs/benchmarks.md,
// "Live path latency").
//
// Counting is one-sided for safety: a holder that never calls Release only
// keeps the buffer from being reused (the collector takes it as before);
// the buffer goes back to the pool only when every reference taken has
// been given back.
type eventBuf struct {
	b    []byte
	refs atomic.Int32
}

var eventBufs = sync.Pool{New: func() any { return new(eventBuf) }}

// newEventBuf returns a buffer of at least size bytes' capacity, held once
// (by the publisher).
func newEventBuf(size int) *eventBuf {
	eb := eventBufs.Get().(*eventBuf)
	if cap(eb.b) < size {
		eb.b = make([]byte, 0, size)
	}
	eb.b = eb.b[:0]
	eb.refs.Store(1)
	return eb
}

// hold takes one more reference.
func (eb *eventBuf) hold() { eb.refs.Add(1) }

// release gives one reference back; the last one returns the buffer.
func (eb *eventBuf) release() {
	// Below zero would be a release without its hold: the buffer went
	// back already, and putting it back twice would hand it out twice.
	if eb.refs.Add(-1) == 0 && cap(eb.b) <= maxPooledEvent {
		eventBufs.Put(eb)
	}
}

// Release tells the live state that the caller, a subscriber, is done with
// ev: its JSON has been written or dropped and is not read again. The
// event's memory may then be reused for a later event, so ev.JSON must not
// be touched after it. Calling it is optional (an event not released is
// left to the garbage collector) but must happen at most once per event
// received.
func (ev Event) Release() {
	if ev.buf != nil {
		ev.buf.release()
	}
}
