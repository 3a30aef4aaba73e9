package store

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
	vmprompb "github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	vmstorage "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Engines of the raw tier (Options.Engine).
const (
	// EngineAuto keeps the engine of an existing data directory's raw
	// tier, and picks EngineTSDB for a new one.
	EngineAuto = "auto"
	// EngineTSDB keeps raw samples in a Prometheus TSDB, like the rollup
	// tiers: every sample exact, ~1 B per sample on disk, ~2 KB of heap per
	// active series (docs/benchmarks.md).
	EngineTSDB = "tsdb"
	// EngineVM keeps raw samples in VictoriaMetrics' storage engine
	// (lib/storage) behind a write-ahead log of the store's own: ~0.57 B per
	// sample on disk and ~0.5 KB of heap per active series, values kept to
	// 12 significant digits (engine_vm.md in docs/architecture.md).
	EngineVM = "vm"
)

// warnOtherEngine logs when the data directory also holds a raw tier of
// the engine not in use: its samples are not read (the rollup tiers, shared
// by both engines, are).
func (s *Store) warnOtherEngine() {
	other := TierRaw
	if s.opts.Engine == EngineTSDB {
		other = rawVMDir
	}
	if _, err := os.Stat(filepath.Join(s.opts.Dir, other)); err == nil {
		s.log.Warn("the data directory holds raw samples of the other storage engine; they are not read (the 1m and 1h rollups are)",
			"engine", s.opts.Engine, "unread", filepath.Join(s.opts.Dir, other))
	}
}

// rawVMDir is the raw tier's directory under Options.Dir with EngineVM: not
// "raw", so that switching engines never reads one's files as the other's.
const rawVMDir = "rawvm"

// vmCheckpointInterval is how often the VM raw tier cuts its WAL: every
// sample older than the cut is flushed to the engine's files, the series
// are written to a checkpoint and older segments are deleted.
const vmCheckpointInterval = 5 * time.Minute

// vmWALSegmentSize bounds a WAL segment; a checkpoint deletes whole
// segments.
const vmWALSegmentSize = 32 << 20

// vmSeriesIdle is how long a series may go without a sample before a
// checkpoint forgets it (its samples stay; a later sample registers it
// again under a new ref).
const vmSeriesIdle = time.Hour

var vmInitOnce sync.Once

// DefaultEngineMemory is what the VM engine's caches may hold without a
// memory budget: its series cache (37 % of it) keeps well over a million
// series' names, and its index-block cache (10 %), which an hourly rollup
// pass fills with every part's block headers it reads, stays at 100 MiB.
// VictoriaMetrics' server takes 60 % of the host's memory instead: it is
// alone on its machine, a hub seldom is.
const DefaultEngineMemory = 1 << 30

// EngineMemoryFor returns Options.EngineMemory for a hub whose memory
// budget is maxMemory bytes (0: none): half of the budget, at most
// DefaultEngineMemory.
func EngineMemoryFor(maxMemory int64) int64 {
	if maxMemory <= 0 {
		return DefaultEngineMemory
	}
	return min(maxMemory/2, DefaultEngineMemory)
}

// engineAllowance is the engine's cache allowance for Options.EngineMemory
// (0: DefaultEngineMemory) on a host of host bytes (0: unknown): at most
// 60 % of the host's memory, as the engine's own default (it refuses to
// start when its allowance leaves the host nothing).
func engineAllowance(engineMemory, host int64) int64 {
	a := cmp.Or(engineMemory, DefaultEngineMemory)
	if host > 0 {
		a = min(a, host/10*6)
	}
	return a
}

// vmInit prepares VictoriaMetrics' package globals, once per process: its
// packages read command-line flags of their own (registered on
// flag.CommandLine, which sysmonstm does not use) and expect them parsed,
// and log through their own logger, kept to errors.
func vmInit(engineMemory int64) {
	vmInitOnce.Do(func() {
		_ = flag.Set("loggerLevel", "ERROR")
		// The engine sizes its caches from this (before anything reads
		// it: lib/memory reads it once), not from 60 % of the host's
		// memory as VictoriaMetrics' server does.
		_ = flag.Set("memory.allowedBytes", strconv.FormatInt(engineAllowance(engineMemory, hostMemory()), 10))
		// Blocks are read with pread, not through a mapping of the
		// engine's files (its server's default): the hourly rollup pass
		// reads every block of the hour once, and a mapped read leaves
		// the pages resident in the process (RssFile 335 against 116 MiB
		// at the end of a pass of 257,400 series) for no second read.
		_ = flag.Set("fs.disableMmap", "true")
		if !flag.Parsed() {
			_ = flag.CommandLine.Parse(nil)
		}
		logger.InitNoLogFlags()
		// Identical samples written twice (an agent replaying what a killed
		// hub had stored, the WAL replayed after a crash) are merged.
		vmstorage.SetDedupInterval(time.Millisecond)
		// The engine turns read-only, instead of failing its writes, below
		// this much free space; the store's own guard (space.go) refuses
		// samples long before, at its reserve.
		vmstorage.SetFreeDiskSpaceLimit(EngineReserve)
	})
}

// vmSeries is one series of the VM raw tier, as appenders know it.
type vmSeries struct {
	ref uint64
	// ls is the series' labels, the appender's own (ingest's, shared): the
	// engine's raw metric name is made from them when the series' rows go
	// to the engine (vmNamer), not kept beside them (~70 B per series).
	ls    labels.Labels
	next  *vmSeries // next series with the same ls.Hash()
	lastT int64     // newest committed sample, math.MinInt64 before one
	lastV float64
	// touched is when (ms, by the tier's clock) the series was registered
	// or last took a sample: a checkpoint forgets it vmSeriesIdle later.
	touched int64
	// logged is set once the series' record is in the WAL or the last
	// checkpoint, so that a replay can resolve its samples' ref.
	logged bool
	// stageGen and stageIdx place the series in the stage (vmstage.go),
	// under its lock.
	stageGen uint32
	stageIdx int32
	slot     int32  // in vmRaw.slots
	slotGen  uint32 // the slot's generation when s took it
}

// vmRaw is the raw tier on VictoriaMetrics' storage engine. Appends are
// logged to a WAL (Prometheus' wlog and record formats) before the engine
// takes them, since the engine keeps recent samples in memory for seconds
// before its own files hold them: a Commit that returns nil survives a
// killed process, as with the TSDB.
type vmRaw struct {
	dir       string
	st        *vmstorage.Storage
	wal       *wlog.WL
	log       *slog.Logger
	now       func() time.Time
	retention int64 // ms
	// engineRetention is what the engine keeps, by the wall clock.
	engineRetention time.Duration
	ooo             int64 // ms: how far behind the newest sample one may be

	// commitMu is held shared by each commit from its WAL write to the
	// engine's AddRows, and exclusively by a checkpoint while it cuts the
	// WAL, so that every sample logged before the cut is in the engine.
	commitMu sync.RWMutex

	// boundsMu serialises changes of minT with their write to the bounds
	// file. Lock order: boundsMu, then mu.
	boundsMu sync.Mutex

	mu sync.RWMutex
	// replayRefs holds the series by WAL ref while the WAL is replayed
	// (a ref found twice is given a new one); nil after: new series take
	// nextRef+1, so their refs are unique without a map.
	replayRefs map[uint64]*vmSeries
	// slots index the series by the handles appenders return (handle):
	// a slice read instead of a map lookup per sample. A forgotten
	// series' slot is reused under the next generation, so that a stale
	// handle finds nothing and the appender looks the labels up.
	slots     []*vmSeries
	slotGen   []uint32
	freeSlots []int32
	byHash    map[uint64]*vmSeries
	nextRef   uint64
	gen       uint64 // counts checkpoints that forgot series
	maxT      int64  // newest sample of any series
	minT      int64  // oldest sample stored, math.MaxInt64 when empty

	// dirty is set by a commit and cleared by the next querier, which
	// makes the engine's pending samples searchable first: a committed
	// sample is visible to every later query, as in the TSDB.
	dirty atomic.Bool

	// staged holds committed samples until flushStage hands them to the
	// engine; flushMu serialises the flushes, stageFull wakes the flusher.
	staged    vmStage
	stageMax  int // vmStageMaxRows; less in tests
	flushMu   sync.Mutex
	stageFull chan struct{}
	flushErr  atomic.Pointer[error] // the last flush's failure, nil after a success
	months    vmMonths

	stop chan struct{}
	wg   sync.WaitGroup // the checkpoints and the flusher
}

// openVMRaw opens (or creates) the VM raw tier in dir and replays its WAL.
func openVMRaw(dir string, retention, ooo time.Duration, engineMemory int64, now func() time.Time, log *slog.Logger) (r *vmRaw, err error) {
	vmInit(engineMemory)
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o750); err != nil {
		return nil, err
	}
	r = &vmRaw{
		dir: dir, log: log, now: now,
		retention: retention.Milliseconds(), ooo: ooo.Milliseconds(),
		replayRefs: map[uint64]*vmSeries{}, byHash: map[uint64]*vmSeries{},
		maxT: math.MinInt64, minT: math.MaxInt64,
		staged:    vmStage{gen: 1},
		stageMax:  vmStageMaxRows,
		months:    vmMonths{known: map[int64]bool{}},
		stageFull: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	func() {
		// lib/storage panics (logger.Panicf) on a directory it cannot use.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("open raw tier %s: %v", dir, p)
			}
		}()
		r.engineRetention = engineRetention(retention, now)
		r.st = vmstorage.MustOpenStorage(filepath.Join(dir, "data"), vmstorage.OpenOptions{Retention: r.engineRetention})
	}()
	if err != nil {
		return nil, err
	}
	if err := r.loadMinT(); err != nil {
		r.st.MustClose()
		return nil, err
	}
	if err := r.replay(); err != nil {
		r.st.MustClose()
		return nil, fmt.Errorf("open raw tier %s: replay WAL: %w", dir, err)
	}
	r.replayRefs = nil
	if r.wal, err = wlog.NewSize(log, nil, filepath.Join(dir, "wal"), vmWALSegmentSize, compression.Snappy); err != nil {
		r.st.MustClose()
		return nil, fmt.Errorf("open raw tier %s: %w", dir, err)
	}
	r.wg.Add(2)
	go r.checkpoints()
	go r.flusher()
	return r, nil
}

// engineRetention is the retention the engine is opened with. It drops
// data by the wall clock, while the store's own checks (Append, StartTime)
// use the store's clock: a clock behind the wall's (a test's) lengthens
// the engine's retention by the difference, so that it keeps what the
// store's clock still calls recent.
func engineRetention(retention time.Duration, now func() time.Time) time.Duration {
	behind := time.Since(now())
	if behind < time.Minute {
		return retention
	}
	return retention + behind + 24*time.Hour
}

// boundsFile holds the tier's time bounds, in ms, as two decimal numbers:
// its start (the oldest sample queries read) and its newest sample.
func (r *vmRaw) boundsFile() string { return filepath.Join(r.dir, "bounds") }

func (r *vmRaw) loadMinT() error {
	b, err := os.ReadFile(r.boundsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var lo, hi int64
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return fmt.Errorf("read %s: %w", r.boundsFile(), err)
	}
	r.minT, r.maxT = lo, hi
	return nil
}

// saveBounds records the tier's start and newest sample.
func (r *vmRaw) saveBounds(minT, maxT int64) error {
	return writeFileAtomic(r.boundsFile(), fmt.Appendf(nil, "%d %d\n", minT, maxT))
}

// replay reads the last checkpoint and the WAL segments after it into the
// series table and the engine.
func (r *vmRaw) replay() error {
	walDir := filepath.Join(r.dir, "wal")
	refMap := map[chunks.HeadSeriesRef]*vmSeries{}
	cp, cpIdx, err := wlog.LastCheckpoint(walDir)
	switch {
	case errors.Is(err, record.ErrNotFound):
		cpIdx = -1
	case err != nil:
		return err
	default:
		if err := r.replayDir(cp, refMap, false); err != nil {
			return fmt.Errorf("checkpoint %s: %w", cp, err)
		}
	}
	first, last, err := wlog.Segments(walDir)
	if err != nil {
		return err
	}
	if first < 0 {
		return nil
	}
	first = max(first, cpIdx+1)
	for i := first; i <= last; i++ {
		if err := r.replaySegment(wlog.SegmentName(walDir, i), refMap); err != nil {
			return err
		}
	}
	if err := r.flushStage(); err != nil {
		return err
	}
	r.st.DebugFlush()
	return nil
}

func (r *vmRaw) replayDir(dir string, refMap map[chunks.HeadSeriesRef]*vmSeries, samples bool) error {
	first, last, err := wlog.Segments(dir)
	if err != nil || first < 0 {
		return err
	}
	for i := first; i <= last; i++ {
		if err := r.replaySegment(wlog.SegmentName(dir, i), refMap); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment applies one segment's records. A torn record at the end of
// the newest segment (a crash mid-write) ends the replay there, as the
// TSDB's own WAL replay does; its samples were never acknowledged.
func (r *vmRaw) replaySegment(name string, refMap map[chunks.HeadSeriesRef]*vmSeries) error {
	seg, err := wlog.OpenReadSegment(name)
	if err != nil {
		return err
	}
	defer seg.Close()
	rd := wlog.NewReader(wlog.NewSegmentBufReader(seg))
	dec := record.NewDecoder(nil, r.log)
	var (
		series  []record.RefSeries
		samples []record.RefSample
		rows    []vmRow
		refs    []*vmSeries
		newMinT = r.minT
	)
	for rd.Next() {
		rec := rd.Record()
		switch dec.Type(rec) {
		case record.Series:
			if series, err = dec.Series(rec, series[:0]); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for _, s := range series {
				ser := r.register(vmSeriesLabels(s.Labels), uint64(s.Ref))
				// Under another ref than the record's, the series' record
				// must be logged again before its samples are.
				ser.logged = ser.ref == uint64(s.Ref)
				refMap[s.Ref] = ser
			}
		case record.Samples:
			if samples, err = dec.Samples(rec, samples[:0]); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for _, sm := range samples {
				ser := refMap[sm.Ref]
				if ser == nil {
					continue // a series forgotten by a checkpoint
				}
				rows = append(rows, vmRow{t: sm.T, v: sm.V})
				refs = append(refs, ser)
				if sm.T >= ser.lastT {
					ser.lastT, ser.lastV = sm.T, sm.V
					ser.touched = max(ser.touched, sm.T)
				}
				r.maxT = max(r.maxT, sm.T)
				newMinT = min(newMinT, sm.T)
			}
			if err := r.stage(refs, rows); err != nil {
				return err
			}
			rows, refs = rows[:0], refs[:0]
		}
	}
	if newMinT < r.minT {
		if err := r.saveBounds(newMinT, r.maxT); err != nil {
			return err
		}
		r.minT = newMinT
	}
	if err := rd.Err(); err != nil {
		r.log.Warn("raw tier WAL ends in a torn record; replayed up to it", "segment", name, "err", err)
	}
	return nil
}

// register returns the series ls, adding it to the table when new, under
// ref when not 0 (a ref from the WAL: refs stay the same across restarts).
// Callers hold mu or run before the tier is shared.
func (r *vmRaw) register(ls labels.Labels, ref uint64) *vmSeries {
	if s := r.lookup(ls); s != nil {
		return s
	}
	if ref == 0 || r.replayRefs[ref] != nil {
		ref = r.nextRef + 1
	}
	r.nextRef = max(r.nextRef, ref)
	s := &vmSeries{ref: ref, ls: ls, lastT: math.MinInt64, touched: r.now().UnixMilli()}
	r.insert(s)
	return s
}

// insert adds s to the table. Callers hold mu.
func (r *vmRaw) insert(s *vmSeries) {
	h := s.ls.Hash()
	s.next = r.byHash[h]
	r.byHash[h] = s
	if r.replayRefs != nil {
		r.replayRefs[s.ref] = s
	}
	if n := len(r.freeSlots); n > 0 {
		s.slot = r.freeSlots[n-1]
		r.freeSlots = r.freeSlots[:n-1]
	} else {
		s.slot = int32(len(r.slots))
		r.slots = append(r.slots, nil)
		r.slotGen = append(r.slotGen, 0)
	}
	r.slots[s.slot] = s
	s.slotGen = r.slotGen[s.slot]
}

// handle is the SeriesRef appenders return for s: its slot (plus one, so
// that no handle is 0) and the slot's generation. Callers hold mu.
func (r *vmRaw) handle(s *vmSeries) storage.SeriesRef {
	return storage.SeriesRef(uint64(s.slotGen)<<32 | uint64(s.slot+1))
}

// bySlot returns the series of handle h, or nil for a handle of a
// forgotten series or none. Callers hold mu.
func (r *vmRaw) bySlot(h storage.SeriesRef) *vmSeries {
	i := int(uint32(h)) - 1
	if i < 0 || i >= len(r.slots) {
		return nil
	}
	if s := r.slots[i]; s != nil && s.slotGen == uint32(h>>32) {
		return s
	}
	return nil
}

// lookup returns the series of ls, or nil.
func (r *vmRaw) lookup(ls labels.Labels) *vmSeries {
	for s := r.byHash[ls.Hash()]; s != nil; s = s.next {
		if labels.Equal(s.ls, ls) {
			return s
		}
	}
	return nil
}

// forget drops s from the table. Callers hold mu.
func (r *vmRaw) forget(s *vmSeries) {
	s.logged = false
	delete(r.replayRefs, s.ref)
	r.slots[s.slot] = nil
	r.slotGen[s.slot]++
	r.freeSlots = append(r.freeSlots, s.slot)
	h := s.ls.Hash()
	p := r.byHash[h]
	if p == s {
		if s.next == nil {
			delete(r.byHash, h)
		} else {
			r.byHash[h] = s.next
		}
		return
	}
	for ; p != nil; p = p.next {
		if p.next == s {
			p.next = s.next
			return
		}
	}
}

// vmSeriesLabels returns ls without its labels of empty value (ls itself
// when it has none): the engine's raw name leaves them out, as Prometheus
// does, so {a, x=""} and {a} are one series of the tier, as of the engine.
func vmSeriesLabels(ls labels.Labels) labels.Labels {
	empty := false
	ls.Range(func(l labels.Label) { empty = empty || l.Value == "" })
	if !empty {
		return ls
	}
	b := labels.NewScratchBuilder(ls.Len())
	ls.Range(func(l labels.Label) {
		if l.Value != "" {
			b.Add(l.Name, l.Value)
		}
	})
	return b.Labels()
}

// vmNamer makes lib/storage's raw metric names (MarshalMetricNameRaw) of
// label sets, reusing its buffer of labels.
type vmNamer struct{ pls []vmprompb.Label }

// append appends the raw metric name of ls to dst.
func (n *vmNamer) append(dst []byte, ls labels.Labels) []byte {
	n.pls = n.pls[:0]
	ls.Range(func(l labels.Label) {
		n.pls = append(n.pls, vmprompb.Label{Name: l.Name, Value: l.Value})
	})
	return vmstorage.MarshalMetricNameRaw(dst, n.pls)
}

func vmMetricNameLabels(mn *vmstorage.MetricName) labels.Labels {
	b := labels.NewScratchBuilder(len(mn.Tags) + 1)
	if len(mn.MetricGroup) > 0 {
		b.Add(labels.MetricName, string(mn.MetricGroup))
	}
	for _, t := range mn.Tags {
		b.Add(string(t.Key), string(t.Value))
	}
	b.Sort()
	return b.Labels()
}

// checkpoints cuts the WAL every vmCheckpointInterval until Close.
func (r *vmRaw) checkpoints() {
	defer r.wg.Done()
	t := time.NewTicker(vmCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.checkpoint(); err != nil {
			r.log.Error("raw tier checkpoint failed; the WAL keeps growing until one succeeds", "err", err)
		}
	}
}

// checkpoint makes everything logged so far durable in the engine's files,
// writes the series table to a checkpoint and deletes the segments it
// covers. Series idle for vmSeriesIdle are forgotten.
func (r *vmRaw) checkpoint() error {
	if err := r.applyRetention(); err != nil {
		return err
	}
	// Cut the WAL and take the series list at one point between commits:
	// a series missing from the list (new, or forgotten here and used
	// again) has its series record logged after the cut.
	idle := r.now().Add(-vmSeriesIdle).UnixMilli()
	r.commitMu.Lock()
	seg, err := r.wal.NextSegmentSync()
	if err != nil {
		r.commitMu.Unlock()
		return err
	}
	r.mu.Lock()
	kept := make([]*vmSeries, 0, r.numSeriesLocked())
	// Sized at once: grown by appends, it took 27 MB at 260,000 series
	// instead of 8.
	last := make([]record.RefSample, 0, len(r.slots))
	forgot := false
	for _, s := range r.slots {
		if s == nil {
			continue
		}
		if s.touched < idle {
			r.forget(s)
			forgot = true
			continue
		}
		kept = append(kept, s)
		if s.lastT != math.MinInt64 {
			last = append(last, record.RefSample{Ref: chunks.HeadSeriesRef(s.ref), T: s.lastT, V: s.lastV})
		}
	}
	if forgot {
		r.gen++
	}
	r.mu.Unlock()
	r.commitMu.Unlock()
	cut := seg - 1 // the last segment the checkpoint covers
	// Every sample logged before the cut is staged or in the engine; a
	// snapshot then flushes the engine to its files (and syncs them); it
	// is deleted right away.
	if err := r.flushStage(); err != nil {
		return err
	}
	if err := r.flushToFiles(); err != nil {
		return err
	}
	walDir := filepath.Join(r.dir, "wal")
	cpDir := filepath.Join(walDir, fmt.Sprintf("checkpoint.%08d", cut))
	tmp := cpDir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cp, err := wlog.NewSize(r.log, nil, tmp, vmWALSegmentSize, compression.Snappy)
	if err != nil {
		return err
	}
	var enc record.Encoder
	// Each series' newest sample follows the series, so that a restart
	// knows it (duplicate checks, each machine's newest time for the
	// rollups); replaying it into the engine is a duplicate the engine
	// merges.
	if err := errors.Join(logChunked(cp, refSeries(kept), enc.Series), logChunked(cp, last, enc.Samples)); err != nil {
		cp.Close()
		return err
	}
	if err := cp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, cpDir); err != nil {
		return err
	}
	if err := r.wal.Truncate(cut + 1); err != nil {
		return err
	}
	return wlog.DeleteCheckpoints(walDir, cut)
}

// logChunked logs recs to w, encoded by enc in records of up to 10,000.
func logChunked[T any](w *wlog.WL, recs []T, enc func([]T, []byte) []byte) error {
	var buf []byte
	for len(recs) > 0 {
		n := min(len(recs), 10000)
		buf = enc(recs[:n], buf[:0])
		if err := w.Log(buf); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// flushToFiles makes the engine write every sample it took to its files.
func (r *vmRaw) flushToFiles() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("flush raw tier: %v", p)
		}
	}()
	name := r.st.MustCreateSnapshot()
	return r.st.DeleteSnapshot(name)
}

// Close stops the checkpoints and closes the engine, which writes what it
// holds in memory; the WAL is then covered by a final checkpoint.
func (r *vmRaw) Close() error {
	close(r.stop)
	r.wg.Wait()
	err := r.checkpoint()
	r.boundsMu.Lock()
	r.mu.RLock()
	minT, maxT := r.minT, r.maxT
	r.mu.RUnlock()
	if minT != math.MaxInt64 {
		err = errors.Join(err, r.saveBounds(minT, maxT))
	}
	r.boundsMu.Unlock()
	err = errors.Join(err, r.wal.Close())
	r.st.MustClose()
	return err
}

// Dir returns the tier's directory.
func (r *vmRaw) Dir() string { return r.dir }

// NumSeries returns the series the tier knows: those with a sample in the
// last hour or so.
func (r *vmRaw) NumSeries() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return uint64(r.numSeriesLocked())
}

// numSeriesLocked is the number of series in the table: the slots taken.
// Callers hold mu.
func (r *vmRaw) numSeriesLocked() int { return len(r.slots) - len(r.freeSlots) }

// StartTime returns the oldest sample's time the tier holds (ms), or
// math.MaxInt64 when empty. Queries read nothing older.
func (r *vmRaw) StartTime() (int64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.minT, nil
}

// applyRetention moves the tier's start to the retention's edge, as the
// TSDB deletes its blocks: queries no longer read older samples, which
// the engine deletes in its background merges (by the wall clock).
func (r *vmRaw) applyRetention() error {
	return r.moveStart(func(minT, maxT int64) (int64, bool) {
		// Relative to the newest sample, as the TSDB's retention; but
		// never before what the engine itself keeps by the wall clock.
		edge := max(maxT-r.retention, time.Now().UnixMilli()-r.engineRetention.Milliseconds())
		return edge, minT != math.MaxInt64 && minT < edge
	})
}

// lowerMinT makes t the tier's start if it is older, on disk first.
func (r *vmRaw) lowerMinT(t int64) error {
	return r.moveStart(func(minT, _ int64) (int64, bool) { return t, t < minT })
}

// moveStart sets the tier's start to what to returns, on disk first, when
// it says so; to gets the current start and newest sample.
func (r *vmRaw) moveStart(to func(minT, maxT int64) (int64, bool)) error {
	r.boundsMu.Lock()
	defer r.boundsMu.Unlock()
	r.mu.RLock()
	minT, maxT := r.minT, r.maxT
	r.mu.RUnlock()
	t, move := to(minT, maxT)
	if !move {
		return nil
	}
	if err := r.saveBounds(t, maxT); err != nil {
		return err
	}
	r.mu.Lock()
	r.minT = t
	r.mu.Unlock()
	return nil
}

// DisableCompactions and EnableCompactions are no-ops: the engine itself
// stops merging when its disk is short of room.
func (r *vmRaw) DisableCompactions() {}
func (r *vmRaw) EnableCompactions()  {}

// Appender returns an appender of the tier.
func (r *vmRaw) Appender(context.Context) storage.Appender {
	b, _ := vmAppendBufs.Get().(*vmAppendBuf)
	if b == nil {
		b = &vmAppendBuf{}
	}
	return &vmAppender{r: r, vmAppendBuf: b}
}

// vmAppender collects samples until Commit. Its buffers come from a pool
// and go back at Commit or Rollback (a commit's slices and WAL records
// were half of the hub's allocations at 260,000 samples/s); the appender
// is spent then, as the storage.Appender contract has it, and a second
// Commit or Rollback does nothing.
type vmAppender struct {
	r *vmRaw
	*vmAppendBuf
}

// vmAppendBuf is what an appender reuses.
type vmAppendBuf struct {
	gen     uint64 // r.gen at the first Append
	rows    []vmRow
	refs    []*vmSeries
	samples []record.RefSample
	recs    [2][]byte // the WAL records: series, samples
}

var vmAppendBufs sync.Pool

// release returns the buffers to the pool.
func (a *vmAppender) release() {
	b := a.vmAppendBuf
	if b == nil {
		return
	}
	a.vmAppendBuf = nil
	clear(b.refs) // series the tier may forget
	b.rows, b.refs, b.samples = b.rows[:0], b.refs[:0], b.samples[:0]
	vmAppendBufs.Put(b)
}

var errVMAppenderSpent = errors.New("raw tier: append after Commit or Rollback")

func (a *vmAppender) Append(ref storage.SeriesRef, ls labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	r := a.r
	if a.vmAppendBuf == nil {
		return 0, errVMAppenderSpent
	}
	r.mu.RLock()
	if len(a.rows) == 0 {
		a.gen = r.gen
	}
	s := r.bySlot(ref)
	if s == nil {
		ls = vmSeriesLabels(ls)
		if s = r.lookup(ls); s == nil {
			r.mu.RUnlock()
			if ls.IsEmpty() {
				return 0, errors.New("append to the raw tier: a series without labels")
			}
			r.mu.Lock()
			if s = r.lookup(ls); s == nil {
				s = r.register(ls, 0)
			}
			r.mu.Unlock()
			r.mu.RLock()
		}
	}
	lastT, lastV, maxT, h := s.lastT, s.lastV, r.maxT, r.handle(s)
	r.mu.RUnlock()
	switch {
	case t == lastT && math.Float64bits(v) == math.Float64bits(lastV):
		return h, nil // already stored
	case t == lastT:
		return h, storage.ErrDuplicateSampleForTimestamp
	case maxT != math.MinInt64 && t < maxT-r.ooo:
		return h, storage.ErrTooOldSample
	}
	a.rows = append(a.rows, vmRow{t: t, v: v})
	a.refs = append(a.refs, s)
	return h, nil
}

func (a *vmAppender) Commit() error {
	r := a.r
	if a.vmAppendBuf == nil {
		return nil
	}
	defer a.release()
	if len(a.rows) == 0 {
		return nil
	}
	if r.st.IsReadOnly() {
		return fmt.Errorf("raw tier: the engine stopped writing with less than %s free: %w", formatBytes(EngineReserve), syscall.ENOSPC)
	}
	if err := r.flushFailed(); err != nil {
		return err
	}
	r.commitMu.RLock()
	defer r.commitMu.RUnlock()
	r.mu.Lock()
	if r.gen != a.gen {
		// A checkpoint forgot series since the first Append: put back
		// those this commit uses, so that their records are logged again.
		for i, s := range a.refs {
			if r.slots[s.slot] == s {
				continue
			}
			if s2 := r.lookup(s.ls); s2 != nil {
				a.refs[i] = s2
				continue
			}
			r.insert(s)
		}
	}
	// Log the record of every series not logged yet (new, or forgotten by
	// a checkpoint and back).
	var unlogged []*vmSeries
	for _, s := range a.refs {
		if !s.logged {
			s.logged = true
			unlogged = append(unlogged, s)
		}
	}
	r.mu.Unlock()
	var enc record.Encoder
	var list [2][]byte
	recs := list[:0]
	if len(unlogged) > 0 {
		a.recs[0] = enc.Series(refSeries(unlogged), a.recs[0][:0])
		recs = append(recs, a.recs[0])
	}
	samples := slices.Grow(a.samples[:0], len(a.rows))[:len(a.rows)]
	a.samples = samples
	minT := int64(math.MaxInt64)
	for i, row := range a.rows {
		samples[i] = record.RefSample{Ref: chunks.HeadSeriesRef(a.refs[i].ref), T: row.t, V: row.v}
		minT = min(minT, row.t)
	}
	a.recs[1] = enc.Samples(samples, a.recs[1][:0])
	recs = append(recs, a.recs[1])
	if err := r.wal.Log(recs...); err != nil {
		r.mu.Lock()
		for _, s := range unlogged {
			s.logged = false
		}
		r.mu.Unlock()
		return fmt.Errorf("write raw tier WAL: %w", err)
	}
	r.mu.RLock()
	older := minT < r.minT
	r.mu.RUnlock()
	if older {
		if err := r.lowerMinT(minT); err != nil {
			return fmt.Errorf("write raw tier start: %w", err)
		}
	}
	if err := r.ensurePartitions(a.refs, a.rows); err != nil {
		return err
	}
	stageErr := r.stage(a.refs, a.rows)
	now := r.now().UnixMilli()
	r.mu.Lock()
	for i, row := range a.rows {
		s := a.refs[i]
		if row.t >= s.lastT {
			s.lastT, s.lastV = row.t, row.v
		}
		s.touched = max(s.touched, now)
		r.maxT = max(r.maxT, row.t)
	}
	r.mu.Unlock()
	r.dirty.Store(true)
	return stageErr
}

func (a *vmAppender) Rollback() error {
	a.release()
	return nil
}

// The appender takes float samples only, as the raw tier's writers send.
var errVMFloatsOnly = errors.New("the raw tier takes float samples only")

func (a *vmAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errVMFloatsOnly
}

func (a *vmAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errVMFloatsOnly
}

func (a *vmAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errVMFloatsOnly
}

func (a *vmAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, nil
}

func (a *vmAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errVMFloatsOnly
}

func (a *vmAppender) SetOptions(*storage.AppendOptions) {}

var _ io.Closer = (*vmRaw)(nil)

// newestByMachine returns the newest sample's time (ms) of each machine
// (metric.MachineLabel) among the series the tier knows: those written
// since the last checkpoint and the newest sample of each that the
// checkpoint recorded.
func (r *vmRaw) newestByMachine() map[string]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]int64{}
	for _, s := range r.slots {
		if s == nil || s.lastT == math.MinInt64 {
			continue
		}
		if m := s.ls.Get(metric.MachineLabel); m != "" && s.lastT > out[m] {
			out[m] = s.lastT
		}
	}
	return out
}

// Compact applies the retention and writes every sample the engine took
// to its files.
func (r *vmRaw) Compact(context.Context) error {
	if err := r.applyRetention(); err != nil {
		return err
	}
	if err := r.flushStage(); err != nil {
		return err
	}
	r.st.DebugFlush()
	return r.flushToFiles()
}

// refSeries turns series into the WAL's series records (checkpoints and
// commits log them alike).
func refSeries(list []*vmSeries) []record.RefSeries {
	out := make([]record.RefSeries, 0, len(list))
	for _, s := range list {
		out = append(out, record.RefSeries{Ref: chunks.HeadSeriesRef(s.ref), Labels: s.ls})
	}
	return out
}
