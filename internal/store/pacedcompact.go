package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// A TSDB compaction of blocks runs back to back on one goroutine. On a
// 2-core hub taking 1 M samples/s, ingest needs most of a core and the
// simulated agents the rest of the second, so the 1m tier's merge of an
// hourly pass's ~80 blocks (4 M rollup series) took the core ingest
// needed, and with its allocations kept the collector marking the raw
// head: for 85 s the writers fell behind and the live view with them, up
// to 18.8 s (docs/benchmarks.md, "An hour and a quarter at 1 M
// samples/s"). The store therefore merges blocks at the rollup pass's
// duty (Options.RollupDuty): every compactRestEvery series written, the
// compaction rests for (1/duty - 1) times the time it worked since its
// last rest (pacer). The merge's output and the TSDB's own bookkeeping are
// unchanged: the rest happens between two series of the populate loop.
// Writing the raw head out (LeveledCompactor.Write) is not paced: the TSDB
// populates a head's block with its own populator only.

// compactRestEvery is how many series a paced compaction writes between
// rests: ~0.1–0.3 s of work at 1 M series, so that a rest is never long
// and the compaction's share of the CPU is even.
var compactRestEvery = 10_000

// pacedPopulator is the TSDB's block populator with rests between series.
type pacedPopulator struct {
	tsdb.DefaultBlockPopulator
	duty  float64
	sleep func(ctx context.Context, d time.Duration) error
}

func (p pacedPopulator) PopulateBlock(ctx context.Context, metrics *tsdb.CompactorMetrics, logger *slog.Logger, pool chunkenc.Pool,
	merge storage.VerticalChunkSeriesMergeFunc, blocks []tsdb.BlockReader, meta *tsdb.BlockMeta,
	indexw tsdb.IndexWriter, chunkw tsdb.ChunkWriter, postings tsdb.IndexReaderPostingsFunc) error {
	if p.duty >= 1 {
		return p.DefaultBlockPopulator.PopulateBlock(ctx, metrics, logger, pool, merge, blocks, meta, indexw, chunkw, postings)
	}
	w := &pacedIndexWriter{IndexWriter: indexw, ctx: ctx, pace: newPacer(p.duty, p.sleep)}
	return p.DefaultBlockPopulator.PopulateBlock(ctx, metrics, logger, pool, merge, blocks, meta, w, chunkw, postings)
}

// pacedIndexWriter rests after every compactRestEvery series it adds, and
// yields the processor about every millisecond (yielder).
type pacedIndexWriter struct {
	tsdb.IndexWriter
	ctx   context.Context
	pace  pacer
	yield yielder
	n     int
}

func (w *pacedIndexWriter) AddSeries(ref storage.SeriesRef, l labels.Labels, chks ...chunks.Meta) error {
	if err := w.IndexWriter.AddSeries(ref, l, chks...); err != nil {
		return err
	}
	w.yield.maybe()
	if w.n++; w.n%compactRestEvery == 0 {
		// A rest ended by the context (the tier closing) ends the
		// compaction; the TSDB removes its unfinished block.
		return w.pace.rest(w.ctx)
	}
	return nil
}
