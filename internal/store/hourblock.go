package store

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// An hour rolled up from the minutes kept is written as ONE block of the
// 1m tier, not as a block per group of 50,000 rollup series (blockBatch).
// The groups' blocks all cover the same hour, so the TSDB merged them into
// one afterwards: at 1 M raw series, 77 blocks of 4 M rollup series, 16
// minutes paced while the ingest writers fell to 6 commits/s and the live
// view 44-68 s behind (docs/benchmarks.md, "Minutes kept as samples
// arrive"). A block batch must hold each series' labels until it sorts
// them (~200 B per rollup series: 800 MB for the hour of 1 M raw series);
// the hour's block needs no labels of its own, since the raw head holds
// them all and sorts its series itself:
//
//  1. The minutes of each raw series, in order of its head id, are
//     appended (through the tier's scaled appender, as into a batch) into
//     four open chunks, one per rollup kind; when the series ends, the
//     chunks go to the spill file and the series keeps 48 bytes: its id,
//     where its chunks are, their times.
//  2. The raw head sorts the ids by their labels (SortedPostings). A
//     rollup series' labels are its raw series' plus __rollup__, which
//     sorts after __name__ and before any ordinary label name: the block's
//     order is, for each run of raw series that agree on their labels
//     before __rollup__ (most often __name__), the run's series once per
//     kind, in the kinds' order. Each chunk is read back from the spill
//     file and written to the block in that order, as the index requires.
//
// A label set that would not sort this way (a label name between __name__
// and __rollup__) ends the write with errMinutesLost: the hour is read back
// from the raw tier, as a lost minute sends it.

// hourSegmentSize is the size of the hour block's chunk files: the chunk
// writer preallocates each whole, and the block of 1 M raw series holds
// ~2 GB of chunks.
const hourSegmentSize = 128 << 20

// hourSeries is one raw series of an hour block: its four rollup chunks
// are size[0..3] bytes from off in the spill file, in rollupKinds' order;
// all four hold samples samples from mint to maxt.
type hourSeries struct {
	id         uint64
	off        int64
	mint, maxt int64
	size       [len(rollupKinds)]uint16
	samples    uint16
}

// hourBlock is the appender an hour's minutes are rolled into (one raw
// series at a time: begin, rollupMinutes, end) and the writer of the block.
type hourBlock struct {
	blockAppends
	hour  int64
	dir   string
	spill *os.File
	w     *bufio.Writer
	off   int64
	err   error // a failed spill write: the block is spent

	series []hourSeries // ascending ids
	cur    uint64
	active bool
	open   [len(rollupKinds)]openChunk
}

func (s *Store) newHourBlock(hour int64) (*hourBlock, error) {
	dir, f, err := s.newSpill("hour-")
	if err != nil {
		return nil, err
	}
	hb := &hourBlock{hour: hour, dir: dir, spill: f, w: bufio.NewWriterSize(f, 256<<10)}
	for k := range hb.open {
		hb.open[k].c = chunkenc.NewXORChunk()
	}
	return hb, nil
}

func (hb *hourBlock) close() {
	_ = hb.spill.Close()
	_ = os.RemoveAll(hb.dir)
}

// begin starts the series of raw head id; ids come in ascending order.
func (hb *hourBlock) begin(id uint64) error {
	if n := len(hb.series); hb.active || (n > 0 && id <= hb.series[n-1].id) {
		return fmt.Errorf("%w: hour block: series %d out of order", errMinutesLost, id)
	}
	hb.cur, hb.active = id, true
	for k := range hb.open {
		o := &hb.open[k]
		o.reset()
		app, err := o.c.Appender()
		if err != nil {
			return fmt.Errorf("hour block: %w", err)
		}
		o.app = app
	}
	return nil
}

// end spills the series' chunks. A series with no samples is left out;
// the four kinds must hold the same samples' times (rollupMinutes appends
// every minute to all four).
func (hb *hourBlock) end() error {
	hb.active = false
	first := &hb.open[0]
	if first.samples == 0 {
		for _, o := range hb.open {
			if o.samples != 0 {
				return fmt.Errorf("%w: hour block: series %d has %s samples only", errMinutesLost, hb.cur, rollupKinds[0])
			}
		}
		return nil
	}
	e := hourSeries{id: hb.cur, off: hb.off, mint: first.mint, maxt: first.maxt, samples: uint16(first.samples)}
	for k := range hb.open {
		o := &hb.open[k]
		if o.samples != first.samples || o.mint != first.mint || o.maxt != first.maxt {
			return fmt.Errorf("%w: hour block: series %d has kinds of different samples", errMinutesLost, hb.cur)
		}
		data := o.c.Bytes()
		if hb.err == nil {
			if _, err := hb.w.Write(data); err != nil {
				hb.err = fmt.Errorf("rollup hour block: write %s: %w", spillFileName, err)
			}
		}
		e.size[k] = uint16(len(data))
		hb.off += int64(len(data))
	}
	hb.series = append(hb.series, e)
	return hb.err
}

// Append adds a sample of the current series' rollup kind ref (1 + its
// index in rollupKinds), or of the kind lset names when ref is 0.
func (hb *hourBlock) Append(ref storage.SeriesRef, lset labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if hb.err != nil {
		return 0, hb.err
	}
	if !hb.active {
		return 0, errors.New("hour block: append outside a series")
	}
	k := int(ref) - 1
	if ref == 0 {
		k = slices.Index(rollupKinds[:], lset.Get(rollupLabel))
	}
	if k < 0 || k >= len(hb.open) {
		return 0, fmt.Errorf("hour block: not a rollup series: %s", lset)
	}
	o := &hb.open[k]
	switch {
	case o.samples > 0 && t <= o.maxt:
		// Not storage.ErrOutOfOrderSample, which a bucketWriter would
		// count and pass over: every minute must be kept.
		return 0, fmt.Errorf("%w: hour block: series %d has sample %d after %d", errMinutesLost, hb.cur, t, o.maxt)
	case o.samples >= batchChunkSamples:
		return 0, fmt.Errorf("%w: hour block: series %d has over %d minutes", errMinutesLost, hb.cur, batchChunkSamples)
	case t < hb.hour || t >= hb.hour+hourMs:
		return 0, fmt.Errorf("%w: hour block: series %d has sample %d outside its hour", errMinutesLost, hb.cur, t)
	}
	if o.samples == 0 {
		o.mint = t
	}
	o.app.Append(0, t, v)
	o.samples++
	o.maxt = t
	return storage.SeriesRef(k + 1), nil
}

// Commit and Rollback do nothing: the block is written whole or not at
// all (the pass discards it on error).
func (hb *hourBlock) Commit() error   { return hb.err }
func (hb *hourBlock) Rollback() error { return nil }

func (hb *hourBlock) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errors.New("hour block: no start-time samples")
}

// write writes the block of the series appended into dir (the staging
// directory) and returns its ULID ("" when it holds no series). ir is the
// raw head's index: the series' labels and their order. pace is called
// for every series read and written (the pass's pacer.tick).
func (hb *hourBlock) write(ctx context.Context, dir string, logger *slog.Logger, ir tsdb.IndexReader, pace func() error) (string, error) {
	if hb.err == nil {
		if err := hb.w.Flush(); err != nil {
			hb.err = fmt.Errorf("rollup hour block: write %s: %w", spillFileName, err)
		}
	}
	if hb.err != nil {
		return "", hb.err
	}
	if len(hb.series) == 0 {
		return "", nil
	}
	ids := make([]storage.SeriesRef, len(hb.series))
	for i, e := range hb.series {
		ids[i] = storage.SeriesRef(e.id)
	}
	sorted, err := index.ExpandPostings(ir.SortedPostings(index.NewListPostings(ids)))
	if err != nil {
		return "", fmt.Errorf("%w: sort series: %v", errMinutesLost, err)
	}
	if len(sorted) != len(ids) {
		return "", fmt.Errorf("%w: %d of the hour's series are gone from the raw head", errMinutesLost, len(ids)-len(sorted))
	}
	ids = nil
	kinds := slices.Clone(rollupKinds[:]) // in the order of their label values
	slices.Sort(kinds)
	syms, err := hourSymbols(ir, kinds)
	if err != nil {
		return "", err
	}
	return writeBlockDir(ctx, dir, logger, hb.hour, hb.hour+hourMs, hourSegmentSize, func(cw *chunks.Writer, iw *index.Writer) (tsdb.BlockStats, error) {
		for _, sym := range syms {
			if err := iw.AddSymbol(sym); err != nil {
				return tsdb.BlockStats{}, fmt.Errorf("write symbols: %w", err)
			}
		}
		syms = nil
		return hb.populate(ctx, cw, iw, ir, sorted, kinds, pace)
	})
}

// hourSymbols returns the raw head's symbols and the rollup label's, sorted.
// The head's are a superset of what the block's series use.
func hourSymbols(ir tsdb.IndexReader, kinds []string) ([]string, error) {
	extra := append([]string{rollupLabel}, kinds...)
	slices.Sort(extra)
	var syms []string
	it := ir.Symbols()
	for it.Next() {
		s := it.At()
		for len(extra) > 0 && extra[0] <= s {
			if extra[0] < s {
				syms = append(syms, extra[0])
			}
			extra = extra[1:]
		}
		syms = append(syms, s)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("raw head symbols: %w", err)
	}
	return append(syms, extra...), nil
}

// populate writes the series in sorted (the raw ids in label order) as the
// block's rollup series, run by run of raw series that agree on their
// labels before __rollup__, and each run once per kind. At 1 M raw series
// it writes 4 M rollup series: a raw series' labels are read from the head
// and its entry found once for its four. A rollup series' labels are built
// in a reused buffer (the sort check compares two in turn) but handed to
// the index writer as a copy: it keeps the first string it sees of each
// label name (index.Writer.labelNames) until it writes the postings, and a
// buffer the next series overwrites changed those strings under it (the
// block write failed, or wrote postings under names that were not the
// series'; TestMinutesHourOfManyLabelShapes).
func (hb *hourBlock) populate(ctx context.Context, cw *chunks.Writer, iw *index.Writer, ir tsdb.IndexReader, sorted []storage.SeriesRef, kinds []string, pace func() error) (tsdb.BlockStats, error) {
	var (
		st          tsdb.BlockStats
		sb          labels.ScratchBuilder
		ls          labels.Labels // the raw series' (the head's)
		out         [2]labels.ScratchBuilder
		lsets       [2]labels.Labels // the rollup series' and the one before, taking turns
		turn        int
		runKey, key []byte
		yield       yielder
		cp          = newSpillCopier(hb.spill)
		ref         storage.SeriesRef
	)
	read := func(id storage.SeriesRef) error {
		if err := ir.Series(id, &sb, nil); err != nil {
			return fmt.Errorf("%w: series %d: %v", errMinutesLost, id, err)
		}
		ls = sb.Labels() // the head's own (Assign): no copy
		return nil
	}
	step := func() error { // every series read and written
		yield.maybe()
		return pace()
	}
	kindOf := make([]int, len(kinds)) // index in rollupKinds of kinds[i]
	for i, k := range kinds {
		kindOf[i] = slices.Index(rollupKinds[:], k)
	}
	// A run's raw series: their labels (the head's own strings, not
	// copies) and entries, read once for the run's four kinds.
	var (
		runLabels []labels.Labels
		runAt     []int
	)
	for g := 0; g < len(sorted); {
		runLabels, runAt = runLabels[:0], runAt[:0]
		e := g
		for ; e < len(sorted); e++ {
			if err := step(); err != nil {
				return st, err
			}
			if err := read(sorted[e]); err != nil {
				return st, err
			}
			if key = headKey(key[:0], ls); e == g {
				runKey = append(runKey[:0], key...)
			} else if !bytes.Equal(key, runKey) {
				break
			}
			runLabels = append(runLabels, ls)
			runAt = append(runAt, hb.index(uint64(sorted[e])))
		}
		for i, kind := range kinds {
			k := kindOf[i]
			for j, raw := range runLabels {
				if err := step(); err != nil {
					return st, err
				}
				turn ^= 1
				lset := rollupLabels(&out[turn], &lsets[turn], raw, kind)
				if labels.Compare(lset, lsets[turn^1]) <= 0 {
					return st, fmt.Errorf("%w: rollup series %s does not sort after %s", errMinutesLost, lset, lsets[turn^1])
				}
				sr := &hb.series[runAt[j]]
				off := sr.off
				for _, sz := range sr.size[:k] {
					off += int64(sz)
				}
				m, err := cp.copy(cw, off, int(sr.size[k]), sr.mint, sr.maxt)
				if err != nil {
					return st, err
				}
				if err := iw.AddSeries(ref, lset.Copy(), m); err != nil {
					return st, fmt.Errorf("write index: %w", err)
				}
				ref++
				st.NumSeries++
				st.NumChunks++
				st.NumSamples += uint64(sr.samples)
			}
		}
		g = e
	}
	st.NumFloatSamples = st.NumSamples
	return st, nil
}

// headKey appends to dst the labels of ls that sort before __rollup__ (a
// rollup series' run), names and values each ended by 0xff.
func headKey(dst []byte, ls labels.Labels) []byte {
	ls.Range(func(l labels.Label) {
		if l.Name < rollupLabel {
			dst = append(append(append(append(dst, l.Name...), 0xff), l.Value...), 0xff)
		}
	})
	return dst
}

// rollupLabels writes into *into (reusing its memory, through b) the labels
// of raw series ls's rollup series of kind: ls with __rollup__=kind, which
// replaces a __rollup__ label of its own.
func rollupLabels(b *labels.ScratchBuilder, into *labels.Labels, ls labels.Labels, kind string) labels.Labels {
	b.Reset()
	added := false
	ls.Range(func(l labels.Label) {
		if l.Name == rollupLabel {
			return
		}
		if !added && l.Name > rollupLabel {
			b.Add(rollupLabel, kind)
			added = true
		}
		b.Add(l.Name, l.Value)
	})
	if !added {
		b.Add(rollupLabel, kind)
	}
	b.Overwrite(into)
	return *into
}

// index returns the index in hb.series of id, which was appended.
func (hb *hourBlock) index(id uint64) int {
	i, _ := slices.BinarySearchFunc(hb.series, id, func(e hourSeries, id uint64) int { return cmp.Compare(e.id, id) })
	return i
}
