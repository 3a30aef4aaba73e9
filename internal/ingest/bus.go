package ingest

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// Bus, set in Options, takes the agents' validated batches in place of
// Storage (`hub --nats`, internal/bus): a writer's group commit becomes
// "publish these batches, wait for every acknowledgement", and a batch is
// acknowledged to its agent only after that. Storage still serves HTTP
// ingest, remote write and Restore.
type Bus interface {
	// Publish makes batches durable; it returns nil once every one is
	// acknowledged, else an error (then none is acknowledged to its agent,
	// whose stream ends so it resends them).
	Publish(ctx context.Context, batches []BusBatch) error
	// LastSeq is the newest seq the bus holds of a machine's agent
	// instance, 0 if none: the welcome's last_seq, so an agent moving from
	// another hub replays only what the bus does not have.
	LastSeq(ctx context.Context, machine string, instance uint64) (uint64, error)
}

// BusBatch is one agent batch for the bus: Values[i] is the value of
// Series[i] (labels without the machine label) at Ts, ms since epoch.
type BusBatch struct {
	Machine  string
	Instance uint64
	Seq      uint64
	Ts       int64
	Series   []*live.Series
	Values   []float64
}

// busTimeout bounds one group's publish and one welcome's seq lookup: an
// unreachable bus ends the streams (the agents buffer and fail over)
// instead of holding them.
const busTimeout = 5 * time.Second

// NoteSeq records that the bus stored a machine's agent instance up to
// seq, as another hub published it: a batch the agent then replays here
// is recognised as stored.
func (s *Server) NoteSeq(machine string, instance, seq uint64) {
	s.seqs.commit(machine, instance, seq)
}

// busWelcome asks the bus for the instance's last stored seq and records
// it, so the welcome and the writer's duplicate check agree with the bus.
func (s *Server) busWelcome(ctx context.Context, machine string, instance uint64) error {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	seq, err := s.opts.Bus.LastSeq(ctx, machine, instance)
	if err != nil {
		s.once.warn("bus", "agent stream refused: the bus cannot say which batches it has (logged once a minute)", "machine", machine, "err", err)
		return status.Errorf(codes.Unavailable, "hub cannot reach its sample bus: %v; the agent keeps its batches and retries", err)
	}
	if seq > 0 {
		s.seqs.commit(machine, instance, seq)
	}
	return nil
}

// publish is a writer's group commit with a Bus: the batches not stored yet
// are published, and acknowledged once the bus acknowledged all of them.
func (w *writer) publish(ctx context.Context, jobs []*job) {
	s := w.s
	start := time.Now()
	batches := make([]BusBatch, 0, len(jobs))
	var samples int
	for _, j := range jobs {
		if j.skip {
			continue
		}
		if s.seqs.isDup(j.st.machine, j.st.instance, j.seq) {
			s.m.duplicateBatches.Inc()
			continue
		}
		lv := make([]*live.Series, len(j.entries))
		for i, e := range j.entries {
			lv[i] = e.live
		}
		batches = append(batches, BusBatch{Machine: j.st.machine, Instance: j.st.instance, Seq: j.seq, Ts: j.ts, Series: lv, Values: j.values})
		samples += len(j.values)
	}
	if len(batches) > 0 {
		pctx, cancel := context.WithTimeout(ctx, busTimeout)
		err := s.opts.Bus.Publish(pctx, batches)
		cancel()
		if err != nil {
			s.commitFailed(jobs, samples, fmt.Errorf("publish to the bus: %w", err))
			return
		}
	}
	s.m.commitSeconds.Observe(time.Since(start).Seconds())
	s.m.ingested.Add(float64(samples))
	for _, j := range jobs {
		if !j.skip {
			s.seqs.commit(j.st.machine, j.st.instance, j.seq)
			s.m.batches.Inc()
		}
		j.st.ack(j.seq)
	}
}
