package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)

	// commitEvery bounds the samples one rollup appender holds.
	commitEvery = 100_000
)

// Rollup kinds, the values of the __rollup__ label, in the order of aggr.
var rollupKinds = [4]string{"min", "max", "sum", "count"}

// Run watches the free space and rolls up complete buckets every
// RollupInterval until ctx is done. A failed pass is logged and retried on
// the next tick; while the disk is full no pass runs.
func (s *Store) Run(ctx context.Context) error {
	watched := make(chan struct{})
	go func() { defer close(watched); s.watchSpace(ctx) }()
	defer func() { <-watched }()
	t := time.NewTicker(s.opts.RollupInterval)
	defer t.Stop()
	for {
		if s.Writable() != nil {
			s.log.Debug("rollup pass skipped: disk full")
		} else if err := s.Rollup(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rollup pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Rollup runs one rollup pass now: every machine's closed hours into
// blocks of the 1m tier, then its closed days into blocks of the 1h tier
// (batch.go), saving the watermarks with each. Run calls it on a timer;
// tests and shutdown may call it directly.
func (s *Store) Rollup(ctx context.Context) error {
	s.rollupMu.Lock()
	defer s.rollupMu.Unlock()
	if s.closed {
		return errors.New("rollup: store is closed")
	}
	began := time.Now()
	s.m.runs.Inc()
	err := s.rollupPass(ctx)
	s.m.lastDuration.Set(time.Since(began).Seconds())
	if err != nil {
		s.m.failures.Inc()
		if IsDiskFull(err) && !errors.Is(err, ErrDiskFull) {
			// The watermark file found no room: stop writes as a commit would.
			err = fmt.Errorf("%w (%v)", s.space.noteWriteError(err), err)
		}
	}
	return err
}

// job is one machine's range [start, end) (ms) to roll up into a tier.
type job struct {
	machine    string
	start, end int64
}

func (s *Store) rollupPass(ctx context.Context) error {
	// A commit a failed pass recorded but did not finish comes first.
	if err := s.finishPending(); err != nil {
		return err
	}
	now := s.now().UnixMilli()
	if s.minutes != nil {
		// The hourly pass takes the last hour; older ones wait in vain.
		s.minutes.expire(floorTo(now, hourMs) - hourMs)
	}
	rawStart, err := s.raw.StartTime()
	if err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	// A day at most per round, so that the 1m tier's retention (keep1m)
	// never drops minutes the 1h tier has not rolled up yet.
	for {
		jobs, jobsH := s.jobs1m(now, rawStart), []job(nil)
		if len(jobs) > 0 {
			err := s.rollTier(ctx, s.raw, Tier1m, jobs, hourMs, rollupRawSeries)
			if s.minutes != nil {
				// Machines that had jobs go on from their ends: no later
				// pass takes an hour before the last of them.
				s.minutes.expire(slices.MaxFunc(jobs, func(a, b job) int { return cmp.Compare(a.end, b.end) }).end)
			}
			if err != nil {
				return err
			}
		}
		if jobsH = s.jobs1h(); len(jobsH) > 0 {
			if err := s.rollTier(ctx, s.tier1m, Tier1h, jobsH, dayMs, rollupMinuteSeries); err != nil {
				return err
			}
		}
		if len(jobs) == 0 && len(jobsH) == 0 {
			break
		}
	}
	if s.prune(now) {
		return s.saveState()
	}
	return nil
}

// rollTier rolls jobs from src into blocks of tier and commits them; the
// jobs' machines' watermarks advance to their ends.
func (s *Store) rollTier(ctx context.Context, src tierSource, tier string, jobs []job, blockRange int64, roll seriesRollup) error {
	blocks, err := s.runJobs(ctx, src, tier, jobs, blockRange, roll)
	if err != nil {
		s.removeStaged(blocks)
		return err
	}
	marks := make(map[string]int64, len(jobs))
	for _, j := range jobs {
		marks[j.machine] = j.end
	}
	return s.commitBlocks(tier, blocks, marks)
}

// jobs1m returns the closed hours ready for the 1m tier. A machine's
// minutes are ready up to the older of now-RollupLag and its maxTs, so a
// disconnected agent's minutes wait for its replay; once even the
// out-of-order window has passed (nothing older can be accepted any more)
// they are final anyway. Only whole hours (batch1m) are rolled up, and a
// day at most per job.
func (s *Store) jobs1m(now, rawStart int64) []job {
	lag := s.opts.RollupLag.Milliseconds()
	final := now - lag - s.opts.OutOfOrderWindow.Milliseconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []job
	for m, w := range s.machines {
		if w.done1m == 0 {
			if rawStart == math.MaxInt64 {
				continue // nothing stored yet
			}
			// First sight of this machine: start where the raw tier starts.
			w.done1m = floorTo(rawStart, batch1m)
			if w.done1h == 0 {
				w.done1h = floorTo(w.done1m, batch1h)
			}
		}
		limit := min(now-lag, max(w.maxTs+1, final))
		end := min(floorTo(limit, batch1m), w.done1m+dayMs)
		if end > w.done1m {
			jobs = append(jobs, job{machine: m, start: w.done1m, end: end})
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].machine < jobs[j].machine })
	return jobs
}

// jobs1h returns the closed days (batch1h) whose minutes are all rolled
// up, two at most per job.
func (s *Store) jobs1h() []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []job
	for m, w := range s.machines {
		if w.done1m == 0 {
			continue
		}
		if w.done1h == 0 {
			w.done1h = floorTo(w.done1m, batch1h)
		}
		end := min(floorTo(w.done1m, batch1h), w.done1h+2*dayMs)
		if end > w.done1h {
			jobs = append(jobs, job{machine: m, start: w.done1h, end: end})
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].machine < jobs[j].machine })
	return jobs
}

// prune forgets machines silent for longer than raw retention (plus block
// slack) whose data is fully rolled up. It reports whether any went.
func (s *Store) prune(now int64) bool {
	horizon := now - s.opts.RetentionRaw.Milliseconds() - 2*tsdb.DefaultBlockDuration
	s.mu.Lock()
	defer s.mu.Unlock()
	pruned := false
	for m, w := range s.machines {
		if w.maxTs > 0 && w.maxTs < horizon && w.done1h > w.maxTs {
			delete(s.machines, m)
			pruned = true
		}
	}
	return pruned
}

// seriesRollup reads one source series' samples in [start, end) and appends
// its bucket aggregates; it returns samples appended and refused.
type seriesRollup func(app storage.Appender, b *labels.Builder, ser storage.Series, it chunkenc.Iterator, start, end int64) (appended, rejected int, _ chunkenc.Iterator, _ error)

// runJobs rolls every job's range from src into blocks for tier, staged
// and not yet committed, and returns their ULIDs. Machines are taken in
// groups: a group's batch is written as blocks once it holds s.batchSeries
// series, so no more than that plus one machine's rollups are held at
// once. From the VM raw tier, the jobs that share a range
// (an hourly pass: every machine's last hour) are read in one search
// (rollRun.stream) instead of one per machine.
func (s *Store) runJobs(ctx context.Context, src tierSource, tier string, jobs []job, blockRange int64, roll seriesRollup) (blocks []string, err error) {
	began := time.Now()
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, j := range jobs {
		mint, maxt = min(mint, j.start), max(maxt, j.end-1)
	}
	q, err := src.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("rollup %s: open querier: %w", tier, err)
	}
	defer q.Close()

	machines := len(jobs)
	r := &rollRun{s: s, ctx: ctx, tier: tier, blockRange: blockRange, roll: roll, pace: newPacer(s.opts.RollupDuty, s.sleep)}
	defer r.close()
	if tier == Tier1m && s.minutes != nil {
		if group, rest := s.minutes.group(jobs); len(group) > 0 {
			raw, err := r.fromMinutes(group)
			switch {
			case errors.Is(err, errMinutesLost):
				s.log.Warn("rollup: the minutes kept of an hour cannot stand in for its raw samples; reading them back", "hour", time.UnixMilli(group[0].start).UTC(), "err", err)
				r.discard()
			case err != nil:
				return r.blocks, err
			default:
				jobs = append(rest, raw...)
			}
		}
	}
	if tier == Tier1m {
		for _, j := range jobs {
			s.m.hours.WithLabelValues("raw").Add(float64((j.end - j.start) / hourMs))
		}
	}
	if t, ok := src.(*Tier); ok && len(jobs) > 0 {
		// A TSDB tier is read through mappings; the VM engine reads its
		// files with pread and maps none. An hourly pass from the minutes
		// kept reads none of the raw tier's, and leaves them alone: the
		// head's chunk files among them, which the head's write may be
		// reading meanwhile (pageout would drop them from the page cache).
		defer s.mapped.begin("", t.Dir())()
	}
	if sq, ok := q.(seriesStreamer); ok {
		if group, rest := s.streamable(jobs); len(group) > 0 {
			err := r.stream(sq, group)
			if err == nil {
				err = s.fail(tier, "streamed")
			}
			switch {
			case errors.Is(err, errSeriesSplit):
				// Start over machine by machine, which reads a series'
				// blocks wherever the engine keeps them.
				s.log.Warn("rollup: a series came in two parts from the raw tier's search; rolling up machine by machine", "tier", tier)
				r.discard()
			case err != nil:
				return r.blocks, err
			default:
				jobs = rest
			}
		}
	}
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return r.blocks, err
		}
		err := r.machine(q, j)
		if rel, ok := q.(searchReleaser); ok {
			rel.releaseSearches()
		}
		if err != nil {
			return r.blocks, err
		}
		if err := r.flushIfFull(); err != nil {
			return r.blocks, err
		}
	}
	if err := r.flush(); err != nil {
		return r.blocks, err
	}
	s.m.samples.WithLabelValues(tier).Add(float64(r.appended))
	if r.rejected > 0 {
		s.m.rejected.WithLabelValues(tier).Add(float64(r.rejected))
		s.log.Warn("rollup samples refused by tier", "tier", tier, "refused", r.rejected)
	}
	s.log.Info("rollup done", "tier", tier, "machines", machines, "from_minutes", r.minuteHours, "samples", r.appended, "blocks", len(r.blocks), "seconds", time.Since(began).Seconds())
	return r.blocks, nil
}

// searchReleaser is a querier whose Selects hold their searches open until
// it is closed, and that can close them between Selects once their series
// are read: the VM raw tier's (a pass reads every machine's series through
// one querier, and an open search keeps its parts' index buffers).
type searchReleaser interface{ releaseSearches() }

// seriesStreamer is a querier that can hand out every series of a range
// one at a time from one search, in its own order: the VM raw tier's. Its
// engine keeps a part's series in the order of their ids, which scatters
// one machine's series across all of a part's index blocks, so that a
// search per machine reads nearly every index block again (and churns the
// engine's index-block cache: 2.8 GB of block headers unpacked in one pass
// at 260,000 series), where one search reads each once.
type seriesStreamer interface {
	eachSeries(ctx context.Context, mint, maxt int64, fn func(storage.Series) error, ms ...*labels.Matcher) error
}

// streamable picks the jobs worth reading in one search: the largest group
// sharing one range, when it holds at least half of the machines the store
// knows (a search reads every machine's blocks of the range; a few
// machines catching up are cheaper read one by one). rest is the others.
func (s *Store) streamable(jobs []job) (group, rest []job) {
	type span struct{ start, end int64 }
	n := map[span]int{}
	best, most := span{}, 0
	for _, j := range jobs {
		k := span{j.start, j.end}
		n[k]++
		if n[k] > most {
			best, most = k, n[k]
		}
	}
	s.mu.Lock()
	known := len(s.machines)
	s.mu.Unlock()
	if most < 2 || 2*most < known {
		return nil, jobs
	}
	for _, j := range jobs {
		if j.start == best.start && j.end == best.end {
			group = append(group, j)
		} else {
			rest = append(rest, j)
		}
	}
	return group, rest
}

// rollRun is one tier's part of a pass: the block batch being filled
// (nil between groups), the blocks staged so far and the counts.
type rollRun struct {
	s          *Store
	ctx        context.Context
	tier       string
	blockRange int64
	roll       seriesRollup

	batch              *blockBatch
	blocks             []string
	appended, rejected int
	minuteHours        int // machines whose hour came from the minutes kept
	b                  labels.Builder
	it                 chunkenc.Iterator
	pace               pacer
	yield              yielder
}

// current returns the block batch, making one when there is none.
func (r *rollRun) current() (*blockBatch, error) {
	if r.batch == nil {
		b, err := r.s.newBatch(r.blockRange)
		if err != nil {
			return nil, err
		}
		r.batch = b
	}
	return r.batch, nil
}

// full reports whether the batch holds a group's worth of series.
func (r *rollRun) full() bool {
	return r.batch != nil && r.batch.numSeries() >= r.s.batchSeries
}

// flushIfFull writes the batch once it is full, then rests (pacer).
func (r *rollRun) flushIfFull() error {
	if !r.full() {
		return nil
	}
	if err := r.flush(); err != nil {
		return err
	}
	return r.pace.rest(r.ctx)
}

// pacer spreads a rollup pass out: rest sleeps for the time worked since
// the last rest times ratio, so the pass works 1/(1+ratio) of its time.
// Its allocations then set off the collector's marking of the raw head
// that much less often; the live path and ingest get the cores meanwhile.
//
// A loop of background work calls tick once per unit (a series), which
// rests every paceSlice of work: on a 2-core hub at 1 M samples/s, ingest,
// the live path and the simulated agents need ~1.6 cores, so while a pass
// works ingest falls behind at about 0.6 of a core and catches up at 0.4
// while it rests. Resting every 10,000 series (0.5-1.3 s of work) let the
// writers fall that far behind before each rest; a slice of 10 ms should
// keep the backlog to a few milliseconds (reasoned from those rates, not
// yet measured against the old pacer on one machine: docs/benchmarks.md,
// "Group commits and the hourly pass at 1 M series").
type pacer struct {
	ratio float64
	since time.Time
	n     uint
	now   func() time.Time                                 // time.Now; tests inject
	sleep func(ctx context.Context, d time.Duration) error // sleepCtx; tests inject
}

// paceSlice is the work a pacer lets a loop do between rests; the clock is
// read every paceEvery ticks.
const paceSlice = 10 * time.Millisecond

var paceEvery uint = 32 // tests lower it

func newPacer(duty float64, sleep func(context.Context, time.Duration) error) pacer {
	if sleep == nil {
		sleep = sleepCtx
	}
	return pacer{ratio: 1/duty - 1, since: time.Now(), now: time.Now, sleep: sleep}
}

func (p *pacer) rest(ctx context.Context) error {
	if p.ratio <= 0 {
		return ctx.Err()
	}
	d := time.Duration(float64(p.now().Sub(p.since)) * p.ratio)
	err := p.sleep(ctx, d)
	p.since = p.now()
	return err
}

// tick counts a unit of work and rests once a slice has been worked since
// the last rest. Unpaced (duty 1), it only reports the context's end
// every paceEvery ticks.
func (p *pacer) tick(ctx context.Context) error {
	if p.n++; p.n%paceEvery != 0 {
		return nil
	}
	if p.ratio <= 0 || p.now().Sub(p.since) < paceSlice {
		return ctx.Err()
	}
	return p.rest(ctx)
}

// yielder lets the other goroutines of its processor run about every
// millisecond of a long loop of background work (a rollup pass, a merge):
// a live update or an ingest writer made runnable meanwhile would
// otherwise wait for Go's 10 ms preemption, while the pass and the
// writers hold both processors of a 2-core hub (the writers yield the same
// way: docs/benchmarks.md, "Writers that yield to the live path").
type yielder struct {
	last time.Time
	n    uint
}

// maybe yields when a millisecond has passed since the last yield; it
// reads the clock every 16th call.
func (y *yielder) maybe() {
	if y.n++; y.n%16 != 0 {
		return
	}
	if now := yieldClock(); now.Sub(y.last) >= time.Millisecond {
		yieldFn()
		y.last = yieldClock()
	}
}

// The yielder's clock and yield; tests replace them.
var (
	yieldClock = time.Now
	yieldFn    = runtime.Gosched
)

// sleepCtx sleeps for d or until ctx ends, and returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}

// flush writes the batch's blocks into the staging directory.
func (r *rollRun) flush() error {
	if r.batch == nil {
		return nil
	}
	if err := r.s.fail(r.tier, "full"); err != nil {
		return err
	}
	ids, dropped, err := r.batch.write(r.ctx, r.s.stagingPath(), r.s.tsdbLog)
	r.batch = nil
	r.blocks = append(r.blocks, ids...)
	r.appended -= dropped
	r.rejected += dropped
	if err != nil {
		return fmt.Errorf("rollup %s: write block: %w", r.tier, r.s.space.noteWriteError(err))
	}
	return r.s.fail(r.tier, "flushed")
}

func (r *rollRun) close() {
	if r.batch != nil {
		r.batch.close()
		r.batch = nil
	}
}

// discard drops everything rolled so far: the batch, the staged blocks
// and the counts.
func (r *rollRun) discard() {
	r.close()
	r.s.removeStaged(r.blocks)
	r.blocks, r.appended, r.rejected, r.minuteHours = nil, 0, 0, 0
}

// rollSink appends rollups into the run's block batch, committing every
// commitEvery samples and before the batch is written.
type rollSink struct {
	r       *rollRun
	app     storage.Appender // nil between commits
	pending int
}

// add rolls ser, a series of job j, into the batch.
func (k *rollSink) add(ser storage.Series, j job) error {
	if strings.HasPrefix(ser.Labels().Get(labels.MetricName), internalPrefix) {
		return nil
	}
	r := k.r
	return k.put(j, func(app storage.Appender) (n, rj int, err error) {
		n, rj, r.it, err = r.roll(app, &r.b, ser, r.it, j.start, j.end)
		return n, rj, err
	})
}

// put appends one series' rollups of job j with roll into the batch.
func (k *rollSink) put(j job, roll func(app storage.Appender) (n, rejected int, _ error)) error {
	r := k.r
	r.yield.maybe()
	if err := r.pace.tick(r.ctx); err != nil {
		return err
	}
	batch, err := r.current()
	if err != nil {
		return err
	}
	if k.app == nil {
		k.app = r.s.rollupTier(r.tier).Scaled(r.s.appender(r.ctx, batch))
	}
	n, rj, err := roll(k.app)
	if err != nil {
		return fmt.Errorf("rollup %s for machine %s: %w", r.tier, j.machine, err)
	}
	k.pending += n
	r.rejected += rj
	if k.pending >= commitEvery || r.full() {
		return k.commit()
	}
	return nil
}

func (k *rollSink) commit() error {
	if k.app == nil {
		return nil
	}
	err := k.app.Commit()
	k.app = nil
	if err != nil {
		return fmt.Errorf("rollup %s: commit: %w", k.r.tier, err)
	}
	k.r.appended += k.pending
	k.pending = 0
	return nil
}

func (k *rollSink) rollback() {
	if k.app != nil {
		_ = k.app.Rollback()
		k.app = nil
	}
}

// machine rolls one job's series from q into the batch and commits them.
func (r *rollRun) machine(q storage.Querier, j job) error {
	k := rollSink{r: r}
	hints := &storage.SelectHints{Start: j.start, End: j.end - 1}
	set := q.Select(r.ctx, false, hints, labels.MustNewMatcher(labels.MatchEqual, metric.MachineLabel, j.machine))
	for set.Next() {
		if err := k.add(set.At(), j); err != nil {
			k.rollback()
			return err
		}
	}
	if err := set.Err(); err != nil {
		k.rollback()
		return fmt.Errorf("rollup %s for machine %s: read: %w", r.tier, j.machine, err)
	}
	return k.commit()
}

// stream rolls the jobs, which share one range, from a single search of
// q: series come in the engine's order, each to its machine's job, and
// the batch is written as blocks whenever it is full.
func (r *rollRun) stream(q seriesStreamer, jobs []job) error {
	byMachine := make(map[string]job, len(jobs))
	for _, j := range jobs {
		byMachine[j.machine] = j
	}
	k := rollSink{r: r}
	err := q.eachSeries(r.ctx, jobs[0].start, jobs[0].end-1, func(ser storage.Series) error {
		j, ok := byMachine[ser.Labels().Get(metric.MachineLabel)]
		if !ok {
			return nil
		}
		if err := k.add(ser, j); err != nil {
			return err
		}
		return r.flushIfFull() // add committed a full batch
	}, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")) // every series: remote-written ones may have no machine label (machine "")
	if err != nil {
		k.rollback()
		return err
	}
	return k.commit()
}

// group picks the jobs the minutes kept can roll up: one hour long, of
// the hour most of them share, when the minutes still hold it whole
// (minuteRoller.eligible). rest is the others.
func (m *minuteRoller) group(jobs []job) (group, rest []job) {
	n := map[int64]int{}
	best, most := int64(0), 0
	for _, j := range jobs {
		if j.end-j.start != hourMs || !m.eligible(j.start) {
			continue
		}
		if n[j.start]++; n[j.start] > most {
			best, most = j.start, n[j.start]
		}
	}
	if most == 0 {
		return nil, jobs
	}
	for _, j := range jobs {
		if j.start == best && j.end == best+hourMs {
			group = append(group, j)
		} else {
			rest = append(rest, j)
		}
	}
	return group, rest
}

// fromMinutes rolls the group's hour (its jobs share it) up from the
// minutes kept as its samples arrived, instead of reading them back. It
// returns the jobs of the machines that must be read back all the same:
// those with a series that took a sample out of order in the hour. An
// error matching errMinutesLost means the minutes cannot stand in for the
// raw read at all.
func (r *rollRun) fromMinutes(group []job) (raw []job, err error) {
	s, began := r.s, time.Now()
	h := s.minutes.take(group[0].end)
	defer h.drop()
	if err := s.fail(r.tier, "minutes"); err != nil {
		return nil, err
	}
	byMachine := make(map[string]job, len(group))
	for _, j := range group {
		byMachine[j.machine] = j
	}
	if h == nil {
		// Not one sample of the hour arrived: the raw tier holds none.
		s.m.hours.WithLabelValues("minutes").Add(float64(len(group)))
		r.minuteHours = len(group)
		return nil, nil
	}
	if h.bad != nil {
		return nil, fmt.Errorf("%w: %v", errMinutesLost, h.bad)
	}
	ir, err := s.minutes.raw.Head().Index()
	if err != nil {
		return nil, fmt.Errorf("rollup %s: raw head index: %w", r.tier, err)
	}
	defer ir.Close()
	var sb labels.ScratchBuilder
	labelsOf := func(id uint64) (labels.Labels, error) {
		if err := ir.Series(storage.SeriesRef(id), &sb, nil); err != nil {
			return labels.EmptyLabels(), fmt.Errorf("%w: series %d: %v", errMinutesLost, id, err)
		}
		return sb.Labels(), nil
	}
	for id := range h.tainted {
		ls, err := labelsOf(id)
		if err != nil {
			return nil, err
		}
		if j, ok := byMachine[ls.Get(metric.MachineLabel)]; ok {
			delete(byMachine, j.machine)
			raw = append(raw, j)
		}
	}
	sort.Slice(raw, func(i, j int) bool { return raw[i].machine < raw[j].machine })
	hb, err := s.newHourBlock(h.hour)
	if err != nil {
		return nil, err
	}
	defer hb.close()
	// The hour's series, by the raw head's count: the series list grows
	// once instead of doubling through 1 M entries (48 MB).
	hb.series = make([]hourSeries, 0, s.minutes.raw.Head().NumSeries())
	app := s.rollupTier(r.tier).Scaled(hb)
	var ml minuteLabels
	err = h.each(func(id uint64, mins []minuteAggr) error {
		ls, err := labelsOf(id)
		if err != nil {
			return err
		}
		if _, ok := byMachine[ls.Get(metric.MachineLabel)]; !ok || strings.HasPrefix(ls.Get(labels.MetricName), internalPrefix) {
			return nil
		}
		r.yield.maybe()
		if err := r.pace.tick(r.ctx); err != nil {
			return err
		}
		if err := hb.begin(id); err != nil {
			return err
		}
		appended, _, err := rollupMinutes(app, &ml, ls, mins)
		if err != nil {
			return fmt.Errorf("rollup %s for series %s: %w", r.tier, ls, err)
		}
		r.appended += appended
		return hb.end()
	})
	if err == nil {
		err = s.fail(r.tier, "full")
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("rollup: an hour's minutes rolled up; writing its block", "hour", time.UnixMilli(h.hour).UTC(), "raw_series", len(hb.series), "samples", r.appended, "seconds", time.Since(began).Seconds())
	block, err := hb.write(r.ctx, s.stagingPath(), s.tsdbLog, ir, func() error { return r.pace.tick(r.ctx) })
	if block != "" {
		r.blocks = append(r.blocks, block)
	}
	if err != nil {
		return nil, fmt.Errorf("rollup %s: write block: %w", r.tier, s.space.noteWriteError(err))
	}
	if err := s.fail(r.tier, "flushed"); err != nil {
		return nil, err
	}
	s.m.hours.WithLabelValues("minutes").Add(float64(len(byMachine)))
	r.minuteHours = len(byMachine)
	return raw, nil
}

// aggr is one bucket's aggregate.
type aggr struct {
	min, max, sum, count float64
}

func (a *aggr) values() [4]float64 { return [4]float64{a.min, a.max, a.sum, a.count} }

// bucketWriter appends one output series set (one per rollup kind) bucket by
// bucket, caching series refs.
type bucketWriter struct {
	app      storage.Appender
	lsets    [4]labels.Labels
	refs     [4]storage.SeriesRef
	n        int // samples appended
	rejected int
}

func (w *bucketWriter) write(t int64, vals [4]float64) error {
	for k := range vals {
		ref, err := w.app.Append(w.refs[k], w.lsets[k], t, vals[k])
		switch {
		case err == nil:
			w.refs[k] = ref
			w.n++
		case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrTooOldSample),
			errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
			// A recomputed bucket whose raw data changed, or data older
			// than the tier accepts: keep what is stored.
			w.rejected++
		default:
			return err
		}
	}
	return nil
}

// rollupRawSeries turns one raw series into per-minute min/max/sum/count
// series, labelled __rollup__.
func rollupRawSeries(app storage.Appender, b *labels.Builder, ser storage.Series, it chunkenc.Iterator, start, end int64) (int, int, chunkenc.Iterator, error) {
	w := bucketWriter{app: app}
	b.Reset(ser.Labels())
	for k, kind := range rollupKinds {
		b.Set(rollupLabel, kind)
		w.lsets[k] = b.Labels()
	}
	it = ser.Iterator(it)
	curT := int64(math.MinInt64)
	var cur aggr
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue // sysmonstm stores no histograms
		}
		t, v := it.At()
		if t < start || t >= end || math.IsNaN(v) {
			continue
		}
		if bt := floorTo(t, minuteMs); bt != curT {
			if cur.count > 0 {
				if err := w.write(curT, cur.values()); err != nil {
					return w.n, w.rejected, it, err
				}
			}
			curT, cur = bt, aggr{min: v, max: v}
		}
		cur.min = min(cur.min, v)
		cur.max = max(cur.max, v)
		cur.sum += v
		cur.count++
	}
	if err := it.Err(); err != nil {
		return w.n, w.rejected, it, err
	}
	if cur.count > 0 {
		if err := w.write(curT, cur.values()); err != nil {
			return w.n, w.rejected, it, err
		}
	}
	return w.n, w.rejected, it, nil
}

// rollupMinuteSeries turns one 1m-tier series (one rollup kind) into its
// hourly counterpart: min of mins, max of maxes, sum of sums, sum of counts.
func rollupMinuteSeries(app storage.Appender, _ *labels.Builder, ser storage.Series, it chunkenc.Iterator, start, end int64) (int, int, chunkenc.Iterator, error) {
	lset := ser.Labels()
	kind := lset.Get(rollupLabel)
	var combine func(acc, v float64) float64
	switch kind {
	case "min":
		combine = math.Min
	case "max":
		combine = math.Max
	case "sum", "count":
		combine = func(acc, v float64) float64 { return acc + v }
	default:
		return 0, 0, it, nil // not a rollup series
	}
	var (
		ref      storage.SeriesRef
		n, rej   int
		curT     = int64(math.MinInt64)
		cur      float64
		have     bool
		appendFn = func(t int64, v float64) error {
			r, err := app.Append(ref, lset, t, v)
			switch {
			case err == nil:
				ref = r
				n++
			case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrTooOldSample),
				errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
				rej++
			default:
				return err
			}
			return nil
		}
	)
	it = ser.Iterator(it)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue
		}
		t, v := it.At()
		if t < start || t >= end || math.IsNaN(v) {
			continue
		}
		if bt := floorTo(t, hourMs); bt != curT {
			if have {
				if err := appendFn(curT, cur); err != nil {
					return n, rej, it, err
				}
			}
			curT, cur, have = bt, v, true
			continue
		}
		cur = combine(cur, v)
	}
	if err := it.Err(); err != nil {
		return n, rej, it, err
	}
	if have {
		if err := appendFn(curT, cur); err != nil {
			return n, rej, it, err
		}
	}
	return n, rej, it, nil
}

// floorTo rounds t (ms) down to a multiple of d.
func floorTo(t, d int64) int64 {
	r := t % d
	if r < 0 {
		r += d
	}
	return t - r
}
