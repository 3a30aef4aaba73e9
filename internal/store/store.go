// Package store owns the hub's history: three embedded Prometheus TSDB tiers
// (raw samples, 1-minute and 1-hour rollups keeping min, max, sum and count),
// the downsampler that fills the rollup tiers, and the queries that pick a
// tier from a range and step.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultRetentionRaw     = 24 * time.Hour
	DefaultRetention1m      = 30 * 24 * time.Hour
	DefaultRetention1h      = 365 * 24 * time.Hour
	DefaultOutOfOrderWindow = 2 * time.Hour
	DefaultRollupLag        = 90 * time.Second
	// DefaultRollupDuty paces a rollup pass to a quarter of its time. Run
	// back to back, the pass of an hour of 1 M series allocated enough to
	// keep the collector marking the raw head for four minutes, and the
	// live view fell 34 s behind; paced, at most 1.5 s (docs/benchmarks.md,
	// "The hourly rollup pass, paced").
	DefaultRollupDuty     = 0.25
	defaultRollupInterval = 15 * time.Second
)

// Label names the store adds inside the TSDB.
const (
	rollupLabel    = "__rollup__" // "min", "max", "sum" or "count" in the rollup tiers
	internalPrefix = "sysmonstm_agent_"
)

// Options configures Open. Zero fields take the defaults above.
type Options struct {
	Dir string // data directory; tiers live in Dir/raw (Dir/rawvm), Dir/1m, Dir/1h

	// Engine is the raw tier's engine: EngineTSDB or EngineVM; "" (or
	// EngineAuto) keeps the engine whose raw tier Dir holds, EngineTSDB
	// for a new Dir.
	Engine string

	RetentionRaw, Retention1m, Retention1h time.Duration

	// OutOfOrderWindow is how old a sample may be, relative to the newest
	// sample in the raw tier, and still be accepted (agent replay after an
	// outage).
	OutOfOrderWindow time.Duration
	// RollupLag is how long after a bucket ends it is rolled up, at the
	// earliest.
	RollupLag time.Duration

	Logger     *slog.Logger          // nil = discard
	Registerer prometheus.Registerer // nil = no metrics

	// Now is the clock used by the downsampler and tier choice; nil =
	// time.Now. Tests inject a fake clock.
	Now func() time.Time
	// RollupInterval is how often Run rolls up; 0 = 15s.
	RollupInterval time.Duration
	// RollupDuty is the share of its time a rollup pass works: every
	// 10 ms of work (pacer.tick), and after writing each full batch, it
	// rests for what it worked since its last rest times
	// (1/RollupDuty - 1). A compaction of blocks (every tier's merges)
	// rests the same way.
	// 0 = DefaultRollupDuty; 1 = no rest.
	RollupDuty float64

	// MinFree is the free space, in bytes, the store keeps on Dir's
	// filesystem: Open refuses to start below it, and writes are refused
	// (Writable, Appender) while less is free, until a quarter more is free
	// again. 0 = DefaultMinFree; a smaller value than EngineReserve, or than
	// 4 KiB per series in the raw head, is raised to that.
	MinFree uint64
	// Statfs reports Dir's filesystem space; nil = statfs(2). Tests inject
	// a fake.
	Statfs StatfsFunc

	// EngineMemory bounds the caches of the VM engine (--storage-engine
	// vm) in bytes: its series and index-block caches are fractions of
	// it, as VictoriaMetrics' -memory.allowedBytes. 0 =
	// DefaultEngineMemory. The first store opened in a process sets it
	// for the process (the engine's caches are package globals).
	EngineMemory int64

	// RollupFromRaw rolls every hour up by reading the raw tier back,
	// as with the VM engine, instead of from the minutes kept as samples
	// arrive (minutes.go): for comparisons and tests.
	RollupFromRaw bool

	// tune, when set, adjusts a tier's TSDB options before it opens
	// (TestBytesPerSample's variants).
	tune func(tier string, o *tsdb.Options)
}

// Store is the tiered history. It is safe for concurrent use.
type Store struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	raw    rawTier
	tier1m *Tier
	tier1h *Tier
	m      *storeMetrics
	space  *spaceGuard
	mapped *mappedPages // pages out the tiers' mapped files while they are read in bulk
	// rawGate runs the raw tier's compactions (rawcompact.go); its
	// compactor tells it when an out-of-order compaction's visit is over.
	rawGate atomic.Pointer[compactGate]
	// minutes keeps the raw series' current minutes for the hourly pass
	// (minutes.go); nil with the VM engine or Options.RollupFromRaw.
	minutes *minuteRoller

	// rollupMu serialises rollup passes and Close, and protects the
	// fields below.
	rollupMu sync.Mutex
	closed   bool
	pending  []pendingBlocks // recorded block commits not finished yet
	// batchSeries bounds a rollup batch (DefaultRollupBatchSeries).
	batchSeries int
	// rawHeadSeries is the raw head's series count in the saved state
	// (rawHeadStripes); saveState records the head's current count.
	rawHeadSeries uint64
	failAt        failAt // test hook; nil in production
	// sleep is a rollup pass's rest (pacer); nil = sleepCtx. Tests inject.
	sleep   func(ctx context.Context, d time.Duration) error
	tsdbLog *slog.Logger

	// mu protects machines.
	mu       sync.Mutex
	machines map[string]*watermark
}

// Open opens or creates every tier under opts.Dir, replaying their WALs, and
// loads the rollup watermarks.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("open store: no data directory given")
	}
	setDefaults(&opts)
	s := &Store{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		m:        newStoreMetrics(opts.Registerer),
		machines: map[string]*watermark{},

		batchSeries: DefaultRollupBatchSeries,
	}
	s.tsdbLog = slog.New(quietHandler{s.log.Handler()})
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	s.mapped = newMappedPages(s.log)
	s.space = &spaceGuard{
		dir: opts.Dir, statfs: opts.Statfs, minFree: opts.MinFree, log: s.log, now: opts.Now,
		m: newSpaceMetrics(opts.Registerer), changed: make(chan struct{}, 1),
	}
	// Replaying a WAL writes head chunks, and the TSDB panics when that
	// write finds no room: refuse to open below the reserve.
	if sp, err := opts.Statfs(opts.Dir); err == nil && sp.Avail < s.space.reserve() {
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, &DiskFullError{Dir: opts.Dir, Avail: sp.Avail, Reserve: s.space.reserve()})
	}
	// Staged rollup blocks move into their tiers before the tiers open.
	if err := s.loadState(); err != nil {
		return nil, err
	}
	for _, t := range []string{Tier1m, Tier1h} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, t), 0o750); err != nil {
			return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
		}
	}
	recovered := len(s.pending) > 0
	if err := s.recoverStaging(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	s.pending = nil
	var err error
	switch opts.Engine {
	case EngineTSDB:
		o := rawTierOptions(opts)
		o.StripeSize = rawHeadStripes(s.rawHeadSeries)
		if o.StripeSize > tsdb.DefaultStripeSize {
			s.log.Info("raw tier head sized from the series it held before", "series", s.rawHeadSeries, "stripes", o.StripeSize)
		}
		s.raw, err = s.openTier(TierRaw, false, o)
	case EngineVM:
		var r *vmRaw
		if r, err = openVMRaw(filepath.Join(opts.Dir, rawVMDir), opts.RetentionRaw, opts.OutOfOrderWindow, opts.EngineMemory, opts.Now, s.log); err == nil {
			s.raw = r
			if opts.Registerer != nil {
				err = opts.Registerer.Register(newVMCollector(r))
			}
		}
	default:
		err = fmt.Errorf("open store %s: unknown raw tier engine %q (want %q, %q or %q)", opts.Dir, opts.Engine, EngineAuto, EngineTSDB, EngineVM)
	}
	if err == nil {
		s.warnOtherEngine()
	}
	if err != nil {
		return nil, err
	}
	// The rollup tiers take no appends: their data arrives as blocks, a
	// few per batch that overlap in time (one per group of machines) and
	// that the TSDB's compaction merges (batch.go). Their out-of-order
	// windows matter only to replay what a hub that still appended to
	// them left in their WALs.
	ooo1m := opts.OutOfOrderWindow + opts.RollupLag + 10*time.Minute
	if s.tier1m, err = s.openTier(Tier1m, true, tierOptions(keep1m(opts), ooo1m, 0, 0)); err != nil {
		s.closeTiers()
		return nil, err
	}
	ooo1h := max(ooo1m+2*time.Hour, 4*time.Hour)
	if s.tier1h, err = s.openTier(Tier1h, true, tierOptions(opts.Retention1h, ooo1h, 24*time.Hour, 0)); err != nil {
		s.closeTiers()
		return nil, err
	}
	since, err := s.loadScaledSince()
	if err != nil {
		s.closeTiers()
		return nil, err
	}
	s.tier1m.since, s.tier1h.since = since, since
	if raw, ok := s.raw.(*Tier); ok {
		raw.since = since
	}
	for _, db := range []*tsdb.DB{s.tier1m.DB, s.tier1h.DB} {
		if err := flushHead(db); err != nil {
			s.closeTiers()
			return nil, err
		}
	}
	if recovered {
		if err := s.saveState(); err != nil {
			s.closeTiers()
			return nil, err
		}
	}
	if err := s.initMaxTs(context.Background()); err != nil {
		s.closeTiers()
		return nil, err
	}
	if raw, ok := s.raw.(*Tier); ok && !opts.RollupFromRaw {
		if s.minutes, err = newMinuteRoller(filepath.Join(opts.Dir, minutesDir), raw, newestSample(raw.DB), s.log); err != nil {
			s.closeTiers()
			return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
		}
	}
	s.space.series = s.raw.NumSeries
	s.space.check()
	return s, nil
}

// newestSample returns the newest timestamp db holds (ms), or
// math.MinInt64 when it holds none.
func newestSample(db *tsdb.DB) int64 {
	newest := db.Head().MaxTime()
	if db.Head().NumSeries() == 0 {
		newest = math.MinInt64
	}
	for _, b := range db.Blocks() {
		newest = max(newest, b.Meta().MaxTime)
	}
	return newest
}

func setDefaults(o *Options) {
	if o.RetentionRaw <= 0 {
		o.RetentionRaw = DefaultRetentionRaw
	}
	if o.Retention1m <= 0 {
		o.Retention1m = DefaultRetention1m
	}
	if o.Retention1h <= 0 {
		o.Retention1h = DefaultRetention1h
	}
	if o.OutOfOrderWindow <= 0 {
		o.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if o.RollupLag <= 0 {
		o.RollupLag = DefaultRollupLag
	}
	if o.RollupDuty <= 0 || o.RollupDuty > 1 {
		o.RollupDuty = DefaultRollupDuty
	}
	if o.RollupInterval <= 0 {
		o.RollupInterval = defaultRollupInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	if o.Engine == "" || o.Engine == EngineAuto {
		o.Engine = EngineTSDB
		if _, err := os.Stat(filepath.Join(o.Dir, rawVMDir)); err == nil {
			o.Engine = EngineVM
		}
	}
}

// flushHead writes out what a rollup tier's head holds, which only a hub
// from before rollup blocks left there (from its WAL): nothing would
// ever compact it, as no sample arrives after it.
func flushHead(db *tsdb.DB) error {
	h := db.Head()
	if h.NumSeries() == 0 {
		return nil
	}
	if err := db.CompactOOOHead(context.Background()); err != nil {
		return fmt.Errorf("write out %s head: %w", db.Dir(), err)
	}
	if h.NumSeries() > 0 && h.MinTime() <= h.MaxTime() {
		if err := db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
			return fmt.Errorf("write out %s head: %w", db.Dir(), err)
		}
	}
	return nil
}

// keep1m is how long the 1m tier keeps its blocks: Retention1m, but at
// least until the 1h tier has rolled them up, which it does per closed day
// once every machine's minutes are final (up to the out-of-order window
// late). Queries still pick tiers by Retention1m.
func keep1m(o Options) time.Duration {
	return max(o.Retention1m, 2*24*time.Hour+o.OutOfOrderWindow)
}

// rawSamplesPerChunk is the raw tier's target samples per chunk. At 1 s the
// TSDB default (120) cuts a chunk every 2 minutes, and the head keeps a
// reference to each of its 60–90 chunks per series (2–3 h of data); chunks
// of 8 minutes hold that to a quarter: 3.0 instead of 5.1 KB of heap per
// series at steady state (TestHeadBytesPerSeries, docs/benchmarks.md).
const rawSamplesPerChunk = 480

// rawBlockDuration is the raw tier's block range. The head holds between a
// half and one and a half of it (1 h on average, not the TSDB default's
// 2 h), so it keeps half the chunk references per series: 2.6 → 2.1 KB of
// heap per series at steady state (TestHeadBytesPerSeries). Blocks are
// merged up to an eighth of the retention (3 h at the default 24 h: a day's
// query reads 8 blocks, not 24).
const rawBlockDuration = time.Hour

// tierOptions returns TSDB options for one tier. minBlock 0 keeps the TSDB
// default (2h); the largest block is a tenth of the retention, capped at 31
// days, as Prometheus itself does. samplesPerChunk 0 keeps the TSDB
// default (120).
//
// Isolation is off: it would keep a ring of pending append ids per head
// series (measured: ~300 B per rollup series, 2.5 KB per raw series with
// its eight rollups) only so that a query never sees part of a commit; a
// history or PromQL query that reads a group commit halfway shows the
// newest second of some series and not yet of others, as it would a
// moment earlier.
// rawTierOptions are the raw tier's TSDB options.
func rawTierOptions(opts Options) *tsdb.Options {
	o := tierOptions(opts.RetentionRaw, opts.OutOfOrderWindow, rawBlockDuration, rawSamplesPerChunk)
	o.MaxBlockDuration = max(rawBlockDuration, min(opts.RetentionRaw/8, 31*24*time.Hour)).Milliseconds()
	o.BlockReloadInterval = rawReloadInterval
	return o
}

// rawReloadInterval is how often the raw tier's TSDB writes the head
// chunks its series have finished (cut) out to its chunks_head files, and
// looks for blocks to load or compact. The TSDB's default is a minute; at
// 1 M series a minute's finished chunks were up to 570 MB written in one
// pass, which with a garbage collection at the same time stalled commits
// (and the live view, behind the full commit queues) for over a second on
// 2 cores. Series finish chunks spread over tens of seconds (a chunk ends
// at a size or at a time that depends on its data and start), so passes
// every few seconds write them as they come, in pieces a tenth the size
// (docs/benchmarks.md, "Commit stalls kept off the live view"). A pass
// that finds nothing to do costs a check per stripe and a directory read.
const rawReloadInterval = 5 * time.Second

// tierWALCompression compresses the tiers' WALs (and the raw tier's
// checkpoints the store writes, walcheckpoint.go).
const tierWALCompression = compression.Snappy

func tierOptions(retention, ooo, minBlock time.Duration, samplesPerChunk int) *tsdb.Options {
	o := tsdb.DefaultOptions()
	o.RetentionDuration = retention.Milliseconds()
	o.OutOfOrderTimeWindow = ooo.Milliseconds()
	o.WALCompression = tierWALCompression
	o.IsolationDisabled = true
	o.EnableOverlappingCompaction = true
	if samplesPerChunk > 0 {
		o.SamplesPerChunk = samplesPerChunk
	}
	if minBlock > 0 {
		o.MinBlockDuration = minBlock.Milliseconds()
	}
	o.MaxBlockDuration = min(retention/10, 31*24*time.Hour).Milliseconds()
	if o.MaxBlockDuration < o.MinBlockDuration {
		o.MaxBlockDuration = o.MinBlockDuration
	}
	return o
}

// The raw head finds a series by its reference in one of StripeSize
// stripes, each a Go map and a lock. A map of up to 8 series is one group
// of slots; past that it is a table, and the lookup of every appended
// sample costs another cache miss or two. With the TSDB's default 16,384
// stripes, 1 M series are 61 to a stripe: append + commit per sample
// 347-372 ns against 213-275 ns with 131,072 stripes
// (BenchmarkHeadStripes, docs/benchmarks.md). Each stripe costs ~280 B
// whether it holds series or not, and the count is fixed when the head
// opens, so it is sized from the series the head held when the store last
// saved its state: rawSeriesPerStripe to a stripe, never below the
// default (a new store, or one that held few series) nor above
// maxRawHeadStripes (290 MiB, for 8 M series).
const (
	rawSeriesPerStripe = 8
	maxRawHeadStripes  = 1 << 20
)

// rawHeadStripes returns the raw head's stripe count for a head that held
// series series before.
func rawHeadStripes(series uint64) int {
	n := tsdb.DefaultStripeSize
	for uint64(n)*rawSeriesPerStripe < series && n < maxRawHeadStripes {
		n *= 2
	}
	return n
}

// rollupStripeSize is the rollup tiers' head stripe count: one writer (the
// rollup pass) and the readers need few locks, and each of the TSDB's
// default 16,384 stripes costs ~280 B of maps and padded locks whether it
// holds series or not (9.3 MB for the two tiers).
const rollupStripeSize = 1024

func (s *Store) openTier(name string, rollup bool, o *tsdb.Options) (*Tier, error) {
	dir := filepath.Join(s.opts.Dir, name)
	if rollup {
		o.StripeSize = rollupStripeSize
	}
	o.NewCompactorFunc = s.newCompactor
	if s.opts.tune != nil {
		s.opts.tune(name, o)
	}
	var reg prometheus.Registerer
	if s.opts.Registerer != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"tier": name}, s.opts.Registerer)
	}
	// The raw tier's registerer keeps its out-of-order count and its
	// failed compactions' (rawcompact.go).
	var rm *rawMetrics
	treg := reg
	if !rollup {
		rm = &rawMetrics{Registerer: reg}
		treg = rm
	}
	if !rollup {
		if err := numberNewWAL(filepath.Join(dir, "wal")); err != nil {
			return nil, fmt.Errorf("open %s tier %s: number a new WAL: %w", name, dir, err)
		}
	}
	db, err := tsdb.Open(dir, s.tsdbLog.With("tier", name), treg, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s tier %s: %w", name, dir, err)
	}
	// Nothing is read or written before Open sets since.
	t := &Tier{DB: db, rollup: rollup, since: math.MaxInt64}
	if !rollup {
		t.gate = newCompactGate(db, time.Duration(o.MinBlockDuration)*time.Millisecond, s.opts.RollupDuty, s.log)
		t.gate.metrics = rm
		s.rawGate.Store(t.gate)
		t.gate.start()
	}
	return t, nil
}

// newCompactor is the TSDB's own compactor, made as tsdb.Open makes it,
// with the tier's mapped files paged out while it reads them (mapped.go).
func (s *Store) newCompactor(ctx context.Context, r prometheus.Registerer, l *slog.Logger, ranges []int64, pool chunkenc.Pool, o *tsdb.Options) (tsdb.Compactor, error) {
	c, err := tsdb.NewLeveledCompactorWithOptions(ctx, r, l, ranges, pool, tsdb.LeveledCompactorOptions{
		MaxBlockChunkSegmentSize:    o.MaxBlockChunkSegmentSize,
		EnableOverlappingCompaction: o.EnableOverlappingCompaction,
		PD:                          o.PostingsDecoderFactory,
		UseUncachedIO:               o.UseUncachedIO,
		BlockExcludeFilter:          o.BlockCompactionExcludeFunc,
	})
	if err != nil {
		return nil, err
	}
	return pagedCompactor{Compactor: c, lc: c, m: s.mapped, populate: pacedPopulator{duty: s.opts.RollupDuty}, rawGate: &s.rawGate}, nil
}

// pagedCompactor pages out what it maps while it writes a head's block (the
// head's chunk files, the new block) or compacts blocks (the inputs, the
// new block), and compacts blocks paced (pacedcompact.go).
type pagedCompactor struct {
	tsdb.Compactor
	lc       *tsdb.LeveledCompactor
	m        *mappedPages
	populate tsdb.BlockPopulator
	rawGate  *atomic.Pointer[compactGate]
}

func (c pagedCompactor) Write(dest string, b tsdb.BlockReader, mint, maxt int64, base *tsdb.BlockMeta) ([]ulid.ULID, error) {
	g := c.rawGate.Load()
	if g == nil || g.db.Dir() != dest {
		defer c.m.begin(dest, filepath.Join(dest, "chunks_head"))()
		return c.Compactor.Write(dest, b, mint, maxt, base)
	}
	// The raw tier. Its head's chunk files are read a page here and there
	// for as long as a paced write lasts: they are unmapped but stay
	// cached (mapped.go). Nothing unmaps them meanwhile: the TSDB does in
	// the head's truncation, under its compaction lock, which this write
	// holds, and in the head's closing, which the tier does only once the
	// gate's compactions, this one among them, are over (Tier.Close).
	write := func(b tsdb.BlockReader) ([]ulid.ULID, error) {
		defer c.m.begin(dest)()
		defer c.m.beginUnmapping(g.dir)()
		return c.Compactor.Write(dest, b, mint, maxt, base)
	}
	switch h := b.(type) {
	case *tsdb.OOOCompactionHead:
		g.visited()
	case *tsdb.RangeHead:
		return g.writeHead(dest, h, write)
	}
	return write(b)
}

func (c pagedCompactor) Compact(dest string, dirs []string, open []*tsdb.Block) ([]ulid.ULID, error) {
	defer c.m.begin(dest, dirs...)()
	return c.lc.CompactWithBlockPopulator(dest, dirs, open, c.populate)
}

func (s *Store) closeTiers() error {
	var errs []error
	for _, db := range []*Tier{s.tier1h, s.tier1m} {
		if db != nil {
			if err := db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close tier %s: %w", db.Dir(), err))
			}
		}
	}
	if s.raw != nil {
		if err := s.raw.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close tier %s: %w", s.raw.Dir(), err))
		}
	}
	return errors.Join(errs...)
}

// Close waits for a running rollup pass, saves the watermarks and closes
// every tier. Stop Run before calling Close.
func (s *Store) Close() error {
	s.rollupMu.Lock()
	defer s.rollupMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.saveState()
	return errors.Join(err, s.closeTiers())
}

// Appender returns an appender on the raw tier. Labels are __name__, machine
// and the series' own labels. When Commit returns nil the samples are in the
// WAL (written to the OS), so a killed process loses none of them. A Commit
// that finds no space left returns a *DiskFullError and makes Writable
// refuse until space is freed. Callers check Writable before appending:
// the appender itself does not refuse.
func (s *Store) Appender(ctx context.Context) Appender {
	return &rawAppender{app: s.raw.Appender(ctx), g: s.space, minutes: s.minutes}
}

// appender returns an appender on db (a rollup batch, blockwrite.go)
// whose Commit and Rollback report a lack of space to the free-space guard.
// Every rollup sample is written through it.
func (s *Store) appender(ctx context.Context, db storage.Appendable) storage.Appender {
	return spaceAppender{Appender: db.Appender(ctx), g: s.space}
}

// spaceAppender passes write errors to the free-space guard.
type spaceAppender struct {
	storage.Appender
	g *spaceGuard
}

func (a spaceAppender) Commit() error   { return a.g.noteWriteError(a.Appender.Commit()) }
func (a spaceAppender) Rollback() error { return a.g.noteWriteError(a.Appender.Rollback()) }

// Writable returns nil while the store takes samples, or a *DiskFullError
// while its filesystem has less than the reserve free. It is cheap (one
// atomic load): ingest asks it before every commit.
func (s *Store) Writable() error { return s.space.state() }

// Engine returns the raw tier's engine: EngineTSDB or EngineVM.
func (s *Store) Engine() string {
	if _, ok := s.raw.(*vmRaw); ok {
		return EngineVM
	}
	return EngineTSDB
}

// Raw returns the raw tier, for tests and tools: read its samples through
// its own Querier and ChunkQuerier (a *Tier's unscale them).
func (s *Store) Raw() rawTier { return s.raw }

// NoteWritten records that machine's raw data is complete up to maxTs (ms
// since epoch); minutes up to there may be rolled up. Ingest calls it after
// each commit.
func (s *Store) NoteWritten(machine string, maxTs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.machines[machine]
	if w == nil {
		w = &watermark{}
		s.machines[machine] = w
	}
	if maxTs > w.maxTs {
		w.maxTs = maxTs
	}
}

// initMaxTs sets each machine's maxTs from the newest raw sample, so that a
// machine that never returns after a restart is still rolled up. Machines
// found in the raw tier but missing from the state file are added.
func (s *Store) initMaxTs(ctx context.Context) error {
	if err := s.scanNewest(ctx); err != nil {
		return err
	}
	// A known machine with nothing at or after its watermark: its data
	// ends before the watermark.
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.machines {
		if w.maxTs == 0 && w.done1m > 0 {
			w.maxTs = w.done1m - 1
		}
	}
	return nil
}

// scanNewest calls NoteWritten with each machine's newest raw sample, read
// from chunk metadata only.
func (s *Store) scanNewest(ctx context.Context) error {
	s.mu.Lock()
	known := len(s.machines) > 0
	s.mu.Unlock()
	if vm, ok := s.raw.(*vmRaw); ok && known {
		// The VM tier knows the newest sample of each series written in
		// the last hour or so from its WAL and checkpoint: no data is
		// read. A machine silent for longer keeps its watermark from the
		// state file (initMaxTs). Without a state file (lost, or a first
		// start) the raw tier is scanned as below, to find every machine.
		for m, t := range vm.newestByMachine() {
			s.NoteWritten(m, t)
		}
		return nil
	}
	rawStart, err := s.raw.StartTime()
	if err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	if rawStart == math.MaxInt64 {
		return nil // empty raw tier
	}
	// Scan from the oldest watermark (everything when the state is empty):
	// older data is rolled up already.
	from := rawStart
	s.mu.Lock()
	if len(s.machines) > 0 {
		oldest := int64(math.MaxInt64)
		for _, w := range s.machines {
			oldest = min(oldest, w.done1m)
		}
		from = max(from, oldest)
	}
	s.mu.Unlock()
	q, err := s.raw.ChunkQuerier(from, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	defer q.Close()
	newest := map[string]int64{}
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, metric.MachineLabel, ".+"))
	for set.Next() {
		ser := set.At()
		m := ser.Labels().Get(metric.MachineLabel)
		it := ser.Iterator(nil)
		for it.Next() {
			if t := it.At().MaxTime; t > newest[m] {
				newest[m] = t
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read raw tier: %w", err)
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	for m, t := range newest {
		s.NoteWritten(m, t)
	}
	return nil
}
