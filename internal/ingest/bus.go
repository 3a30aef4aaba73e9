package ingest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// Bus, set in Options, takes the agents' validated batches in place of
// Storage (`hub --nats`, internal/bus): a writer's group commit becomes
// "publish these batches, wait for every acknowledgement", and a batch is
// acknowledged to its agent only after that. HTTP ingest and remote write
// publish their admitted samples too (publishHTTP, publishRW) and answer
// 2xx once the bus holds them. Storage still serves Restore.
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
// Series[i] (labels without the machine label) at Ts, ms since epoch. With
// Source set (live.SourceHTTP, live.SourceRemoteWrite) it is samples of one
// machine and Ts from HTTP ingest or remote write: Instance and Seq are 0,
// and a remote-write batch's Series carry every label as sent (the machine
// label too); MachineLabel names the label whose value is Machine.
type BusBatch struct {
	Machine      string
	Instance     uint64
	Seq          uint64
	Ts           int64
	Series       []*live.Series
	Values       []float64
	Source       string
	MachineLabel string
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
		s.putJob(j) // Publish returned: the bus holds its own copy
	}
}

// maxBusBatchSamples bounds the samples of one HTTP or remote-write bus
// batch, so one stays under NATS' default max_payload (1 MiB) with
// labels of a few hundred bytes per sample; more of one machine and
// timestamp go into several batches.
const maxBusBatchSamples = 2_000

// busError is a failed publish of HTTP or remote-write samples: the
// request is answered 503 with Retry-After and its sender retries.
type busError struct{ err error }

func (e *busError) Error() string { return e.err.Error() }
func (e *busError) Unwrap() error { return e.err }

// busPublish publishes an HTTP or remote-write request's batches and
// returns once the bus acknowledged every one. On error some may be
// stored already: the sender's retry stores them again, which a
// de-duplicating TSDB keeps once (identical samples).
func (s *Server) busPublish(ctx context.Context, batches []BusBatch) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	if err := s.opts.Bus.Publish(ctx, batches); err != nil {
		return &busError{fmt.Errorf("publish to the bus: %w", err)}
	}
	s.m.commitSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// publishHTTP is storeHTTP with a Bus: the samples go to the bus, one
// batch per timestamp, in place of the embedded store, and once the bus
// holds them all to this hub's live state (the other hubs' follow the
// bus).
func (s *Server) publishHTTP(ctx context.Context, machine string, samples []sample) (int, error) {
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].ts < samples[j].ts })
	var batches []BusBatch
	for i := 0; i < len(samples); {
		k := i
		for k < len(samples) && samples[k].ts == samples[i].ts && k-i < maxBusBatchSamples {
			k++
		}
		b := BusBatch{Machine: machine, Ts: samples[i].ts, Source: live.SourceHTTP,
			Series: make([]*live.Series, 0, k-i), Values: make([]float64, 0, k-i)}
		for _, sm := range samples[i:k] {
			b.Series = append(b.Series, live.NewSeries(sm.name, sm.ls))
			b.Values = append(b.Values, sm.v)
		}
		batches = append(batches, b)
		i = k
	}
	if err := s.busPublish(ctx, batches); err != nil {
		return 0, err
	}
	s.m.ingested.Add(float64(len(samples)))
	if !s.opts.Live.Known(machine) {
		s.opts.Live.Connect(live.MachineInfo{ID: machine, Hostname: machine, Source: live.SourceHTTP})
	}
	for _, b := range batches {
		s.opts.Live.Update(machine, b.Ts, b.Series, b.Values)
	}
	return len(samples), nil
}

// publishRW is storeRW with a Bus: the admitted samples go to the bus, one
// batch per dashboard machine and timestamp, every label as sent, in place
// of the embedded store; once the bus holds them all, to this hub's live
// state. Refused samples are added to res.
func (s *Server) publishRW(ctx context.Context, series []rwSeries, res *rwResult) error {
	type key struct {
		group string
		ts    int64
	}
	at := map[key]int{}
	var batches []BusBatch
	n := 0
	for i := range series {
		sr := &series[i]
		if sr.refused {
			res.rejectRefused(sr)
			continue
		}
		for _, sm := range sr.samples {
			k := key{sr.group, sm.Timestamp}
			j, ok := at[k]
			if !ok || len(batches[j].Values) >= maxBusBatchSamples {
				j = len(batches)
				at[k] = j
				b := BusBatch{Machine: sr.group, Ts: sm.Timestamp, Source: live.SourceRemoteWrite}
				if sr.group != "" {
					b.MachineLabel = s.opts.RemoteWriteMachineLabel
				}
				batches = append(batches, b)
			}
			batches[j].Series = append(batches[j].Series, sr.bus)
			batches[j].Values = append(batches[j].Values, sm.Value)
			n++
		}
	}
	// Older first: a following hub's live view ends at the newest.
	sort.SliceStable(batches, func(i, j int) bool { return batches[i].Ts < batches[j].Ts })
	if len(batches) > 0 {
		if err := s.busPublish(ctx, batches); err != nil {
			return err
		}
	}
	s.m.ingested.Add(float64(n))
	s.rwLive(series)
	return nil
}
