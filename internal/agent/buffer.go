package agent

import sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"

// buffer is the FIFO of unacknowledged batches, bounded by the encoded size
// of its batches. Batches enter in seq order and leave only from the front
// (acked or dropped), so the seqs it holds are always contiguous. Not safe
// for concurrent use; Agent.mu guards it.
type buffer struct {
	items []entry // items[head:] are live
	head  int
	bytes int // encoded size of the live batches
	limit int // bound on bytes; the newest batch is kept even if larger
}

type entry struct {
	b    *sysmonstmv1.Batch
	size int // proto.Size(b)
}

func (q *buffer) len() int { return len(q.items) - q.head }

// at returns the i-th oldest live batch.
func (q *buffer) at(i int) *sysmonstmv1.Batch { return q.items[q.head+i].b }

// span returns the first and last buffered seq; ok is false when empty.
func (q *buffer) span() (first, last uint64, ok bool) {
	if q.len() == 0 {
		return 0, 0, false
	}
	return q.items[q.head].b.Seq, q.items[len(q.items)-1].b.Seq, true
}

// get returns the buffered batch with the given seq, or nil.
func (q *buffer) get(seq uint64) *sysmonstmv1.Batch {
	first, last, ok := q.span()
	if !ok || seq < first || seq > last {
		return nil
	}
	return q.at(int(seq - first))
}

// push appends b (encoded size bytes) and drops the oldest batches while the
// buffer is over its limit; it returns how many batches and samples it dropped.
func (q *buffer) push(b *sysmonstmv1.Batch, size int) (dropped, samples int) {
	q.items = append(q.items, entry{b: b, size: size})
	q.bytes += size
	for q.bytes > q.limit && q.len() > 1 {
		samples += len(q.items[q.head].b.SeriesIds)
		q.popFront()
		dropped++
	}
	return dropped, samples
}

// popThrough removes every batch with seq <= seq and returns how many
// batches and samples it removed.
func (q *buffer) popThrough(seq uint64) (n, samples int) {
	for q.len() > 0 && q.items[q.head].b.Seq <= seq {
		samples += len(q.items[q.head].b.SeriesIds)
		q.popFront()
		n++
	}
	return n, samples
}

func (q *buffer) popFront() {
	q.bytes -= q.items[q.head].size
	q.items[q.head] = entry{}
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	} else if q.head >= 1024 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}
