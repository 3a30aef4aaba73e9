package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/prometheus/storage"
)

// Group-commit bounds: a writer takes whatever is queued, up to these, into
// one appender and one WAL write.
const (
	maxJobsPerCommit    = 512
	maxSamplesPerCommit = 200_000
	writerQueue         = 256
)

// writer appends queued jobs in group commits. Each stream is pinned to one
// writer, so the series refs of a stream are touched by one goroutine only.
type writer struct {
	s *Server
	q chan *job
}

func newWriter(s *Server) *writer {
	return &writer{s: s, q: make(chan *job, writerQueue)}
}

func (w *writer) run(ctx context.Context) {
	jobs := make([]*job, 0, maxJobsPerCommit)
	for {
		var first *job
		select {
		case <-ctx.Done():
			return
		case first = <-w.q:
		}
		jobs = append(jobs[:0], first)
		samples := len(first.values)
	drain:
		for len(jobs) < maxJobsPerCommit && samples < maxSamplesPerCommit {
			select {
			case j := <-w.q:
				jobs = append(jobs, j)
				samples += len(j.values)
			default:
				break drain
			}
		}
		w.commit(ctx, jobs)
	}
}

// commit stores jobs in one appender. On success each job is acknowledged and
// its values go to the live state; on failure the jobs' streams are ended so
// their agents replay.
func (w *writer) commit(ctx context.Context, jobs []*job) {
	s := w.s
	start := time.Now()
	app := s.opts.Storage.Appender(ctx)
	var stored int
	maxTs := map[string]int64{}
	for _, j := range jobs {
		if j.skip || s.seqs.isDup(j.st.machine, j.st.instance, j.seq) {
			if !j.skip {
				s.m.duplicateBatches.Inc()
			}
			continue
		}
		for i, e := range j.entries {
			ref, err := app.Append(e.ref, e.lset, j.ts, j.values[i])
			if err != nil {
				s.m.dropped.WithLabelValues(appendReason(err)).Inc()
				continue
			}
			e.ref = ref
			stored++
		}
		ref, err := app.Append(j.st.seqRef, j.st.seqLabels, j.ts, float64(j.seq))
		if err == nil {
			j.st.seqRef = ref
		}
		if j.ts > maxTs[j.st.machine] {
			maxTs[j.st.machine] = j.ts
		}
	}
	if err := app.Commit(); err != nil {
		s.log.Error("storage commit failed; agents will replay", "err", err, "batches", len(jobs))
		for _, j := range jobs {
			j.st.fail(errors.New("storage commit failed"))
		}
		return
	}
	s.m.commitSeconds.Observe(time.Since(start).Seconds())
	s.m.ingested.Add(float64(stored))
	for m, ts := range maxTs {
		s.opts.Storage.NoteWritten(m, ts)
	}
	for _, j := range jobs {
		if !j.skip {
			s.seqs.commit(j.st.machine, j.st.instance, j.seq)
			s.m.batches.Inc()
			if j.ts >= j.st.lastLiveTs && len(j.entries) > 0 {
				j.st.lastLiveTs = j.ts
				lv := make([]*liveSeries, 0, len(j.entries))
				for _, e := range j.entries {
					lv = append(lv, e.live)
				}
				s.opts.Live.Update(j.st.machine, j.ts, lv, j.values)
			}
		}
		j.st.ack(j.seq)
	}
}

// appendReason classifies a rejected sample for sysmonstm_dropped_samples_total.
func appendReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return reasonDuplicate
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return reasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		return reasonTooOld
	default:
		return reasonStorage
	}
}
