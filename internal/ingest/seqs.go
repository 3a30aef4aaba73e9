package ingest

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// seqState is the newest durably stored batch of a machine's agent instance.
type seqState struct {
	instance uint64
	seq      uint64
	ts       int64 // of the batch, ms; used when restoring
}

// seqTable holds, per machine, the last stored seq of its current agent
// instance. mu protects m.
type seqTable struct {
	mu sync.Mutex
	m  map[string]seqState
}

func newSeqTable() *seqTable { return &seqTable{m: map[string]seqState{}} }

// last returns the last stored seq of instance, or 0.
func (t *seqTable) last(machine string, instance uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.m[machine]; ok && st.instance == instance {
		return st.seq
	}
	return 0
}

func (t *seqTable) isDup(machine string, instance, seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.m[machine]
	return ok && st.instance == instance && seq <= st.seq
}

func (t *seqTable) commit(machine string, instance, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.m[machine]
	if !ok || st.instance != instance || seq > st.seq {
		t.m[machine] = seqState{instance: instance, seq: seq}
	}
}

// Restore loads the last stored seq of every machine from the raw tier, so
// batches an agent replays after a hub restart are recognised as duplicates,
// and counts the series written within SeriesIdle against the series caps.
func (s *Server) Restore(ctx context.Context) error {
	now := s.opts.Now().UnixMilli()
	found := map[string]seqState{}
	mint, maxt := now-s.opts.MaxAge.Milliseconds()-3600_000, now+s.opts.MaxFuture.Milliseconds()
	err := s.opts.Storage.NewestSamples(ctx, seqMetric, mint, maxt, func(ls labels.Labels, t int64, v float64) {
		machine := ls.Get(metric.MachineLabel)
		instance, err := strconv.ParseUint(ls.Get("instance"), 16, 64)
		if err != nil {
			return
		}
		if cur, ok := found[machine]; !ok || t > cur.ts {
			found[machine] = seqState{instance: instance, seq: uint64(v), ts: t}
		}
	})
	if err != nil {
		return fmt.Errorf("restore ingest state: %w", err)
	}
	s.seqs.mu.Lock()
	for m, st := range found {
		s.seqs.m[m] = st
	}
	s.seqs.mu.Unlock()
	s.log.Debug("restored agent sequence numbers", "machines", len(found))
	if err := s.restoreSeries(ctx, now); err != nil {
		return err
	}
	_, total := s.series.counts("")
	s.log.Debug("restored active series", "series", total)
	return nil
}
