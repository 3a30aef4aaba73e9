package collect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// collectSlack is how long past Timeout Set.Collect waits for collectors that
// honour their context's deadline to hand their samples over: a tenth of the
// timeout, at least minSlack.
func collectSlack(timeout time.Duration) time.Duration {
	return max(timeout/10, minSlack)
}

const minSlack = 20 * time.Millisecond

// warnEvery bounds how often one collector's problems are logged.
const warnEvery = time.Minute

// Set runs a fixed list of collectors concurrently, each under a hard
// timeout. A collector still running at the deadline is skipped for that tick
// and is not started again until its stuck run returns (a stale NFS statfs
// can block forever), so one slow source never delays the others.
//
// Collect must not be called concurrently with itself; Names and Stats may
// be called at any time.
type Set struct {
	timeout time.Duration
	log     *slog.Logger
	runners []*runner
	out     []metric.Sample // the slice Collect returns, reused every tick; owned by Collect
	tick    uint64          // number of the current tick; owned by Collect
}

// runner is one collector's slot in a Set.
type runner struct {
	c Collector

	mu       sync.Mutex // protects every field below
	running  bool       // a Collect goroutine has not returned yet
	tick     uint64     // the tick of the latest run that finished
	batch    Batch      // written only by the running goroutine
	stat     CollectorStat
	lastWarn time.Time
}

// CollectorStat describes a collector's latest tick.
type CollectorStat struct {
	Name     string
	Duration time.Duration // wall time of the latest finished run
	Err      error         // error of the latest finished run, nil on success
	Skipped  bool          // the latest tick dropped its samples: timed out or still stuck
}

// NewSet returns a Set that runs cs under opts.Timeout.
func NewSet(opts Options, cs ...Collector) *Set {
	opts = opts.withDefaults()
	s := &Set{timeout: opts.Timeout, log: opts.Logger}
	for _, c := range cs {
		s.runners = append(s.runners, &runner{c: c, stat: CollectorStat{Name: c.Name()}})
	}
	return s
}

// Names returns the collectors' names in registration order.
func (s *Set) Names() []string {
	names := make([]string, len(s.runners))
	for i, r := range s.runners {
		names[i] = r.c.Name()
	}
	return names
}

// Stats returns each collector's latest duration, error and skip state, in
// registration order.
func (s *Set) Stats() []CollectorStat {
	out := make([]CollectorStat, len(s.runners))
	for i, r := range s.runners {
		r.mu.Lock()
		out[i] = r.stat
		r.mu.Unlock()
	}
	return out
}

// Collect runs one tick and returns the samples of every collector that
// finished in time, in registration order. It returns after at most Timeout
// plus a tenth of it (at least 20ms) of slack, or earlier when ctx ends.
// The slice is reused by the next Collect (no allocation per tick): callers
// must be done with it by then. Its spare capacity takes a few more samples
// (the agent's process states and pushed values) without a copy.
func (s *Set) Collect(ctx context.Context) []metric.Sample {
	parentDone := ctx.Done()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	s.tick++
	tick := s.tick

	done := make(chan struct{}, len(s.runners))
	pending := 0
	for _, r := range s.runners {
		if r.start(ctx, tick, done) {
			pending++
			continue
		}
		s.warn(r, "collector still stuck in an earlier tick; skipped", nil)
	}

	timer := time.NewTimer(s.timeout + collectSlack(s.timeout))
	defer timer.Stop()
wait:
	for pending > 0 {
		select {
		case <-done:
			pending--
		case <-timer.C:
			break wait
		case <-parentDone:
			break wait
		}
	}

	out := s.out[:0]
	for _, r := range s.runners {
		r.mu.Lock()
		switch {
		case r.running:
			r.stat.Skipped = true
			s.warnLocked(r, "collector timed out; samples dropped this tick", nil)
		case r.tick != tick: // not started this tick: was stuck, returned just now
			r.stat.Skipped = true
		default:
			r.stat.Skipped = false
			out = append(out, r.batch.Samples...)
			if r.stat.Err != nil {
				s.warnLocked(r, "collector failed", r.stat.Err)
			}
		}
		r.mu.Unlock()
	}
	if spare := len(out)/4 + 16; cap(out)-len(out) < spare { // first ticks only
		out = append(make([]metric.Sample, 0, len(out)+spare), out...)
	}
	s.out = out
	return out
}

// start launches r's collector unless its previous run is still stuck.
func (r *runner) start(ctx context.Context, tick uint64, done chan<- struct{}) bool {
	r.mu.Lock()
	if r.running { // the stuck run keeps the slot; a second run could pile up
		r.mu.Unlock()
		return false
	}
	r.running = true
	r.batch.Samples = r.batch.Samples[:0]
	r.mu.Unlock()

	go func() {
		begin := time.Now()
		err := r.run(ctx)
		d := time.Since(begin)
		r.mu.Lock()
		r.running = false
		r.tick = tick
		r.stat.Duration = d
		r.stat.Err = err
		r.mu.Unlock()
		done <- struct{}{} // buffered for every runner: never blocks
	}()
	return true
}

// run calls the collector, turning a panic into an error so one broken
// source cannot take the agent down.
func (r *runner) run(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("collector %s panicked: %v", r.c.Name(), p)
		}
	}()
	return r.c.Collect(ctx, &r.batch)
}

func (s *Set) warn(r *runner, msg string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stat.Skipped = true
	s.warnLocked(r, msg, err)
}

// warnLocked logs at most once per warnEvery per collector; r.mu is held.
func (s *Set) warnLocked(r *runner, msg string, err error) {
	now := time.Now()
	if !r.lastWarn.IsZero() && now.Sub(r.lastWarn) < warnEvery {
		return
	}
	r.lastWarn = now
	attrs := []any{slog.String("collector", r.c.Name()), slog.Duration("timeout", s.timeout)}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	s.log.Warn(msg, attrs...)
}
