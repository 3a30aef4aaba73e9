package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/tsdb"
)

// The raw tier's compactions are run by the store, not by the TSDB's own
// loop (which stays off), for two races in the TSDB (Prometheus v0.313 to
// v0.316 at least).
//
// Out-of-order compaction. TSDB.compactOOOHead first visits every series
// (NewOOOCompactionHead, in label order): it writes each one's open
// out-of-order chunk to the chunk files and notes the highest chunk
// reference written, then writes the blocks from the series that had
// out-of-order chunks when visited, then garbage-collects every series'
// out-of-order chunks up to that reference. A commit during the visit that
// writes an out-of-order chunk of a series already visited (or not yet
// holding any then) gets a lower reference than a series visited after it:
// that chunk is in no block and is collected all the same. Those samples
// were acknowledged and are gone (TestMinutesRollUpAsTheRawReadDoes lost
// the first half hour of one series' replayed hour, about one run in
// fifteen under the race detector; TestOutOfOrderCompactionLosesNoCommit).
// So every commit holds commits shared, and the out-of-order compaction
// holds it exclusively until its visit is over (its first block write, or
// its end when there was nothing out of order): commits wait for the visit
// (1.4 s at 1 M series, BenchmarkOutOfOrderCompaction). Chunks written
// after the visit have higher references than any it noted: they stay in
// the head for the next compaction. The TSDB runs it after every head
// compaction; the gate skips it when no sample was appended out of order
// since the last one's visit (the TSDB's own count, rawMetrics), so an
// hour without late samples holds no commit.
//
// The head chunk mapper (tsdb/chunks.ChunkDiskMapper) has a race between
// its first chunk file and a head truncation. Truncate lists the mapper's
// files, and when it finds that it deletes them all (none is the file it
// writes to, which it has not opened yet) it resets the file sequence to
// 0, after the list and outside the lock the writers take. A chunk written
// in between cuts a file; the chunks after the reset then get references
// into a file 0 that never exists, though their bytes go to the new file.
// Reading them fails ("head chunk file index 0 does not exist on disk"),
// for in-order chunks with a panic, and a head compaction that reads them
// fails for good. A truncation follows every head compaction. A mapper
// has no file of its own until its first chunk after the TSDB opens: a
// fresh raw tier that takes more than 1.5 blocks' worth of samples at once
// (agents replaying hours of buffer into a new hub; TestRollupRecompute in
// CI), or a reopened one whose files all end before the next truncation,
// could compact its head while that first chunk is written. Once the
// mapper has a file of its own it always has one (the current file is
// never deleted), so the race is over then: compactions wait for a chunk
// file newer than those there at open (checked every chunkGateEvery).
//
// The gate also holds the store's own reason to turn compactions off (a
// full disk, watchSpace), so that neither turns them on while the other
// wants them off. Compact called directly (tests, tools) is not gated.
type compactGate struct {
	db    *tsdb.DB
	dir   string // the head's chunk files
	block int64  // the head's block range (ms)
	log   *slog.Logger
	// duty paces the head's block write (Options.RollupDuty); sleep is its
	// rest (nil: sleepCtx; tests inject).
	duty  float64
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time // the pace's clock (nil: time.Now; tests inject)

	// commits is held shared by each commit to the tier and exclusively
	// by the out-of-order compaction's visit; oooHeld while it is.
	commits sync.RWMutex
	oooHeld atomic.Bool
	// metrics reads the TSDB's count of samples appended out of order;
	// the out-of-order compaction is skipped while it stays at oooDone,
	// the count at the last one's visit (oooKnown once there was one).
	// Failed compactions are counted there too.
	metrics  *rawMetrics
	oooDone  float64
	oooKnown bool
	oooRuns  int // out-of-order compactions run (tests)
	// running is held by a compaction; set(true) takes it to wait for one.
	running sync.Mutex
	// aside is the WAL checkpoint the store put in place in the running
	// head compaction (nil none; walcheckpoint.go). Held by running.
	aside          *walSetAside
	walCheckpoints int // written (tests)

	mu      sync.Mutex
	off     bool   // DisableCompactions: the store's own reason
	waiting bool   // no chunk file of the mapper's own yet
	openSeq uint64 // the newest chunk file when the tier opened
	blocks  bool   // blocks may want compacting (at open, after a head's)
	runCtx  context.Context
	stopRun context.CancelFunc // ends the running compaction (set(true))

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// chunkGateEvery is how often the gate looks for work: a head to compact,
// or (while waiting) the mapper's first chunk file. Compactions need 1.5
// blocks of data in the head, so a second's delay costs nothing.
const chunkGateEvery = time.Second

// compactMargin: the blocks are compacted (TSDB.Compact) only while the
// head is this far from compactable, so that TSDB.Compact, which compacts
// a compactable head itself (and its out-of-order head without the
// commits held), always finds the head done.
const compactMargin = 5 * time.Minute

// newCompactGate turns db's own compactions off, to be run from the gate
// once started. block is the head's block range.
func newCompactGate(db *tsdb.DB, block time.Duration, duty float64, log *slog.Logger) *compactGate {
	ctx, cancel := context.WithCancel(context.Background())
	g := &compactGate{
		db: db, dir: filepath.Join(db.Dir(), "chunks_head"), block: block.Milliseconds(), duty: duty, log: log,
		waiting: true, blocks: true,
		kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
	}
	g.openSeq = g.newestChunkFile()
	g.ctx = ctx
	db.DisableCompactions()
	return g
}

// start runs the automatic compactions.
func (g *compactGate) start() { go g.loop(g.ctx) }

// newestChunkFile returns the highest sequence number among the head's
// chunk files (000001, 000002, …), 0 with none.
func (g *compactGate) newestChunkFile() uint64 {
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, e := range entries {
		if seq, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && e.Type().IsRegular() {
			n = max(n, seq)
		}
	}
	return n
}

// headCompactable reports whether the head spans more than 1.5 blocks less
// margin (ms), as the TSDB compacts it at 1.5.
func (g *compactGate) headCompactable(margin int64) bool {
	h := g.db.Head()
	mint := h.MinTime()
	return mint != math.MaxInt64 && h.MaxTime()-mint > g.block/2*3-margin
}

// committed is told of each commit: one that made the head compactable
// wakes the gate.
func (g *compactGate) committed() {
	if g.headCompactable(0) {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

func (g *compactGate) loop(ctx context.Context) {
	defer close(g.done)
	if err := g.dropCheckpointed(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("delete checkpointed raw tier WAL segments", "err", err)
	}
	t := time.NewTicker(chunkGateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
		if !g.allowed() || !g.headCompactable(0) && !g.takeBlocks() {
			continue
		}
		if err := g.compact(ctx, compactMargin.Milliseconds()); err != nil && ctx.Err() == nil {
			if errors.Is(err, context.Canceled) {
				g.log.Info("raw tier compaction stopped: compactions turned off", "err", err)
			} else {
				g.log.Error("raw tier compaction failed", "err", err)
			}
		}
	}
}

// allowed reports whether automatic compactions may run.
func (g *compactGate) allowed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting && g.newestChunkFile() > g.openSeq {
		g.waiting = false
	}
	return !g.off && !g.waiting
}

// takeBlocks reports (and clears) whether blocks may want compacting.
func (g *compactGate) takeBlocks() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.blocks
	g.blocks = false
	return b
}

// compact writes out what the head holds past 1.5 blocks, as TSDB.Compact
// does, then its out-of-order samples with the commits held, then
// compacts the blocks unless the head is within margin (ms) of
// compactable again. A failure, other than being stopped, is counted.
func (g *compactGate) compact(ctx context.Context, margin int64) error {
	err := g.compactRound(ctx, margin)
	if err != nil && !errors.Is(err, context.Canceled) {
		g.metrics.compactionFailed()
	}
	return err
}

func (g *compactGate) compactRound(ctx context.Context, margin int64) error {
	g.running.Lock()
	defer g.running.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.mu.Lock()
	g.runCtx, g.stopRun = ctx, cancel
	g.mu.Unlock()
	defer g.mmapWhile()()
	h := g.db.Head()
	wrote := false
	for g.headCompactable(0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		mint := h.MinTime()
		maxt := mint/g.block*g.block + g.block // as the TSDB's rangeForTimestamp
		// As TSDB.Compact: appends that began before the head grew past
		// the block may still write into it.
		h.WaitForAppendersOverlapping(maxt - 1)
		g.aside = nil
		if err := g.db.CompactHead(tsdb.NewRangeHeadWithIsolationDisabled(h, mint, maxt-1)); err != nil {
			if g.aside != nil {
				// The TSDB deletes a block it then fails to load: the
				// last checkpoint and every segment stand for it again.
				err = errors.Join(err, g.aside.undo())
			}
			return err
		}
		wrote = true
		if g.aside != nil {
			// The block is loaded: the segments it covered go, paced.
			g.aside = nil
			if err := g.dropCheckpointed(ctx); err != nil {
				return fmt.Errorf("delete checkpointed WAL segments: %w", err)
			}
		}
	}
	if n, ok := g.metrics.oooTotal(); wrote && (!ok || !g.oooKnown || n != g.oooDone) {
		g.commits.Lock()
		g.oooHeld.Store(true)
		// Every commit counted is done and its samples are in the head.
		n, ok = g.metrics.oooTotal()
		err := g.db.CompactOOOHead(ctx)
		g.visited()
		if err != nil {
			return err
		}
		g.oooDone, g.oooKnown = n, ok
		g.oooRuns++
	}
	if g.headCompactable(margin) {
		// Blocks at the next round, after the head.
		g.mu.Lock()
		g.blocks = true
		g.mu.Unlock()
		return nil
	}
	return g.db.Compact(ctx)
}

// mmapWhile writes the head's finished chunks out to its chunk files every
// rawReloadInterval until the returned func is called. The TSDB's own loop
// does so, but waits for the compaction's lock first, and a paced head
// write holds it for minutes: meanwhile the finished chunks of every
// series would stay in memory and be written in one pass after it.
func (g *compactGate) mmapWhile() (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(rawReloadInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				g.db.ForceHeadMMap()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// writeHead writes the head range rh's block (write) with rests between
// series at the gate's duty (pacedcompact.go), then the WAL checkpoint the
// TSDB would write after it, at the same duty (walcheckpoint.go); both
// are ended by set(true) or the tier's closing. Unpaced (duty 1), the
// block is written as the TSDB does and the checkpoint left to it.
func (g *compactGate) writeHead(dest string, rh *tsdb.RangeHead, write func(tsdb.BlockReader) ([]ulid.ULID, error)) ([]ulid.ULID, error) {
	g.mu.Lock()
	ctx := g.runCtx
	g.mu.Unlock()
	if g.duty >= 1 || ctx == nil {
		return write(rh)
	}
	ids, err := write(pacedHead{RangeHead: rh, ctx: ctx, duty: g.duty, sleep: g.sleep, now: g.now})
	if err != nil {
		return ids, err
	}
	// The checkpoint drops the block's samples from the WAL: only once the
	// block opens, as the TSDB's reload will open it.
	for _, id := range ids {
		b, err := tsdb.OpenBlock(g.log, filepath.Join(dest, id.String()), nil, nil)
		if err == nil {
			err = b.Close()
		}
		if err != nil {
			g.log.Warn("raw tier WAL checkpoint left to the TSDB: the head's block does not open", "block", id, "err", err)
			return ids, nil
		}
	}
	start := time.Now()
	rs := newRestStep(ctx, g.duty, g.sleep, g.now)
	aside, err := g.checkpointWAL(ctx, rh.BlockMaxTime(), rs.step)
	if aside != nil {
		// Undone, should the compaction end here after all.
		g.aside = aside
	}
	switch {
	case ctx.Err() != nil:
		// Closing, or compactions turned off: not the TSDB's whole
		// checkpoint now. The block is on disk: the TSDB loads it at its
		// next reload or open (a replay drops the WAL's samples before
		// its end), and the next head compaction writes the hour again
		// (the two blocks are merged). A checkpoint put in place just
		// before the end is undone (compactRound): the WAL is as it was.
		return ids, ctx.Err()
	case err != nil:
		g.log.Warn("raw tier WAL checkpoint left to the TSDB", "err", err)
	case aside != nil:
		g.log.Info("raw tier WAL checkpoint done", "duration", time.Since(start).Round(time.Millisecond))
		g.walCheckpoints++
	}
	return ids, nil
}

// visited lets the commits go once the out-of-order compaction's visit is
// over: the raw tier's compactor calls it at the compaction's first block.
func (g *compactGate) visited() {
	if g.oooHeld.CompareAndSwap(true, false) {
		g.commits.Unlock()
	}
}

// set turns the automatic compactions off (waiting for a running one) or
// back on.
func (g *compactGate) set(off bool) {
	g.mu.Lock()
	g.off = off
	g.blocks = g.blocks || !off
	if off && g.stopRun != nil {
		g.stopRun() // a paced head write would take minutes to end
	}
	g.mu.Unlock()
	if off {
		// Wait for a running compaction.
		g.running.Lock()
		defer g.running.Unlock()
	}
}

// close stops the automatic compactions, and a compaction run directly
// (Tier.Compact), waiting for them: the tier's head may be closed then.
func (g *compactGate) close() {
	g.cancel()
	<-g.done
	g.set(true)
}

// isWaiting reports whether the gate still waits for the mapper's first
// chunk file.
func (g *compactGate) isWaiting() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// rawMetrics is the registerer the raw tier's TSDB is opened with: it
// passes every collector on (to a nil registerer: none), and keeps the
// head's count of samples appended out of order, which oooTotal reads,
// and the count of failed compactions, which the gate's failures add to
// (the TSDB counts only those of its own loop, which the gate runs
// instead).
type rawMetrics struct {
	prometheus.Registerer // may be nil
	ooo                   prometheus.Collector
	failed                prometheus.Counter
}

const (
	oooSamplesName        = "prometheus_tsdb_head_out_of_order_samples_appended_total"
	compactionsFailedName = "prometheus_tsdb_compactions_failed_total"
)

func (r *rawMetrics) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc)
	go func() {
		c.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		// A Desc shows its name only in its String.
		switch ds := d.String(); {
		case strings.Contains(ds, `"`+oooSamplesName+`"`):
			r.ooo = c
		case strings.Contains(ds, `"`+compactionsFailedName+`"`):
			if cnt, ok := c.(prometheus.Counter); ok {
				r.failed = cnt
			}
		}
	}
	if r.Registerer == nil {
		return nil
	}
	return r.Registerer.Register(c)
}

// compactionFailed counts a compaction the gate ran that failed.
func (r *rawMetrics) compactionFailed() {
	if r != nil && r.failed != nil {
		r.failed.Inc()
	}
}

func (r *rawMetrics) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *rawMetrics) Unregister(c prometheus.Collector) bool {
	if r.Registerer == nil {
		return true
	}
	return r.Registerer.Unregister(c)
}

// oooTotal returns the samples appended out of order since the TSDB
// opened, and false if the TSDB registered no such count.
func (r *rawMetrics) oooTotal() (float64, bool) {
	if r == nil || r.ooo == nil {
		return 0, false
	}
	ms := make(chan prometheus.Metric)
	go func() {
		r.ooo.Collect(ms)
		close(ms)
	}()
	var n float64
	for m := range ms {
		var pb dto.Metric
		if err := m.Write(&pb); err == nil && pb.Counter != nil {
			n += pb.Counter.GetValue()
		}
	}
	return n, true
}
