package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
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
	live *live.Series
	ref  storage.SeriesRef // owned by the stream's writer
}

// stream is one agent connection.
type stream struct {
	s        *Server
	w        *writer
	machine  string
	instance uint64
	table    []*series // indexed by series id; nil = undefined or invalid
	defined  int

	seqLabels labels.Labels
	seqRef    storage.SeriesRef // owned by the writer

	lastLiveTs int64 // owned by the writer: newest ts sent to live state
	refused    bool  // owned by the writer: a batch was not stored; store no later one

	acked  atomic.Uint64
	notify chan struct{}
	cancel context.CancelCauseFunc
}

func newStream(s *Server, h *pb.Hello, w *writer) *stream {
	return &stream{
		s:        s,
		w:        w,
		machine:  h.GetMachineId(),
		instance: h.GetInstance(),
		seqLabels: labels.FromStrings(labels.MetricName, seqMetric, metric.MachineLabel, h.GetMachineId(),
			"instance", strconv.FormatUint(h.GetInstance(), 16)),
		notify: make(chan struct{}, 1),
	}
}

// define adds series definitions. An invalid definition is dropped (its
// values will be counted as invalid_series); only exceeding the table bound
// ends the stream.
func (st *stream) define(defs []*pb.SeriesDef) error {
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
		if st.table[id] == nil {
			st.defined++
		}
		b := labels.NewScratchBuilder(len(ls) + 2)
		b.Add(labels.MetricName, d.GetName())
		b.Add(metric.MachineLabel, st.machine)
		for _, l := range ls {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		st.table[id] = &series{lset: b.Labels(), live: live.NewSeries(d.GetName(), ls)}
	}
	return nil
}

// job is one batch on its way through a writer.
type job struct {
	st      *stream
	seq     uint64
	ts      int64
	entries []*series
	values  []float64
	skip    bool // invalid as a whole: acknowledge without storing
}

// batch turns a wire batch into a job, dropping (and counting) what is
// invalid. The job is always queued so acks stay in order.
func (st *stream) batch(b *pb.Batch) *job {
	j := &job{st: st, seq: b.GetSeq(), ts: b.GetTimestampMs()}
	ids, vals := b.GetSeriesIds(), b.GetValues()
	reject := func(reason string, n int, msg string) *job {
		st.s.m.dropped.WithLabelValues(reason).Add(float64(n))
		st.s.once.warn(reason+":"+st.machine, "batch dropped", "machine", st.machine, "seq", j.seq, "reason", msg)
		j.skip = true
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
	j.entries = make([]*series, 0, len(ids))
	j.values = make([]float64, 0, len(vals))
	for i, id := range ids {
		var e *series
		if int(id) < len(st.table) {
			e = st.table[id]
		}
		if e == nil {
			st.s.m.dropped.WithLabelValues(reasonUnknownSeries).Inc()
			continue
		}
		if metric.ValidateValue(vals[i]) != nil {
			st.s.m.dropped.WithLabelValues(reasonInvalidValue).Inc()
			continue
		}
		j.entries = append(j.entries, e)
		j.values = append(j.values, vals[i])
	}
	return j
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
