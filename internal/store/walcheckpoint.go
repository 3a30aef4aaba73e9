package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"

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
// checkpoint, which holds the series and little else.
//
// The checkpoint holds the series records of series in the head (a
// superset of those the TSDB keeps after its truncation), the samples at
// or after mint and the tombstones that reach it. A record of any other
// kind (exemplars, histograms, metadata: the store writes none) leaves
// the checkpoint to the TSDB. The checkpoint is put in place only once the
// block before mint is on disk and opens, so a restart at any point finds
// either the old checkpoint and every segment, or the new checkpoint and
// the block. If the TSDB then fails to load the block (and deletes it),
// the compaction removes the checkpoint again (compactGate.compact).

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
// returns how many it put. Segments below the last checkpoint are never
// read, and the TSDB deletes them with those it checkpoints.
func padWAL(dir string, to int) (int, error) {
	first, last, err := wlog.Segments(dir)
	if err != nil || first < 0 {
		return 0, err
	}
	// first-n + (last+padMargin-1 - (first-n))*2/3 <= to
	n := min(first, first+2*(last+padMargin-1)-3*to)
	for i := first - 1; i >= first-n; i-- {
		f, err := os.OpenFile(wlog.SegmentName(dir, i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return first - 1 - i, err
		}
		if err := f.Close(); err != nil {
			return first - i, err
		}
	}
	return max(n, 0), nil
}

// padMargin is how many segments the WAL may grow by between padWAL and
// the TSDB's truncation (its block reload and head truncation, seconds:
// a 128-MB segment holds ~18 s at 1 M samples/s).
const padMargin = 4

// checkpointWAL writes the raw tier's WAL checkpoint for a head truncated
// at mint, paced by step, once the head's block before mint is on disk,
// and pads the WAL for the TSDB's checkpoint to end there too. It returns
// the checkpoint's directory ("" none); an error leaves the whole
// checkpoint to the TSDB.
func (g *compactGate) checkpointWAL(ctx context.Context, mint int64, step func() error) (string, error) {
	dir := filepath.Join(g.db.Dir(), "wal")
	ir, err := g.db.Head().Index()
	if err != nil {
		return "", err
	}
	defer ir.Close()
	var b labels.ScratchBuilder
	// The series in the head before its truncation: those the TSDB keeps
	// after it, and those it drops (the next checkpoint drops them).
	keep := func(ref chunks.HeadSeriesRef) bool { return ir.Series(storage.SeriesRef(ref), &b, nil) == nil }
	c, err := newWALCheckpoint(dir, mint, keep, step, g.log)
	if err != nil || c == nil {
		return "", err
	}
	if err := c.run(); err != nil {
		c.abort()
		return "", err
	}
	if err := ctx.Err(); err != nil {
		c.abort()
		return "", err
	}
	cp, err := c.commit()
	if err != nil || cp == "" {
		return cp, err
	}
	// The older checkpoints are covered by this one.
	if err := wlog.DeleteCheckpoints(dir, c.to); err != nil {
		g.log.Warn("delete old raw tier WAL checkpoints", "err", err)
	}
	padded, err := padWAL(dir, c.to)
	if err != nil {
		g.log.Warn("pad raw tier WAL: the TSDB's checkpoint reads more segments", "err", err)
	}
	g.log.Info("raw tier WAL checkpoint written", "dir", cp, "from_segment", c.from, "to_segment", c.to, "padding_segments", padded)
	return cp, nil
}
