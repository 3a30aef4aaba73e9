package store

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// A TSDB compaction of blocks runs back to back on one goroutine. On a
// 2-core hub taking 1 M samples/s, ingest needs most of a core and the
// simulated agents the rest of the second, so the 1m tier's merge of an
// hourly pass's ~80 blocks (4 M rollup series) took the core ingest
// needed, and with its allocations kept the collector marking the raw
// head: for 85 s the writers fell behind and the live view with them, up
// to 18.8 s (docs/benchmarks.md, "An hour and a quarter at 1 M
// samples/s"). The store therefore merges blocks at the rollup pass's
// duty (Options.RollupDuty): every 10 ms of work (pacer.tick, counted in
// series written), the compaction rests for (1/duty - 1) times the time it
// worked since its last rest. The merge's output and the TSDB's own bookkeeping are
// unchanged: the rest happens between two series of the populate loop.
// Writing the raw head out (LeveledCompactor.Write) takes no populator: the
// head range it reads (pacedHead) rests instead, between two series the
// populator reads from it.

// pacedPopulator is the TSDB's block populator with rests between series.
type pacedPopulator struct {
	tsdb.DefaultBlockPopulator
	duty  float64
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time // nil: time.Now; tests inject
}

func (p pacedPopulator) PopulateBlock(ctx context.Context, metrics *tsdb.CompactorMetrics, logger *slog.Logger, pool chunkenc.Pool,
	merge storage.VerticalChunkSeriesMergeFunc, blocks []tsdb.BlockReader, meta *tsdb.BlockMeta,
	indexw tsdb.IndexWriter, chunkw tsdb.ChunkWriter, postings tsdb.IndexReaderPostingsFunc) error {
	if p.duty >= 1 {
		return p.DefaultBlockPopulator.PopulateBlock(ctx, metrics, logger, pool, merge, blocks, meta, indexw, chunkw, postings)
	}
	w := &pacedIndexWriter{IndexWriter: indexw, restStep: newRestStep(ctx, p.duty, p.sleep, p.now)}
	return p.DefaultBlockPopulator.PopulateBlock(ctx, metrics, logger, pool, merge, blocks, meta, w, chunkw, postings)
}

// restStep paces a compaction's loop over series: step rests every slice
// of work (pacer.tick) and yields the processor about every millisecond
// (yielder). A rest ended by the context (the tier closing, compactions
// turned off) returns its error, which ends the compaction; the TSDB
// removes its unfinished block.
type restStep struct {
	ctx   context.Context
	pace  pacer
	yield yielder
}

// newRestStep paces at duty; sleep nil is sleepCtx, now nil is time.Now
// (tests inject both).
func newRestStep(ctx context.Context, duty float64, sleep func(context.Context, time.Duration) error, now func() time.Time) restStep {
	r := restStep{ctx: ctx, pace: newPacer(duty, sleep)}
	if now != nil {
		r.pace.now, r.pace.since = now, now()
	}
	return r
}

func (r *restStep) step() error {
	r.yield.maybe()
	return r.pace.tick(r.ctx)
}

// pacedIndexWriter rests (restStep) once per series it adds.
type pacedIndexWriter struct {
	tsdb.IndexWriter
	restStep
}

func (w *pacedIndexWriter) AddSeries(ref storage.SeriesRef, l labels.Labels, chks ...chunks.Meta) error {
	if err := w.IndexWriter.AddSeries(ref, l, chks...); err != nil {
		return err
	}
	return w.step()
}

// pacedHead is a raw head range whose index reader rests every slice of
// work (pacer.tick, once per series read or compared in its sort) and yields the processor about
// every millisecond: the TSDB writes a head's block with its own populator,
// which reads each series' labels and chunk references from it, then its
// chunks. At 1 M series an hour's block took the writers' core for minutes
// (docs/benchmarks.md, "Steady hours, both passes, and the raw head's
// compaction at 1 M series").
type pacedHead struct {
	*tsdb.RangeHead
	ctx   context.Context
	duty  float64
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time // nil: time.Now; tests inject
}

func (h pacedHead) Index() (tsdb.IndexReader, error) {
	ir, err := h.RangeHead.Index()
	if err != nil {
		return nil, err
	}
	return &pacedIndexReader{IndexReader: ir, restStep: newRestStep(h.ctx, h.duty, h.sleep, h.now)}, nil
}

// pacedIndexReader rests (restStep) before each series it reads and while
// it sorts the head's series; the head stays as it was when a rest ends the
// write.
type pacedIndexReader struct {
	tsdb.IndexReader
	restStep
}

func (r *pacedIndexReader) Series(ref storage.SeriesRef, b *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	if err := r.step(); err != nil {
		return err
	}
	return r.IndexReader.Series(ref, b, chks)
}

// SortedPostings returns p's series in label order, as the head's own does
// (the order a block's index wants), resting (restStep) for each series it
// reads and each comparison it makes. The head's own sorts every series of
// the hour in one go before the first is written: at 2 M series it took a
// core for 3 s, and a whole hub's live view fell that far behind
// (docs/benchmarks.md, "The raw tier's compactions, run by the store").
// The labels are the head's own (shared, not copied).
func (r *pacedIndexReader) SortedPostings(p index.Postings) index.Postings {
	type series struct {
		ref storage.SeriesRef
		ls  labels.Labels
	}
	var (
		all []series
		b   labels.ScratchBuilder
	)
	for p.Next() {
		if err := r.step(); err != nil {
			return index.ErrPostings(err)
		}
		switch err := r.IndexReader.Series(p.At(), &b, nil); {
		case errors.Is(err, storage.ErrNotFound):
			// Gone since the postings were read, as the head's own skips.
		case err != nil:
			return index.ErrPostings(err)
		default:
			all = append(all, series{p.At(), b.Labels()})
		}
	}
	if err := p.Err(); err != nil {
		return index.ErrPostings(err)
	}
	var restErr error
	slices.SortFunc(all, func(a, b series) int {
		if restErr == nil {
			restErr = r.step()
		}
		return labels.Compare(a.ls, b.ls)
	})
	if restErr != nil {
		return index.ErrPostings(restErr)
	}
	refs := make([]storage.SeriesRef, len(all))
	for i, s := range all {
		refs[i] = s.ref
	}
	return index.NewListPostings(refs)
}
