package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// The raw tier's WAL checkpoint, written paced before the TSDB's own.
//
// After each head compaction the TSDB checkpoints its WAL
// (Head.truncateWAL): it reads the last checkpoint and the oldest two
// thirds of the segments, writes the series and every sample at or after
// the new head start to a new checkpoint, and deletes the segments it
// read. It does so in one go on the compaction's goroutine, unpaced. At
// 1 M samples/s the WAL grows about 26 GB an hour (7 bytes a sample,
// Snappy), so the hourly checkpoint reads some 26 GB at once: in a whole
// hub the live view fell a minute behind meanwhile (docs/benchmarks.md,
// "The raw tier's compactions, run by the store").
//
// So the store writes that checkpoint itself once the head's block is
// written (the compactor's Write, before the TSDB reloads its blocks and
// truncates the head and the WAL), resting between records at the
// compaction's duty, up to the segment the TSDB's two-thirds rule picks
// then, and again for the segments written meanwhile until it has caught
// up. The TSDB's own checkpoint then starts from it (a checkpoint stands
// for every segment up to its index): it reads only this checkpoint and
// the segments written since, and drops what it would have dropped (the
// series gone from the head are kept here, for the TSDB to drop).
//
// What the checkpoint holds is what the TSDB's would: every series record,
// the samples at or after mint, the tombstones that reach mint. A record
// of any other kind (exemplars, histograms, metadata: the store writes
// none) leaves the checkpoint to the TSDB. The checkpoint is put in place
// only once the block before mint is on disk, so a restart at any point
// finds either the old checkpoint and every segment, or the new
// checkpoint and the block. If the TSDB then fails to load the block (and
// deletes it), the compaction removes the checkpoint again
// (compactGate.compact).

// walCheckpointTmp is where the checkpoint is written before it is put in
// place; the TSDB deletes such a directory when it opens.
const walCheckpointTmp = "checkpoint.sysmonstm" + wlog.CheckpointTempFileSuffix

// errWALRecord: the WAL holds a record the store's checkpoint does not
// write; the TSDB's own checkpoint does the work.
var errWALRecord = errors.New("WAL record of a kind the store's checkpoint leaves to the TSDB")

// walCheckpoint writes one checkpoint of the WAL in dir, dropping samples
// before mint.
type walCheckpoint struct {
	dir  string
	mint int64
	step func() error // rests (restStep); its error ends the checkpoint
	log  *slog.Logger

	prevDir string // the last checkpoint ("" none), read with the first segments
	prev    int    // its index (-1 none)
	to      int    // the last segment read
	read1   bool   // a segment was read
	w       *wlog.WL

	dec     record.Decoder
	enc     record.Encoder
	buf     []byte
	recs    [][]byte
	samples []record.RefSample
	stones  []tombstones.Stone
}

// walCheckpointTarget is the segment the TSDB's own checkpoint would end
// at if it ran now: two thirds of the way through the segments before the
// one being written (Head.truncateWAL). ok is false when it would not
// checkpoint.
func walCheckpointTarget(dir string) (first, target int, ok bool, err error) {
	first, last, err := wlog.Segments(dir)
	if err != nil || first < 0 {
		return first, 0, false, err
	}
	target = first + (last-1-first)*2/3
	return first, target, target > first, nil
}

// newWALCheckpoint starts a checkpoint of the WAL in dir, or returns nil
// when the TSDB would not checkpoint it now.
func newWALCheckpoint(dir string, mint int64, step func() error, log *slog.Logger) (*walCheckpoint, error) {
	first, target, ok, err := walCheckpointTarget(dir)
	if err != nil || !ok {
		return nil, err
	}
	c := &walCheckpoint{dir: dir, mint: mint, step: step, log: log, prev: -1, dec: record.NewDecoder(labels.NewSymbolTable(), log)}
	switch prevDir, prev, err := wlog.LastCheckpoint(dir); {
	case errors.Is(err, record.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		c.prevDir, c.prev = prevDir, prev
	}
	c.to = first - 1
	if c.prevDir != "" {
		if first > c.prev+1 || target <= c.prev {
			// A gap (the TSDB refuses it too), or nothing new.
			return nil, nil
		}
		c.to = c.prev
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

// run reads the segments up to the TSDB's target, then those the target
// moved to meanwhile, until it has caught up (or read catchUpRounds
// times: the TSDB reads the rest itself).
func (c *walCheckpoint) run() error {
	const catchUpRounds = 8
	for range catchUpRounds {
		_, target, ok, err := walCheckpointTarget(c.dir)
		if err != nil {
			return err
		}
		if !ok || target <= c.to {
			return nil
		}
		if err := c.read(target); err != nil {
			return err
		}
	}
	return nil
}

// read adds the segments after c.to up to target (and, the first time,
// the last checkpoint) to the checkpoint.
func (c *walCheckpoint) read(target int) error {
	var ranges []wlog.SegmentRange
	if !c.read1 && c.prevDir != "" {
		ranges = append(ranges, wlog.SegmentRange{Dir: c.prevDir, First: 0, Last: math.MaxInt32})
	}
	ranges = append(ranges, wlog.SegmentRange{Dir: c.dir, First: c.to + 1, Last: target})
	sr, err := wlog.NewSegmentsRangeReader(ranges...)
	if err != nil {
		return err
	}
	defer sr.Close()
	r := wlog.NewReader(sr)
	for r.Next() {
		if err := c.step(); err != nil {
			return err
		}
		if err := c.add(r.Record()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read WAL segments %d-%d: %w", c.to+1, target, err)
	}
	c.to, c.read1 = target, true
	return nil
}

// add keeps what the TSDB's checkpoint would of one record (but every
// series: the TSDB drops those gone from the head when it reads this
// checkpoint).
func (c *walCheckpoint) add(rec []byte) error {
	start := len(c.buf)
	switch t := c.dec.Type(rec); t {
	case record.Series:
		c.buf = append(c.buf, rec...)
	case record.Samples:
		var err error
		if c.samples, err = c.dec.Samples(rec, c.samples[:0]); err != nil {
			return fmt.Errorf("decode samples: %w", err)
		}
		kept := c.samples[:0]
		for _, s := range c.samples {
			if s.T >= c.mint {
				kept = append(kept, s)
			}
		}
		if len(kept) > 0 {
			c.buf = c.enc.Samples(kept, c.buf)
		}
	case record.Tombstones:
		var err error
		if c.stones, err = c.dec.Tombstones(rec, c.stones[:0]); err != nil {
			return fmt.Errorf("decode tombstones: %w", err)
		}
		kept := c.stones[:0]
		for _, s := range c.stones {
			for _, iv := range s.Intervals {
				if iv.Maxt >= c.mint {
					kept = append(kept, s)
					break
				}
			}
		}
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

// checkpointWAL writes the raw tier's WAL checkpoint for a head truncated
// at mint, paced by step, once the head's block before mint is on disk.
// It returns the checkpoint's directory ("" none); an error leaves the
// whole checkpoint to the TSDB.
func (g *compactGate) checkpointWAL(ctx context.Context, mint int64, step func() error) (string, error) {
	dir := filepath.Join(g.db.Dir(), "wal")
	c, err := newWALCheckpoint(dir, mint, step, g.log)
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
	return c.commit()
}
