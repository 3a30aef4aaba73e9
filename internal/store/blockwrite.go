package store

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/tsdb/tombstones"
)

// A block batch collects one group's rollups and writes them as TSDB blocks
// without a TSDB head. A head keeps ~1.5 KB of heap per series (the series,
// its chunks, the postings and hash maps) until the block is written; a
// batch keeps a series' labels and where its chunks are (~100 B beside the
// labels), and the chunks themselves in a spill file of its directory:
//
//   - Append encodes a series' samples into an open XOR chunk, cut at
//     batchChunkSamples (as the head cuts) and at every block boundary;
//     Commit moves the open chunks to the spill file.
//   - write sorts the series by labels, as a block's index wants them, and
//     writes one block per blockRange-aligned window: the symbols, then
//     series by series the chunks (read back from the spill file, so that
//     the chunk file is in the index's order, which the index requires)
//     and the series' index entry, then the meta and an empty tombstones
//     file. The block appears under its ULID only once complete.
//
// A batch is one appender at a time (rollSink): Commit keeps what was
// appended, Rollback drops everything since the last Commit, as the head's
// appender does. A series appended under the same labels twice is merged
// when written; where the two overlap in time, the later chunks are dropped
// and counted as refused, as the head refuses out-of-order samples.

// batchChunkSamples is where a batch cuts a chunk: the TSDB head's default.
const batchChunkSamples = 120

// blockSegmentSize is the size of a rollup block's chunk files, in bytes.
// The TSDB's chunk writer preallocates each file whole (512 MiB by default)
// while it writes: a group's block holds a few MiB of chunks, and the
// free-space reserve need not cover half a GiB per batch.
const blockSegmentSize = 8 << 20

// spillFileName is the file of a batch's cut chunks, in its directory.
const spillFileName = "chunks.spill"

type blockBatch struct {
	blockAppends
	dir        string // under the staging directory; holds the spill file
	blockRange int64

	spill *os.File
	w     *bufio.Writer
	off   int64 // bytes written to the spill file, buffered ones too
	err   error // a failed spill write: the batch is spent

	series []batchSeries
	opens  []openChunk
	free   []int32 // unused entries of opens

	touched []int32 // series appended to since the last Commit
	kept    int     // len(series) at the last Commit
	dropped int     // samples dropped when merging a twice-appended series
}

// batchSeries is one series of a batch.
type batchSeries struct {
	lset   labels.Labels
	chunks []spilledChunk // cut and spilled, in time order
	lastT  int64          // newest sample appended; math.MinInt64 for none
	doneT  int64          // lastT at the last Commit
	open   int32          // 1 + index of its open chunk in opens; 0 for none
	done   int32          // len(chunks) at the last Commit
}

// spilledChunk is a chunk in the spill file.
type spilledChunk struct {
	off        int64
	size       uint32
	samples    uint32
	mint, maxt int64
}

type openChunk struct {
	c          *chunkenc.XORChunk
	app        chunkenc.Appender
	samples    int
	mint, maxt int64
}

func (s *Store) newBatch(blockRange int64) (*blockBatch, error) {
	dir, f, err := s.newSpill("batch-")
	if err != nil {
		return nil, err
	}
	return &blockBatch{dir: dir, blockRange: blockRange, spill: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// newSpill makes a directory under the staging directory (named from
// prefix) holding a new, empty spill file.
func (s *Store) newSpill(prefix string) (string, *os.File, error) {
	dir, err := os.MkdirTemp(s.stagingPath(), prefix)
	if err != nil {
		return "", nil, fmt.Errorf("create rollup batch: %w", s.space.noteWriteError(err))
	}
	f, err := os.OpenFile(filepath.Join(dir, spillFileName), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("create rollup batch: %w", s.space.noteWriteError(err))
	}
	return dir, f, nil
}

// numSeries is the number of series appended (a series appended twice
// under the same labels counts twice).
func (b *blockBatch) numSeries() int { return len(b.series) }

func (b *blockBatch) close() {
	_ = b.spill.Close()
	_ = os.RemoveAll(b.dir)
}

// Appender returns the batch itself: it is its own (only) appender.
func (b *blockBatch) Appender(context.Context) storage.Appender { return b }

// Append adds a float sample to the series ref (1 + its index), or to a new
// series of lset when ref is 0. A sample not newer than the series' newest
// is refused as the head refuses it.
func (b *blockBatch) Append(ref storage.SeriesRef, lset labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if b.err != nil {
		return 0, b.err
	}
	var i int
	if ref == 0 {
		if lset.IsEmpty() {
			return 0, errors.New("rollup batch: empty label set")
		}
		if name, dup := lset.HasDuplicateLabelNames(); dup {
			return 0, fmt.Errorf("rollup batch: label name %q is not unique", name)
		}
		b.series = append(b.series, batchSeries{lset: lset, lastT: math.MinInt64, doneT: math.MinInt64})
		i = len(b.series) - 1
		ref = storage.SeriesRef(i + 1)
	} else if i = int(ref) - 1; i < 0 || i >= len(b.series) {
		return 0, fmt.Errorf("rollup batch: unknown series ref %d", ref)
	}
	s := &b.series[i]
	switch {
	case t == s.lastT:
		return ref, storage.ErrDuplicateSampleForTimestamp
	case t < s.lastT:
		return ref, storage.ErrOutOfOrderSample
	}
	if s.lastT == s.doneT {
		b.touched = append(b.touched, int32(i))
	}
	if s.open != 0 {
		o := &b.opens[s.open-1]
		if o.samples >= batchChunkSamples || floorTo(t, b.blockRange) != floorTo(o.mint, b.blockRange) {
			b.cut(s)
		}
	}
	if s.open == 0 {
		b.openChunk(s, t)
	}
	o := &b.opens[s.open-1]
	o.app.Append(0, t, v)
	o.samples++
	o.maxt = t
	s.lastT = t
	if b.err != nil {
		return 0, b.err
	}
	return ref, nil
}

// openChunk gives s an empty open chunk starting at t.
func (b *blockBatch) openChunk(s *batchSeries, t int64) {
	var k int32
	if n := len(b.free); n > 0 {
		k, b.free = b.free[n-1], b.free[:n-1]
	} else {
		b.opens = append(b.opens, openChunk{c: chunkenc.NewXORChunk()})
		k = int32(len(b.opens) - 1)
	}
	o := &b.opens[k]
	app, err := o.c.Appender() // an empty chunk's appender: no error
	if err != nil {
		b.err = fmt.Errorf("rollup batch: %w", err)
	}
	o.app, o.samples, o.mint, o.maxt = app, 0, t, t
	s.open = k + 1
}

// reset empties o's chunk for reuse.
func (o *openChunk) reset() {
	buf := o.c.Bytes()[:2] // the sample count, zeroed: an empty chunk
	buf[0], buf[1] = 0, 0
	o.c.Reset(buf)
	o.app, o.samples = nil, 0
}

// releaseOpen empties s's open chunk for reuse, without spilling it.
func (b *blockBatch) releaseOpen(s *batchSeries) {
	b.opens[s.open-1].reset()
	b.free = append(b.free, s.open-1)
	s.open = 0
}

// cut spills s's open chunk.
func (b *blockBatch) cut(s *batchSeries) {
	o := &b.opens[s.open-1]
	data := o.c.Bytes()
	if b.err == nil {
		if _, err := b.w.Write(data); err != nil {
			b.err = fmt.Errorf("rollup batch: write %s: %w", spillFileName, err)
		}
	}
	s.chunks = append(s.chunks, spilledChunk{off: b.off, size: uint32(len(data)), samples: uint32(o.samples), mint: o.mint, maxt: o.maxt})
	b.off += int64(len(data))
	b.releaseOpen(s)
}

// Commit keeps everything appended: open chunks are spilled.
func (b *blockBatch) Commit() error {
	for _, i := range b.touched {
		s := &b.series[i]
		if s.open != 0 {
			b.cut(s)
		}
		s.done, s.doneT = int32(len(s.chunks)), s.lastT
	}
	b.touched = b.touched[:0]
	b.kept = len(b.series)
	return b.err
}

// Rollback drops everything appended since the last Commit. Chunks it
// spilled stay in the spill file, unreferenced.
func (b *blockBatch) Rollback() error {
	for _, i := range b.touched {
		s := &b.series[i]
		if s.open != 0 {
			b.releaseOpen(s)
		}
		s.chunks, s.lastT = s.chunks[:s.done], s.doneT
	}
	b.touched = b.touched[:0]
	for i := b.kept; i < len(b.series); i++ {
		if s := &b.series[i]; s.open != 0 {
			b.releaseOpen(s)
		}
	}
	clear(b.series[b.kept:])
	b.series = b.series[:b.kept]
	return nil
}

func (b *blockBatch) AppendSTZeroSample(ref storage.SeriesRef, lset labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if st >= t {
		return ref, storage.ErrOutOfOrderST
	}
	return b.Append(ref, lset, st, 0)
}

// blockAppends are the Appender methods of the rollup block writers
// (blockBatch, hourBlock) besides the float samples they take: the store
// keeps float samples only, and a rollup carries no exemplars and a block
// no metadata.
type blockAppends struct{}

func (blockAppends) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("rollup block: float samples only")
}

func (blockAppends) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("rollup block: float samples only")
}

func (blockAppends) AppendExemplar(ref storage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, nil
}

func (blockAppends) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

func (blockAppends) SetOptions(*storage.AppendOptions) {}

// write writes the batch's committed series into dir (the staging
// directory), one block per blockRange-aligned window it has samples in,
// and returns their ULIDs. Samples dropped merging a series appended twice
// are returned too. The batch is spent.
func (b *blockBatch) write(ctx context.Context, dir string, logger *slog.Logger) (ids []string, dropped int, err error) {
	defer b.close()
	_ = b.Rollback() // what was not committed is not written, as in a head
	if b.err == nil {
		if err := b.w.Flush(); err != nil {
			b.err = fmt.Errorf("rollup batch: write %s: %w", spillFileName, err)
		}
	}
	if b.err != nil {
		return nil, 0, b.err
	}
	order := make([]int32, len(b.series))
	windows := map[int64]bool{}
	for i := range b.series {
		order[i] = int32(i)
		for _, c := range b.series[i].chunks {
			windows[floorTo(c.mint, b.blockRange)] = true
		}
	}
	slices.SortStableFunc(order, func(x, y int32) int { return labels.Compare(b.series[x].lset, b.series[y].lset) })
	for _, w := range slices.Sorted(maps.Keys(windows)) {
		id, err := b.writeBlock(ctx, dir, logger, order, w)
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			return ids, b.dropped, err
		}
	}
	return ids, b.dropped, nil
}

// writeBlock writes the window [mint, mint+blockRange) of the series, in
// order, as one block under dir.
func (b *blockBatch) writeBlock(ctx context.Context, dir string, logger *slog.Logger, order []int32, mint int64) (string, error) {
	maxt := mint + b.blockRange
	in := func(c spilledChunk) bool { return c.mint >= mint && c.mint < maxt }
	syms := map[string]struct{}{}
	for _, i := range order {
		s := &b.series[i]
		if slices.ContainsFunc(s.chunks, in) {
			s.lset.Range(func(l labels.Label) {
				syms[l.Name] = struct{}{}
				syms[l.Value] = struct{}{}
			})
		}
	}
	return writeBlockDir(ctx, dir, logger, mint, maxt, blockSegmentSize, func(cw *chunks.Writer, iw *index.Writer) (tsdb.BlockStats, error) {
		return b.populate(ctx, cw, iw, order, slices.Sorted(maps.Keys(syms)), in)
	})
}

// writeBlockDir writes a block of [mint, maxt) under dir: fill writes its
// chunks and index, then the meta and an empty tombstones file. The block
// appears under its ULID, which is returned, only once complete.
func writeBlockDir(ctx context.Context, dir string, logger *slog.Logger, mint, maxt int64, segmentSize int64, fill func(*chunks.Writer, *index.Writer) (tsdb.BlockStats, error)) (_ string, err error) {
	uid := ulid.MustNew(ulid.Now(), rand.Reader)
	final := filepath.Join(dir, uid.String())
	tmp := final + ".tmp-for-creation"
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	cw, err := chunks.NewWriter(filepath.Join(tmp, "chunks"), chunks.WithSegmentSize(segmentSize))
	if err != nil {
		return "", fmt.Errorf("open chunk writer: %w", err)
	}
	iw, err := index.NewWriter(ctx, filepath.Join(tmp, "index"))
	if err != nil {
		_ = cw.Close()
		return "", fmt.Errorf("open index writer: %w", err)
	}
	stats, err := fill(cw, iw)
	err = errors.Join(err, iw.Close(), cw.Close())
	if err != nil {
		return "", err
	}
	meta := &tsdb.BlockMeta{
		ULID: uid, MinTime: mint, MaxTime: maxt, Stats: stats, Version: 1,
		Compaction: tsdb.BlockMetaCompaction{Level: 1, Sources: []ulid.ULID{uid}},
	}
	if err := writeBlockMeta(tmp, meta); err != nil {
		return "", err
	}
	if _, err := tombstones.WriteFile(logger, tmp, tombstones.NewMemTombstones()); err != nil {
		return "", fmt.Errorf("write tombstones: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := fileutil.Replace(tmp, final); err != nil {
		return "", fmt.Errorf("rename block dir: %w", err)
	}
	return uid.String(), nil
}

// populate writes the symbols, then each series' chunks in the window and
// its index entry, in label order, merging series of equal labels.
func (b *blockBatch) populate(ctx context.Context, cw *chunks.Writer, iw *index.Writer, order []int32, syms []string, in func(spilledChunk) bool) (tsdb.BlockStats, error) {
	var st tsdb.BlockStats
	for _, sym := range syms {
		if err := iw.AddSymbol(sym); err != nil {
			return st, fmt.Errorf("write symbols: %w", err)
		}
	}
	var (
		picked []spilledChunk
		yield  yielder
		metas  []chunks.Meta
		cp     = newSpillCopier(b.spill)
		ref    storage.SeriesRef
	)
	for k := 0; k < len(order); {
		if k%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		yield.maybe()
		lset := b.series[order[k]].lset
		picked = picked[:0]
		for ; k < len(order) && labels.Equal(b.series[order[k]].lset, lset); k++ {
			for _, c := range b.series[order[k]].chunks {
				if in(c) {
					picked = append(picked, c)
				}
			}
		}
		if len(picked) == 0 {
			continue
		}
		slices.SortStableFunc(picked, func(x, y spilledChunk) int { return cmp.Compare(x.mint, y.mint) })
		metas = metas[:0]
		for _, c := range picked {
			if len(metas) > 0 && c.mint <= metas[len(metas)-1].MaxTime {
				b.dropped += int(c.samples) // overlaps what the series has
				continue
			}
			m, err := cp.copy(cw, c.off, int(c.size), c.mint, c.maxt)
			if err != nil {
				return st, err
			}
			metas = append(metas, m)
			st.NumChunks++
			st.NumSamples += uint64(c.samples)
		}
		if err := iw.AddSeries(ref, lset, metas...); err != nil {
			return st, fmt.Errorf("write index: %w", err)
		}
		ref++
		st.NumSeries++
	}
	st.NumFloatSamples = st.NumSamples
	return st, nil
}

// spillCopier copies chunks from a spill file into a block. Its buffer,
// chunk and meta are reused from one chunk to the next: a block of 4 M
// rollup series copies 4 M chunks.
type spillCopier struct {
	spill *os.File
	buf   []byte
	chk   *chunkenc.XORChunk
	one   []chunks.Meta
}

func newSpillCopier(spill *os.File) *spillCopier {
	return &spillCopier{spill: spill, chk: chunkenc.NewXORChunk(), one: make([]chunks.Meta, 1)}
}

// copy writes the XOR chunk of size bytes at off in the spill file, with
// samples from mint to maxt, to cw and returns its meta (no chunk data).
func (c *spillCopier) copy(cw *chunks.Writer, off int64, size int, mint, maxt int64) (chunks.Meta, error) {
	c.buf = slices.Grow(c.buf[:0], size)[:size]
	if _, err := c.spill.ReadAt(c.buf, off); err != nil {
		return chunks.Meta{}, fmt.Errorf("rollup block: read %s: %w", spillFileName, err)
	}
	c.chk.Reset(c.buf)
	c.one[0] = chunks.Meta{Chunk: c.chk, MinTime: mint, MaxTime: maxt}
	if err := cw.WriteChunks(c.one...); err != nil { // copies the bytes
		return chunks.Meta{}, fmt.Errorf("write chunks: %w", err)
	}
	return chunks.Meta{Ref: c.one[0].Ref, MinTime: mint, MaxTime: maxt}, nil
}

// writeBlockMeta writes a block's meta.json as the TSDB does: through a
// temporary file, synced, then renamed.
func writeBlockMeta(dir string, meta *tsdb.BlockMeta) error {
	data, err := json.MarshalIndent(meta, "", "\t")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "meta.json")
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return fmt.Errorf("write block meta: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fileutil.Replace(path+".tmp", path)
	}
	if err != nil {
		_ = os.Remove(path + ".tmp")
		return fmt.Errorf("write block meta: %w", err)
	}
	return nil
}
