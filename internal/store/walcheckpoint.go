package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// The raw tier's WAL checkpoint, written paced before the TSDB's own.
//
// After each head compaction the TSDB checkpoints its WAL
// (Head.truncateWAL): it reads the last checkpoint and the oldest two
// thirds of the segments, writes the series still in the head and every
// sample at or after the new head start (mint) to a new checkpoint, and
// deletes the segments it read. It does so in one go on the compaction's
// goroutine, unpaced. At 1 M samples/s the WAL grows about 25 GB an hour
// (7 bytes a sample, Snappy), and the hourly checkpoint read some 25 GB at
// once: in a whole hub the live view fell a minute behind meanwhile
// (docs/benchmarks.md, "The raw tier's compactions, run by the store").
// Two thirds of the segments also reach well past mint (the head is
// compacted half a block after mint, and its block takes minutes to
// write), so the TSDB copied minutes of samples into its checkpoint too.
//
// So the store writes the checkpoint itself once the head's block is
// written (in the compactor's Write, before the TSDB loads the block and
// truncates the head and the WAL), resting between records at the
// compaction's duty: the last checkpoint and the segments from the
// oldest up to the last one that starts before mint, keeping what the
// TSDB's would keep. That segment is where the checkpoint ends; the
// segments after it stay in the WAL as they are. The TSDB's own
// checkpoint then starts from the store's (a checkpoint stands for every
// segment up to its index). For it to end there too rather than two
// thirds of the way, the store puts empty segment files below the oldest
// (padWAL): the TSDB's rule counts segments, and those below a checkpoint
// are never read, only deleted. It then copies only the store's
// checkpoint, which holds the series and little else. The segments the
// store's checkpoint covers are moved out of the WAL before the padding
// (walCheckpointedDir): the TSDB would delete them at once, the store
// deletes them paced once the TSDB has loaded the block.
//
// The checkpoint holds the series records of series in the head (a
// superset of those the TSDB keeps after its truncation), the samples at
// or after mint and the tombstones that reach it. A record of any other
// kind (exemplars, histograms, metadata: the store writes none) leaves
// the checkpoint to the TSDB. The checkpoint is put in place only once the
// block before mint is on disk and opens, so a restart at any point finds
// either the old checkpoint and every segment, or the new checkpoint and
// the block. If the TSDB then fails to load the block (and deletes it),
// the compaction puts the WAL back as it was (walSetAside.undo).

// walCheckpointTmp is where the checkpoint is written before it is put in
// place; the TSDB deletes such a directory when it opens.
const walCheckpointTmp = "checkpoint.sysmonstm" + wlog.CheckpointTempFileSuffix

// errWALRecord: the WAL holds a record the store's checkpoint does not
// write; the TSDB's own checkpoint does the work.
var errWALRecord = errors.New("WAL record of a kind the store's checkpoint leaves to the TSDB")

// walCheckpoint writes one checkpoint of the WAL in dir, dropping samples
// before mint and series keep refuses.
type walCheckpoint struct {
	dir  string
	mint int64
	keep func(chunks.HeadSeriesRef) bool
	step func() error // rests (restStep); its error ends the checkpoint

	prevDir string // the last checkpoint ("" none), read with the first segments
	prev    int    // its index (-1 none)
	from    int    // the first segment to read
	to      int    // the last segment read
	read1   bool   // a segment was read
	w       *wlog.WL

	dec     record.Decoder
	enc     record.Encoder
	buf     []byte
	recs    [][]byte
	series  []record.RefSeries
	samples []record.RefSample
	stones  []tombstones.Stone
}

// newWALCheckpoint starts a checkpoint of the WAL in dir, or returns nil
// when no segment is finished since the last checkpoint.
func newWALCheckpoint(dir string, mint int64, keep func(chunks.HeadSeriesRef) bool, step func() error, log *slog.Logger) (*walCheckpoint, error) {
	first, last, err := wlog.Segments(dir)
	if err != nil || first < 0 {
		return nil, err
	}
	c := &walCheckpoint{dir: dir, mint: mint, keep: keep, step: step, prev: -1, dec: record.NewDecoder(labels.NewSymbolTable(), log)}
	switch prevDir, prev, err := wlog.LastCheckpoint(dir); {
	case errors.Is(err, record.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		c.prevDir, c.prev = prevDir, prev
	}
	c.to = first - 1
	if c.prevDir != "" {
		if first > c.prev+1 {
			return nil, nil // a gap: the TSDB refuses it too
		}
		c.to = c.prev
	}
	if c.from = c.to + 1; c.from > last-1 {
		return nil, nil // the segment being written is never read
	}
	tmp := filepath.Join(dir, walCheckpointTmp)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return nil, err
	}
	// The WAL's compression (tierOptions), as the TSDB writes its own.
	if c.w, err = wlog.New(nil, nil, tmp, tierWALCompression); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	return c, nil
}

// run reads the last checkpoint, then the finished segments after it up
// to the first that starts with samples mostly at or after mint (the
// samples of the next hour, which stay in the WAL).
func (c *walCheckpoint) run() error {
	_, last, err := wlog.Segments(c.dir)
	if err != nil {
		return err
	}
	for seg := c.to + 1; seg < last; seg++ {
		if after, err := c.startsAfter(seg); err != nil || after {
			return err
		}
		if !c.read1 && c.prevDir != "" {
			if err := c.read(wlog.SegmentRange{Dir: c.prevDir, First: 0, Last: math.MaxInt32}); err != nil {
				return err
			}
		}
		if err := c.read(wlog.SegmentRange{Dir: c.dir, First: seg, Last: seg}); err != nil {
			return err
		}
		c.to, c.read1 = seg, true
	}
	return nil
}

// startsAfter reports whether the first samples of segment seg (up to
// startSamples) are mostly at or after mint: records are logged as they
// come, so the rest of the segment is too. A replay of old samples (an
// agent's buffer) may come first; it is outweighed.
func (c *walCheckpoint) startsAfter(seg int) (bool, error) {
	sr, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: c.dir, First: seg, Last: seg})
	if err != nil {
		return false, err
	}
	defer sr.Close()
	n, after := 0, 0
	for r := wlog.NewReader(sr); n < startSamples && r.Next(); {
		if c.dec.Type(r.Record()) != record.Samples {
			continue
		}
		if c.samples, err = c.dec.Samples(r.Record(), c.samples[:0]); err != nil {
			return false, fmt.Errorf("decode samples: %w", err)
		}
		n += len(c.samples)
		for _, s := range c.samples {
			if s.T >= c.mint {
				after++
			}
		}
	}
	return 2*after > n, nil
}

// startSamples is how many samples startsAfter weighs: about ten ingest
// commits.
const startSamples = 100_000

// read adds the records of the segments in sr to the checkpoint.
func (c *walCheckpoint) read(sr wlog.SegmentRange) error {
	segs, err := wlog.NewSegmentsRangeReader(sr)
	if err != nil {
		return err
	}
	defer segs.Close()
	r := wlog.NewReader(segs)
	for r.Next() {
		if err := c.step(); err != nil {
			return err
		}
		if err := c.add(r.Record()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read WAL segments %s %d-%d: %w", sr.Dir, sr.First, sr.Last, err)
	}
	return nil
}

// add keeps what the TSDB's checkpoint would of one record.
func (c *walCheckpoint) add(rec []byte) error {
	start := len(c.buf)
	switch t := c.dec.Type(rec); t {
	case record.Series:
		var err error
		if c.series, err = c.dec.Series(rec, c.series[:0]); err != nil {
			return fmt.Errorf("decode series: %w", err)
		}
		n := len(c.series)
		kept := slices.DeleteFunc(c.series, func(s record.RefSeries) bool { return !c.keep(s.Ref) })
		if len(kept) == n {
			c.buf = append(c.buf, rec...)
		} else if len(kept) > 0 {
			c.buf = c.enc.Series(kept, c.buf)
		}
	case record.Samples:
		var err error
		if c.samples, err = c.dec.Samples(rec, c.samples[:0]); err != nil {
			return fmt.Errorf("decode samples: %w", err)
		}
		kept := slices.DeleteFunc(c.samples, func(s record.RefSample) bool { return s.T < c.mint })
		if len(kept) > 0 {
			c.buf = c.enc.Samples(kept, c.buf)
		}
	case record.Tombstones:
		var err error
		if c.stones, err = c.dec.Tombstones(rec, c.stones[:0]); err != nil {
			return fmt.Errorf("decode tombstones: %w", err)
		}
		kept := slices.DeleteFunc(c.stones, func(s tombstones.Stone) bool {
			return !slices.ContainsFunc(s.Intervals, func(iv tombstones.Interval) bool { return iv.Maxt >= c.mint })
		})
		if len(kept) > 0 {
			c.buf = c.enc.Tombstones(kept, c.buf)
		}
	default:
		return fmt.Errorf("%w (type %d)", errWALRecord, t)
	}
	if len(c.buf) > start {
		c.recs = append(c.recs, c.buf[start:])
	}
	// Logged in 1 MB batches, as the TSDB's checkpoint does.
	if len(c.buf) > 1<<20 {
		return c.flush()
	}
	return nil
}

func (c *walCheckpoint) flush() error {
	if err := c.w.Log(c.recs...); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	c.buf, c.recs = c.buf[:0], c.recs[:0]
	return nil
}

// commit syncs the checkpoint and puts it in place as the checkpoint of
// every segment up to c.to, and returns its directory ("" when it read no
// segment and was dropped). Only once the block of the samples it dropped
// is on disk.
func (c *walCheckpoint) commit() (string, error) {
	if !c.read1 {
		c.abort()
		return "", nil
	}
	if err := c.flush(); err != nil {
		c.abort()
		return "", err
	}
	tmp := c.w.Dir()
	err := c.w.Close()
	c.w = nil
	if err == nil {
		err = syncDir(tmp)
	}
	dst := wlog.CheckpointDir(c.dir, c.to)
	if err == nil {
		err = fileutil.Replace(tmp, dst)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("put checkpoint in place: %w", err)
	}
	return dst, nil
}

// abort drops the checkpoint being written.
func (c *walCheckpoint) abort() {
	if c.w == nil {
		return
	}
	tmp := c.w.Dir()
	_ = c.w.Close()
	c.w = nil
	_ = os.RemoveAll(tmp)
}

// padWAL puts empty segment files below the oldest segment of the WAL in
// dir, as many as make the TSDB's checkpoint after a truncation end at or
// before segment to (with up to padMargin segments more by then): it takes
// the oldest two thirds of the segments it counts (Head.truncateWAL). It
// returns the segments it put, the highest first. Segments below the last
// checkpoint are never read, and the TSDB deletes them with those it
// checkpoints.
func padWAL(dir string, to int) ([]int, error) {
	first, last, err := wlog.Segments(dir)
	if err != nil || first < 0 {
		return nil, err
	}
	// first-n + (last+padMargin-1 - (first-n))*2/3 <= to
	n := min(first, first+2*(last+padMargin-1)-3*to)
	var padded []int
	for i := first - 1; i >= first-n; i-- {
		if err := emptySegment(dir, i); err != nil {
			return padded, err
		}
		padded = append(padded, i)
	}
	return padded, nil
}

// emptySegment creates segment i of the WAL in dir, empty; it fails where
// the segment is there already.
func emptySegment(dir string, i int) error {
	f, err := os.OpenFile(wlog.SegmentName(dir, i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	return f.Close()
}

// padMargin is how many segments the WAL may grow by between padWAL and
// the TSDB's truncation (its block reload and head truncation, seconds:
// a 128-MB segment holds ~18 s at 1 M samples/s).
const padMargin = 4

// rawWALFirstSegment numbers a new raw tier's first WAL segment. Padding
// (padWAL) goes down to segment 0 at most, and the TSDB's checkpoint takes
// the oldest two thirds of the segments, so it ends at the store's
// checkpoint only where the segments below that number at least twice as
// many as those after it. Numbered from 0, a new data directory's first
// head compaction (a WAL of an hour and a half or more, a block of up to
// an hour of it) has too few, and the TSDB's own checkpoint reads on past
// the store's, rewriting the samples after the block, unpaced: 4.4 GB in
// 91 s at 500,000 samples/s for a block of 55 minutes (docs/benchmarks.md,
// "The hour's head write after the fix"). Reading on in the store's
// checkpoint instead, paced, made it worse: the TSDB then copies the
// store's checkpoint, samples and all, unpaced (17 GB in 4.5 minutes for
// a block of two minutes, "The first head compaction of a new data
// directory"). A new raw tier's WAL starts here instead, behind an empty
// checkpoint: room below for heads of 50,000 segments (6 TB of WAL). A data
// directory whose WAL started at 0 keeps its numbers, high enough once
// its WAL is a few hours old.
const rawWALFirstSegment = 100_000

// numberNewWAL makes the WAL in dir, when there is none (no directory, or
// an empty one), start at segment rawWALFirstSegment: an empty checkpoint
// just below it, as the TSDB writes one that keeps nothing, and an empty
// first segment. The TSDB replays a WAL without a checkpoint from segment
// 0, and one with a checkpoint from the segment after it; it writes on
// after the last segment. Both are made in a directory beside dir and
// renamed into place, so that a crash leaves either no WAL or this one.
func numberNewWAL(dir string) error {
	switch entries, err := os.ReadDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		return nil
	}
	tmp := dir + ".sysmonstm" + wlog.CheckpointTempFileSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cp := wlog.CheckpointDir(tmp, rawWALFirstSegment-1)
	if err := os.MkdirAll(cp, 0o777); err != nil {
		return err
	}
	w, err := wlog.New(nil, nil, cp, tierWALCompression)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := emptySegment(tmp, rawWALFirstSegment); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	// An empty directory goes first: Rename replaces no directory.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// walCheckpointedDir, in the tier's directory beside the WAL, holds the
// segments a store checkpoint covers once it is in place: moved out of the
// WAL (renamed, in the order a truncation deletes them), so that the
// TSDB's truncation finds nothing of them to delete, and deleted by the
// store, paced, once the TSDB has loaded the head's block
// (dropCheckpointed). Unlinking them took a core for seconds at once:
// ~25 GB an hour at 1 M samples/s, 1.2-1.6 s for 3 GB in
// BenchmarkWALCheckpoint. The TSDB never reads it (its blocks are named
// by ULID).
const walCheckpointedDir = "wal.checkpointed"

// walSetAside is a store checkpoint in place: the segments it covers moved
// to walCheckpointedDir and the WAL padded below the rest. undo puts the
// WAL back as it was when the TSDB fails to load the head's block.
type walSetAside struct {
	wal, aside, checkpoint string
	to                     int   // the checkpoint's last segment
	moved                  []int // segments moved aside, in order
	padded                 []int // padding segments put (padWAL)
}

// setAside moves the WAL's segments up to s.to out of it, the oldest
// first: a crash in between leaves the WAL's segments contiguous, those
// left below the checkpoint unread.
func (s *walSetAside) setAside() error {
	first, _, err := wlog.Segments(s.wal)
	if err != nil || first < 0 {
		return err
	}
	if err := os.MkdirAll(s.aside, 0o777); err != nil {
		return err
	}
	for i := first; i <= s.to; i++ {
		name := wlog.SegmentName(s.wal, i)
		if err := os.Rename(name, filepath.Join(s.aside, filepath.Base(name))); err != nil {
			return err
		}
		s.moved = append(s.moved, i)
	}
	return syncDir(s.wal)
}

// undo takes the padding out, moves the segments back (the newest first,
// the WAL stays contiguous) and removes the checkpoint: the last one and
// every segment stand for the head again.
func (s *walSetAside) undo() error {
	var errs []error
	for _, i := range slices.Backward(s.padded) {
		if err := os.Remove(wlog.SegmentName(s.wal, i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, i := range slices.Backward(s.moved) {
		name := wlog.SegmentName(s.wal, i)
		if err := os.Rename(filepath.Join(s.aside, filepath.Base(name)), name); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.RemoveAll(s.checkpoint))
	return errors.Join(errs...)
}

// checkpointWAL writes the raw tier's WAL checkpoint for a head truncated
// at mint, paced by step, once the head's block before mint is on disk,
// sets the segments it covers aside and pads the WAL for the TSDB's
// checkpoint to end there too. It returns what it did (nil: nothing); an
// error leaves the whole checkpoint to the TSDB, with the WAL as it was.
func (g *compactGate) checkpointWAL(ctx context.Context, mint int64, step func() error) (*walSetAside, error) {
	dir := filepath.Join(g.db.Dir(), "wal")
	// Segments a stopped compaction left aside: their checkpoint is in
	// place, and they would share names with those set aside now.
	if err := g.dropCheckpointed(ctx); err != nil {
		return nil, err
	}
	ir, err := g.db.Head().Index()
	if err != nil {
		return nil, err
	}
	defer ir.Close()
	var b labels.ScratchBuilder
	// The series in the head before its truncation: those the TSDB keeps
	// after it, and those it drops (the next checkpoint drops them).
	keep := func(ref chunks.HeadSeriesRef) bool { return ir.Series(storage.SeriesRef(ref), &b, nil) == nil }
	c, err := newWALCheckpoint(dir, mint, keep, step, g.log)
	if err != nil || c == nil {
		return nil, err
	}
	if err := c.run(); err != nil {
		c.abort()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		c.abort()
		return nil, err
	}
	cp, err := c.commit()
	if err != nil || cp == "" {
		return nil, err
	}
	s := &walSetAside{wal: dir, aside: filepath.Join(g.db.Dir(), walCheckpointedDir), checkpoint: cp, to: c.to}
	if err := s.setAside(); err != nil {
		return nil, errors.Join(fmt.Errorf("set checkpointed WAL segments aside: %w", err), s.undo())
	}
	s.padded, err = padWAL(dir, c.to)
	if err != nil {
		g.log.Warn("pad raw tier WAL: the TSDB's checkpoint reads more segments", "err", err)
	}
	g.log.Info("raw tier WAL checkpoint written", "dir", cp, "from_segment", c.from, "to_segment", c.to,
		"segments_set_aside", len(s.moved), "padding_segments", len(s.padded))
	return s, nil
}

// dropCheckpointed deletes the checkpoints before the last one and the
// segments set aside (walCheckpointedDir), truncating each by
// dropStep and resting after each at the compaction's duty. Stopped by
// ctx, it leaves the rest for the next head compaction.
func (g *compactGate) dropCheckpointed(ctx context.Context) error {
	wal := filepath.Join(g.db.Dir(), "wal")
	if _, last, err := wlog.LastCheckpoint(wal); err == nil {
		if err := wlog.DeleteCheckpoints(wal, last); err != nil {
			return err
		}
	}
	rs := newRestStep(ctx, g.duty, g.sleep, g.now)
	start := time.Now()
	n, size, err := dropSegments(filepath.Join(g.db.Dir(), walCheckpointedDir), func() error { return rs.pace.rest(ctx) })
	if n > 0 {
		g.log.Info("raw tier WAL segments deleted", "segments", n, "bytes", size, "duration", time.Since(start).Round(time.Millisecond), "err", err)
	}
	return err
}

// dropSegments deletes the directory of segments set aside, truncating
// each by dropStep and calling rest after each step; an error from rest
// ends it. It returns how many files it deleted and their bytes.
func dropSegments(aside string, rest func() error) (int, int64, error) {
	ents, err := os.ReadDir(aside)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var bytes int64
	for i, e := range ents {
		name := filepath.Join(aside, e.Name())
		fi, err := os.Lstat(name)
		if err != nil {
			return i, bytes, err
		}
		size := fi.Size()
		for size > dropStep {
			if err := os.Truncate(name, size-dropStep); err != nil {
				return i, bytes, err
			}
			size -= dropStep
			bytes += dropStep
			if err := rest(); err != nil {
				return i, bytes, err
			}
		}
		if err := os.RemoveAll(name); err != nil {
			return i, bytes, err
		}
		bytes += size
		if err := rest(); err != nil {
			return i + 1, bytes, err
		}
	}
	return len(ents), bytes, os.Remove(aside)
}

// dropStep is how much of a segment set aside is deleted between rests.
const dropStep = 16 << 20
