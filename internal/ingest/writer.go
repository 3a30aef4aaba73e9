package ingest

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// Group-commit bounds: a writer takes whatever is queued, up to these, into
// one appender and one WAL write. The sample bound is near a steady group's
// size (~5,000-10,000 at 1 M samples/s over two writers) on purpose: the
// TSDB head goes over a group's series twice (Append, then Commit), and a
// group whose series no longer fit the CPU's caches between the passes
// costs more per sample (BenchmarkGroupCommit, 1 M series: ~230 ns per
// sample in groups of 5,000, ~260 at 10,000, ~310 at 200,000). With a
// 200,000 bound a writer that fell behind took ever larger groups, paid
// more for each sample and, on a saturated 2-core hub, never caught up
// (docs/benchmarks.md, "Group commits and the hourly pass at 1 M
// series"); with groups kept near the steady size a backlog is drained at
// the steady cost. A single batch larger than the bound is still one group.
const (
	maxJobsPerCommit    = 512
	maxSamplesPerCommit = 10_000
)

// A writer's queue holds up to writerQueueSamples samples (queued or in the
// commit under way) in up to writerQueue batches; a stream whose batch does
// not fit waits, and with it the stream's next batches and their live
// values. The bound is in samples because a batch's memory is its samples'
// (values, series and live entries, 24 B each): 1 M samples are ~24 MB a
// writer. That is 2 s of 1 M samples/s over the hub's two writers, so that a
// commit that stalls for a second — a garbage collection while the TSDB
// writes out a minute's finished head chunks did that at 1 M series on 2
// cores — no longer holds up the live view; with the 256 batches queued
// before (0.5 s at that rate) it did (docs/benchmarks.md, "Commit stalls
// kept off the live view").
const (
	writerQueue        = 4096
	writerQueueSamples = 1_000_000
)

// A group smaller than lingerBelow samples waits up to commitLinger for more
// batches before it commits. Real agents tick at their own phase in the
// second, so batches arrive one by one, not in bursts; without the wait each
// became a commit of its own and the per-commit cost (WAL record, locks,
// a write(2)) doubled the hub's CPU per sample at 100 k samples/s. The live
// view does not wait (stream.publish runs before the queue); only the
// agents' acks do, by at most commitLinger.
const (
	commitLinger = 10 * time.Millisecond
	lingerBelow  = maxSamplesPerCommit
)

// writer appends queued jobs in group commits. Each stream is pinned to one
// writer, so the series refs of a stream are touched by one goroutine only.
type writer struct {
	s    *Server
	q    chan *job
	room *semaphore.Weighted // samples the queue has room for (writerQueueSamples)
}

func newWriter(s *Server) *writer {
	return &writer{s: s, q: make(chan *job, writerQueue), room: semaphore.NewWeighted(writerQueueSamples)}
}

// weigh returns what j holds of its writer's queue from its queueing until
// its commit: its samples and its sequence sample, at most all of the
// queue. Its values are final once it is queued, so the weight is the same
// when it is released.
func weigh(j *job) int64 {
	return min(int64(len(j.values))+1, writerQueueSamples)
}

func (w *writer) run(ctx context.Context) {
	jobs := make([]*job, 0, maxJobsPerCommit)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
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
		if samples < lingerBelow && len(jobs) < maxJobsPerCommit {
			linger.Reset(commitLinger)
		wait:
			for len(jobs) < maxJobsPerCommit && samples < lingerBelow {
				select {
				case j := <-w.q:
					jobs = append(jobs, j)
					samples += len(j.values)
				case <-linger.C:
					break wait
				case <-ctx.Done():
					break wait
				}
			}
			linger.Stop()
		}
		var held int64
		for _, j := range jobs {
			held += weigh(j)
		}
		w.commit(ctx, jobs)
		w.room.Release(held)
	}
}

// commit stores jobs in one appender. On success each job is acknowledged
// (its values went to the live state when it was received, see
// stream.publish); on failure, or while storage refuses writes, the jobs'
// streams are ended unacknowledged so their agents resend.
// Once one of a stream's batches is refused, its later batches still queued
// are neither stored nor acknowledged: storing them would tell the agent
// (welcome.last_seq) that the refused batch is stored too.
func (w *writer) commit(ctx context.Context, jobs []*job) {
	s := w.s
	start := time.Now()
	jobs = slices.DeleteFunc(jobs, func(j *job) bool { return j.st.refused })
	if len(jobs) == 0 {
		return
	}
	if err := s.writable(); err != nil {
		s.refuseJobs(jobs, err)
		return
	}
	if s.opts.Bus != nil {
		w.publish(ctx, jobs)
		return
	}
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
		// Let the live path run: a group's appends take milliseconds (at
		// 1 M samples/s and 1 M series, ~0.4 ms per 1,000-sample batch),
		// and without a yield a stream's receive goroutine or a WebSocket
		// writer made runnable meanwhile waits for Go's 10 ms preemption
		// while both writers hold the two Ps of a 2-core hub
		// (docs/benchmarks.md, "Writers that yield to the live path").
		runtime.Gosched()
	}
	if err := app.Commit(); err != nil {
		s.commitFailed(jobs, stored, err)
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
		}
		j.st.ack(j.seq)
		s.putJob(j)
	}
}

// writable asks Options.Writable; nil when storage takes samples.
func (s *Server) writable() error {
	if s.opts.Writable == nil {
		return nil
	}
	return s.opts.Writable()
}

// refuseJobs ends the jobs' streams unacknowledged because storage refuses
// writes (err, from Options.Writable), counting their samples and streams.
func (s *Server) refuseJobs(jobs []*job, err error) {
	for _, j := range jobs {
		if !j.skip {
			s.m.dropped.WithLabelValues(reasonDiskFull).Add(float64(len(j.values)))
		}
		if !j.st.refused {
			j.st.refused = true
			j.st.fail(s.refuse(j.st.machine, err))
		}
	}
}

// refuse counts a stream refused because storage refuses writes, logs it
// at most once a minute, and returns the status the stream ends with.
func (s *Server) refuse(machine string, err error) error {
	s.m.rejected.WithLabelValues(rejectDiskFull).Inc()
	s.once.warn("refused", "agent stream refused: storage refuses writes; the agent keeps its batches and resends them (logged once a minute)",
		"machine", machine, "err", err)
	return status.Error(codes.Unavailable, "hub storage refuses samples: "+err.Error())
}

// commitFailed ends the streams of a commit that failed. Nothing of it is
// acknowledged, so the agents resend it.
func (s *Server) commitFailed(jobs []*job, samples int, err error) {
	s.m.dropped.WithLabelValues(reasonStorage).Add(float64(samples))
	msg := "hub storage error; the agent resends the batch"
	if isDiskFull(err) {
		// The store names the full disk; the path in the OS error stays in
		// the hub's log.
		msg = "hub storage refuses samples: disk full; the agent resends the batch"
	}
	s.once.log(slog.LevelError, "commit", "storage commit failed; agents will resend (logged once a minute)",
		"err", err, "batches", len(jobs), "samples", samples)
	for _, j := range jobs {
		if !j.st.refused {
			j.st.refused = true
			j.st.fail(status.Error(codes.Unavailable, msg))
		}
	}
}

// isDiskFull reports whether a storage error is a lack of space.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// appendReason classifies a rejected sample for sysmonstm_dropped_samples_total.
func appendReason(err error) string {
	switch {
	case errors.Is(err, store.ErrDuplicateSample):
		return reasonDuplicate
	case errors.Is(err, store.ErrOutOfOrder):
		return reasonOutOfOrder
	case errors.Is(err, store.ErrOutOfBounds), errors.Is(err, store.ErrTooOld):
		return reasonTooOld
	default:
		return reasonStorage
	}
}
