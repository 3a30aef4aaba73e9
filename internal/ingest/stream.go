package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// seqMetric is the bookkeeping series written with every batch, in the same
// commit as the batch's samples: its newest value per machine is the last
// stored seq, so duplicate detection survives a hub crash.
const seqMetric = "sysmonstm_agent_seq"

// series is one entry of a stream's series table. The stream's receive loop
// creates entries; after that only the stream's writer touches ref.
type series struct {
	lset labels.Labels // __name__, machine and the series' labels
	hash uint64        // lset.Hash(): the key in the hub's series book
	live *live.Series
	ref  store.SeriesRef // owned by the stream's writer
}

// overLimit marks a table slot whose definition a series cap refused: its
// values are dropped as series_limit.
var overLimit = &series{}

// stream is one agent connection.
type stream struct {
	s        *Server
	w        *writer
	machine  string
	instance uint64
	// mu protects table against releaseSeries; the receive loop is the
	// only writer, so its own reads need no lock.
	mu     sync.Mutex
	table  []*series // indexed by series id; nil = undefined or invalid
	closed bool      // releaseSeries ran: the series book holds nothing for us

	seqLabels labels.Labels
	seqHash   uint64
	seqRef    store.SeriesRef // owned by the writer

	lastLiveTs int64     // owned by the receive loop: newest ts sent to live state
	recvAt     time.Time // owned by the receive loop: when the current message was received
	refused    bool      // owned by the writer: a batch was not stored; store no later one

	acked  atomic.Uint64
	notify chan struct{}
	cancel context.CancelCauseFunc
}

func newStream(s *Server, h *pb.Hello, w *writer) *stream {
	st := &stream{
		s:        s,
		w:        w,
		machine:  h.GetMachineId(),
		instance: h.GetInstance(),
		seqLabels: labels.FromStrings(labels.MetricName, seqMetric, metric.MachineLabel, h.GetMachineId(),
			"instance", strconv.FormatUint(h.GetInstance(), 16)),
		notify: make(chan struct{}, 1),
	}
	st.seqHash = st.seqLabels.Hash()
	return st
}

// admitSeq counts the stream's sequence series (one per agent process)
// against the machine's series cap (not the hub-wide one); a machine at its
// cap takes no new agent process, since its batches could not be tracked.
func (st *stream) admitSeq() error {
	err := st.s.series.admit(st.machine, st.seqHash, st.s.opts.Now().UnixMilli(), admission{hold: true, hub: true})
	if err == nil {
		return nil
	}
	st.s.m.rejected.WithLabelValues(rejectTooManySeries).Inc()
	st.s.countRefused(err)
	st.s.once.warn("series:"+st.machine, "agent stream refused: series limit reached", "machine", st.machine, "err", err)
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	if le := (*limitError)(nil); errors.As(err, &le) && le.limit == limitMemory {
		return status.Errorf(codes.ResourceExhausted, "%v; the hub takes new machines again once its memory is below the mark", err)
	}
	return status.Errorf(codes.ResourceExhausted, "%v; the hub counts series for %s again once they have been idle for %s", err, st.machine, st.s.opts.SeriesIdle)
}

// releaseSeries gives back the stream's hold on its series when it ends;
// they keep counting for SeriesIdle, so reconnecting does not reset the caps.
func (st *stream) releaseSeries() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	st.closed = true
	now := st.s.opts.Now().UnixMilli()
	st.s.series.release(st.machine, st.seqHash, now)
	for _, e := range st.table {
		if e != nil && e != overLimit {
			st.s.series.release(st.machine, e.hash, now)
		}
	}
}

// define adds series definitions. An invalid definition is dropped (its
// values will be counted as unknown_series); a definition with labels the
// machine has not used yet is a new series and must fit the series caps,
// else it is refused and its values dropped as series_limit, while the
// stream and its other series go on. Only a series id beyond the table
// bound ends the stream.
func (st *stream) define(defs []*pb.SeriesDef) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	now := st.s.opts.Now().UnixMilli()
	for _, d := range defs {
		id := int(d.GetId())
		if id >= st.s.opts.MaxSeriesPerStream {
			return fmt.Errorf("series id %d exceeds the limit of %d series per stream", id, st.s.opts.MaxSeriesPerStream)
		}
		ls := protoLabels(d.GetLabels())
		if err := st.s.opts.Limits.ValidateSeries(d.GetName(), ls); err != nil {
			st.s.m.invalidSeries.Inc()
			st.s.once.warn("series:"+st.machine, "invalid series definition dropped", "machine", st.machine, "err", err)
			continue
		}
		for len(st.table) <= id {
			st.table = append(st.table, nil)
		}
		b := labels.NewScratchBuilder(len(ls) + 2)
		b.Add(labels.MetricName, d.GetName())
		b.Add(metric.MachineLabel, st.machine)
		for _, l := range ls {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		lset := b.Labels()
		h := lset.Hash()
		old := st.table[id]
		if old != nil && old != overLimit && old.hash == h && labels.Equal(old.lset, lset) {
			continue // the same definition again
		}
		if old != nil && old != overLimit {
			// Redefined with other labels: a new series. The old one keeps
			// counting for SeriesIdle.
			st.s.series.release(st.machine, old.hash, now)
		}
		if err := st.s.series.admit(st.machine, h, now, admission{hold: true}); err != nil {
			st.s.countRefused(err)
			st.s.once.warn("serieslimit:"+st.machine, "new series refused: series limit reached", "machine", st.machine, "metric", d.GetName(), "err", err)
			st.table[id] = overLimit
			continue
		}
		st.table[id] = &series{lset: lset, hash: h, live: liveSeries(lset, ls)}
	}
	return nil
}

// liveSeries returns the live identity of the series lset, whose labels
// besides its name and machine are ls (sorted): ls's strings are replaced by
// lset's, so that the series' text is kept once (lset's) and not also as the
// strings of the definition's message.
func liveSeries(lset labels.Labels, ls metric.Labels) *live.Series {
	var name string
	i := 0
	lset.Range(func(l labels.Label) {
		switch {
		case l.Name == labels.MetricName:
			name = l.Value
		case l.Name == metric.MachineLabel:
		case i < len(ls):
			ls[i] = metric.Label{Name: l.Name, Value: l.Value}
			i++
		}
	})
	return live.NewSeries(name, ls[:i])
}

// countRefused counts a series refused by a cap.
func (s *Server) countRefused(err error) {
	var le *limitError
	if errors.As(err, &le) {
		s.m.refusedSeries.WithLabelValues(le.limit).Inc()
	}
}

// job is one batch on its way through a writer. Jobs come from
// Server.newJob and go back with Server.putJob after their commit, so that
// their slices, a batch's size each, are not allocated per batch.
type job struct {
	st      *stream
	seq     uint64
	ts      int64
	entries []*series
	live    []*live.Series // entries[i].live, for the live state
	values  []float64      // values[i] is of entries[i]; decoded into, then compacted in place
	skip    bool           // invalid as a whole: acknowledge without storing
}

// newJob takes a job from the pool, empty but with the slices of an
// earlier batch.
func (s *Server) newJob(st *stream, seq uint64, ts int64) *job {
	j, _ := s.jobs.Get().(*job)
	if j == nil {
		j = &job{}
	}
	j.st, j.seq, j.ts = st, seq, ts
	return j
}

// putJob gives a committed job back to the pool; nothing may use it after.
func (s *Server) putJob(j *job) {
	clear(j.entries)
	clear(j.live)
	*j = job{entries: j.entries[:0], live: j.live[:0], values: j.values[:0]}
	s.jobs.Put(j)
}

// batch turns a wire batch into a job (see validate). The job takes b's
// values slice and compacts it in place: b must not be used after.
func (st *stream) batch(b *pb.Batch) *job {
	j := st.s.newJob(st, b.GetSeq(), b.GetTimestampMs())
	j.values = b.GetValues()
	return st.validate(j, b.GetSeriesIds())
}

// validate completes j, a received batch with its seq, ts and values, for
// the series ids: it drops (and counts) what is invalid, moving the
// accepted values to the front of j.values. The job is always queued so
// acks stay in order.
func (st *stream) validate(j *job, ids []uint32) *job {
	j.st = st
	vals := j.values
	reject := func(reason string, n int, msg string) *job {
		st.s.m.dropped.WithLabelValues(reason).Add(float64(n))
		st.s.once.warn(reason+":"+st.machine, "batch dropped", "machine", st.machine, "seq", j.seq, "reason", msg)
		j.skip = true
		j.values = j.values[:0]
		return j
	}
	if len(ids) != len(vals) {
		return reject(reasonInvalidBatch, len(vals), fmt.Sprintf("%d series ids but %d values", len(ids), len(vals)))
	}
	if j.seq == 0 {
		return reject(reasonInvalidBatch, len(vals), "seq must start at 1")
	}
	now := st.s.opts.Now().UnixMilli()
	if j.ts > now+st.s.opts.MaxFuture.Milliseconds() {
		return reject(reasonTooNew, len(vals), fmt.Sprintf("timestamp %d is more than %s in the future", j.ts, st.s.opts.MaxFuture))
	}
	if j.ts < now-st.s.opts.MaxAge.Milliseconds() {
		return reject(reasonTooOld, len(vals), fmt.Sprintf("timestamp %d is older than %s", j.ts, st.s.opts.MaxAge))
	}
	kept := 0
	for i, id := range ids {
		var e *series
		if int(id) < len(st.table) {
			e = st.table[id]
		}
		if e == nil {
			st.s.m.dropped.WithLabelValues(reasonUnknownSeries).Inc()
			continue
		}
		if e == overLimit {
			st.s.m.dropped.WithLabelValues(reasonSeriesLimit).Inc()
			continue
		}
		if metric.ValidateValue(vals[i]) != nil {
			st.s.m.dropped.WithLabelValues(reasonInvalidValue).Inc()
			continue
		}
		j.entries = append(j.entries, e)
		j.live = append(j.live, e.live)
		vals[kept] = vals[i]
		kept++
	}
	j.values = vals[:kept]
	return j
}

// publish sends an accepted batch to the live state at once, from the
// stream's receive loop, before it is queued for its writer: the live view
// never waits behind a storage commit (docs/architecture.md, "Live path").
// Acks still wait for the commit. The receive loop handles a stream's
// batches in order, and a batch older than the newest one published, or
// one the hub has already stored (an agent's replay after a reconnect), is
// not published again. If the batch's commit then fails, what the live view
// shows stays: the values were measured and accepted, and the agent resends
// the batch, which the store then keeps once.
func (st *stream) publish(j *job) {
	if j.skip || len(j.entries) == 0 || j.ts < st.lastLiveTs {
		return
	}
	if st.s.seqs.isDup(st.machine, st.instance, j.seq) {
		return
	}
	st.lastLiveTs = j.ts
	st.s.opts.Live.Update(st.machine, j.ts, j.live, j.values)
	if !st.recvAt.IsZero() {
		st.s.m.liveDelay.Observe(st.s.opts.Now().Sub(st.recvAt).Seconds())
	}
}

// ack records that every batch up to seq is durable and wakes the sender.
func (st *stream) ack(seq uint64) {
	for {
		cur := st.acked.Load()
		if seq <= cur || st.acked.CompareAndSwap(cur, seq) {
			break
		}
	}
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// fail ends the stream: its batch could not be stored, so the agent must
// reconnect and replay.
func (st *stream) fail(err error) {
	if st.cancel != nil {
		st.cancel(err)
	}
}

// sendAcks is the stream's only sender after the welcome.
func (st *stream) sendAcks(ctx context.Context, gs pb.Ingest_StreamServer) {
	var sent uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.notify:
		}
		seq := st.acked.Load()
		if seq == sent {
			continue
		}
		if err := gs.Send(&pb.HubMessage{Msg: &pb.HubMessage_Ack{Ack: &pb.Ack{Seq: seq}}}); err != nil {
			st.fail(err)
			return
		}
		sent = seq
	}
}
