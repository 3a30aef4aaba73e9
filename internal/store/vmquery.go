package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	vmstorage "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// vmMaxSeries bounds the series one Select of the VM raw tier may return.
const vmMaxSeries = 50_000_000

// Querier returns a querier of the tier's samples in [mint, maxt].
func (r *vmRaw) Querier(mint, maxt int64) (storage.Querier, error) {
	if err := r.searchable(); err != nil {
		return nil, err
	}
	return &vmQuerier{r: r, mint: mint, maxt: maxt}, nil
}

// searchable makes every committed sample searchable. A commit stages its
// samples before it sets dirty, so taking dirty first and the stage after,
// under flushMu (which also holds a concurrent query until the engine's
// flush is done), leaves no committed sample outside the engine's search.
func (r *vmRaw) searchable() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	dirty := r.dirty.Swap(false)
	if err := r.flushStageLocked(); err != nil {
		r.dirty.Store(dirty || r.dirty.Load())
		return err
	}
	if dirty {
		r.st.DebugFlush()
	}
	return nil
}

// ChunkQuerier returns a chunk querier of the tier's samples in [mint,
// maxt]: its series are the Querier's, encoded into chunks as they are read.
func (r *vmRaw) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	if err := r.searchable(); err != nil {
		return nil, err
	}
	return vmChunkQuerier{q: &vmQuerier{r: r, mint: mint, maxt: maxt}}, nil
}

type vmQuerier struct {
	r          *vmRaw
	mint, maxt int64

	mu       sync.Mutex
	searches []*vmstorage.Search // open until Close: their block refs read the parts
}

// timeRange clips [mint, maxt] to what the tier can hold, as the engine's
// index works in days from the epoch.
func (q *vmQuerier) timeRange() (vmstorage.TimeRange, bool) {
	r := q.r
	r.mu.RLock()
	minT, maxT := r.minT, r.maxT
	r.mu.RUnlock()
	mint := max(q.mint, minT, 0)
	maxt := min(q.maxt, max(maxT, r.now().UnixMilli())+24*time.Hour.Milliseconds())
	return vmstorage.TimeRange{MinTimestamp: mint, MaxTimestamp: maxt}, mint <= maxt && minT != math.MaxInt64
}

func deadlineOf(ctx context.Context) uint64 {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(time.Hour)
	}
	return uint64(d.Unix())
}

// vmTagFilters converts Prometheus matchers to the engine's filters.
func vmTagFilters(ms []*labels.Matcher) (*vmstorage.TagFilters, error) {
	tfs := vmstorage.NewTagFilters()
	for _, m := range ms {
		key := []byte(m.Name)
		if m.Name == labels.MetricName {
			key = nil
		}
		var neg, re bool
		switch m.Type {
		case labels.MatchEqual:
		case labels.MatchNotEqual:
			neg = true
		case labels.MatchRegexp:
			re = true
		case labels.MatchNotRegexp:
			neg, re = true, true
		default:
			return nil, fmt.Errorf("matcher %s: unknown type", m)
		}
		if err := tfs.Add(key, []byte(m.Value), neg, re); err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m, err)
		}
	}
	return tfs, nil
}

func (q *vmQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	tr, ok := q.timeRange()
	if !ok {
		return storage.EmptySeriesSet()
	}
	tfs, err := vmTagFilters(ms)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	tfss := []*vmstorage.TagFilters{tfs}
	// With hints.Func "series" only labels are wanted: the block refs
	// are not kept.
	labelsOnly := hints != nil && hints.Func == "series"
	sr := &vmstorage.Search{}
	sr.Init(nil, q.r.st, tfss, tr, vmMaxSeries, deadlineOf(ctx))
	if labelsOnly {
		defer sr.MustClose()
	} else {
		q.mu.Lock()
		q.searches = append(q.searches, sr)
		q.mu.Unlock()
	}
	byName := map[string]*vmSeriesEntry{}
	set := &vmSeriesSet{}
	for sr.NextMetricBlock() {
		mbr := &sr.MetricBlockRef
		e := byName[string(mbr.MetricName)]
		if e == nil {
			var mn vmstorage.MetricName
			if err := mn.Unmarshal(mbr.MetricName); err != nil {
				return storage.ErrSeriesSet(err)
			}
			e = &vmSeriesEntry{ls: vmMetricNameLabels(&mn), tr: tr}
			byName[string(mbr.MetricName)] = e
			set.series = append(set.series, e)
		}
		if !labelsOnly {
			e.blocks = append(e.blocks, *mbr.BlockRef)
		}
	}
	if err := sr.Error(); err != nil {
		return storage.ErrSeriesSet(err)
	}
	set.sort()
	return set
}

// errSeriesSplit: a search gave one series' blocks in two places (the
// engine holds the series under two ids, as it may after its index
// rotates), so a reader that takes series one at a time would see it twice.
var errSeriesSplit = errors.New("raw tier: a series' blocks came in two parts")

// eachSeries calls fn with every series matching ms in [mint, maxt] (within
// the querier's range), one at a time in the engine's order (by its series
// ids, not by labels), from a single search: the rollup pass's way to read
// every machine's hour. A series passed to fn is valid until fn returns.
// It returns fn's first error, or errSeriesSplit when a series' blocks do
// not come together (fn has seen part of it).
func (q *vmQuerier) eachSeries(ctx context.Context, mint, maxt int64, fn func(storage.Series) error, ms ...*labels.Matcher) error {
	tr, ok := q.timeRange()
	if !ok {
		return nil
	}
	tr.MinTimestamp, tr.MaxTimestamp = max(tr.MinTimestamp, mint), min(tr.MaxTimestamp, maxt)
	if tr.MinTimestamp > tr.MaxTimestamp {
		return nil
	}
	tfs, err := vmTagFilters(ms)
	if err != nil {
		return err
	}
	sr := &vmstorage.Search{}
	sr.Init(nil, q.r.st, []*vmstorage.TagFilters{tfs}, tr, vmMaxSeries, deadlineOf(ctx))
	defer sr.MustClose()
	var (
		cur  = &vmSeriesEntry{tr: tr}
		name []byte
		mn   vmstorage.MetricName
		seen = map[uint64]struct{}{} // hashes of the names handed out
		n    int
	)
	emit := func() error {
		if len(cur.blocks) == 0 {
			return nil
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return fn(cur)
	}
	for sr.NextMetricBlock() {
		mbr := &sr.MetricBlockRef
		if !bytes.Equal(mbr.MetricName, name) {
			if err := emit(); err != nil {
				return err
			}
			h := xxhash.Sum64(mbr.MetricName)
			if _, dup := seen[h]; dup {
				return errSeriesSplit
			}
			seen[h] = struct{}{}
			name = append(name[:0], mbr.MetricName...)
			if err := mn.Unmarshal(name); err != nil {
				return err
			}
			cur.ls, cur.blocks = vmMetricNameLabels(&mn), cur.blocks[:0]
		}
		cur.blocks = append(cur.blocks, *mbr.BlockRef)
	}
	if err := sr.Error(); err != nil {
		return err
	}
	return emit()
}

func (q *vmQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	tfss, tr, limit, ok, err := q.labelSearch(hints, ms)
	if !ok || err != nil {
		return nil, nil, err
	}
	vs, err := q.r.st.SearchLabelValues(nil, name, tfss, tr, limit, vmMaxSeries, deadlineOf(ctx))
	if err != nil {
		return nil, nil, err
	}
	vs = slices.DeleteFunc(vs, func(v string) bool { return v == "" })
	sort.Strings(vs)
	return vs, nil, nil
}

func (q *vmQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	tfss, tr, limit, ok, err := q.labelSearch(hints, ms)
	if !ok || err != nil {
		return nil, nil, err
	}
	ns, err := q.r.st.SearchLabelNames(nil, tfss, tr, limit, vmMaxSeries, deadlineOf(ctx))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(ns)
	return ns, nil, nil
}

// labelSearch returns what a label name or value search needs: the
// filters of ms, the time range and the limit; ok is false when the tier
// holds nothing in the querier's range.
func (q *vmQuerier) labelSearch(hints *storage.LabelHints, ms []*labels.Matcher) (tfss []*vmstorage.TagFilters, tr vmstorage.TimeRange, limit int, ok bool, err error) {
	if tr, ok = q.timeRange(); !ok {
		return nil, tr, 0, false, nil
	}
	limit = math.MaxInt32
	if hints != nil && hints.Limit > 0 {
		limit = hints.Limit
	}
	tfss, err = q.filters(ms)
	return tfss, tr, limit, true, err
}

func (q *vmQuerier) filters(ms []*labels.Matcher) ([]*vmstorage.TagFilters, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	tfs, err := vmTagFilters(ms)
	if err != nil {
		return nil, err
	}
	return []*vmstorage.TagFilters{tfs}, nil
}

func (q *vmQuerier) Close() error {
	q.releaseSearches()
	return nil
}

// releaseSearches closes the searches of the Selects so far; the series
// they returned must not be read any more. The querier stays usable.
func (q *vmQuerier) releaseSearches() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sr := range q.searches {
		sr.MustClose()
	}
	q.searches = nil
}

type vmChunkQuerier struct{ q *vmQuerier }

func (c vmChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(c.q.Select(ctx, sortSeries, hints, ms...))
}

func (c vmChunkQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return c.q.LabelValues(ctx, name, hints, ms...)
}

func (c vmChunkQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return c.q.LabelNames(ctx, hints, ms...)
}

func (c vmChunkQuerier) Close() error { return c.q.Close() }

// vmSeriesSet is the series of one Select, sorted by labels.
type vmSeriesSet struct {
	series []*vmSeriesEntry
	i      int
}

func (s *vmSeriesSet) sort() {
	sort.Slice(s.series, func(i, j int) bool { return labels.Compare(s.series[i].ls, s.series[j].ls) < 0 })
	s.i = -1
}

func (s *vmSeriesSet) Next() bool {
	s.i++
	return s.i < len(s.series)
}

func (s *vmSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *vmSeriesSet) Err() error                        { return nil }
func (s *vmSeriesSet) Warnings() annotations.Annotations { return nil }

// vmSeriesEntry is one series: its labels and the refs of its blocks,
// read when an iterator is asked for.
type vmSeriesEntry struct {
	ls     labels.Labels
	tr     vmstorage.TimeRange
	blocks []vmstorage.BlockRef
}

func (e *vmSeriesEntry) Labels() labels.Labels { return e.ls }

func (e *vmSeriesEntry) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	vi, ok := it.(*vmIterator)
	if !ok {
		vi = &vmIterator{}
	}
	vi.ts, vi.vs, vi.err = vi.ts[:0], vi.vs[:0], nil
	b := &vi.block
	for k := range e.blocks {
		if err := readVMBlock(&e.blocks[k], b); err != nil {
			vi.err = err
			break
		}
		vi.ts, vi.vs = b.AppendRowsWithTimeRangeFilter(vi.ts, vi.vs, e.tr)
	}
	vi.normalize()
	vi.samples = vi.samples[:0]
	for k, t := range vi.ts {
		vi.samples = append(vi.samples, vmSample{t: t, v: vi.vs[k]})
	}
	if vi.list == nil {
		vi.list = storage.NewListSeriesIterator(vmSamples(vi.samples))
	} else {
		vi.list.(interface{ Reset(storage.Samples) }).Reset(vmSamples(vi.samples))
	}
	vi.Iterator = vi.list
	if vi.err != nil {
		vi.Iterator = chunkenc.NewNopIterator()
	}
	return vi
}

func readVMBlock(br *vmstorage.BlockRef, b *vmstorage.Block) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read raw tier block: %v", p)
		}
	}()
	br.MustReadBlock(b)
	return b.UnmarshalData()
}

// vmIterator iterates over one series' samples, read in full when the
// iterator is made: Prometheus' list iterator over them, plus the error
// of a block that could not be read.
type vmIterator struct {
	chunkenc.Iterator
	list    chunkenc.Iterator
	ts      []int64
	vs      []float64
	samples []vmSample
	err     error
	// block is the engine's block being read, its buffers reused by the
	// iterator's next series (a rollup pass reads every series once).
	block vmstorage.Block
}

func (it *vmIterator) Err() error { return it.err }

// normalize sorts the samples by time (blocks of different parts may
// overlap) and keeps the last of samples with equal timestamps (the
// engine de-duplicates in its merges, not in searches).
func (it *vmIterator) normalize() {
	sorted := true
	for k := 1; k < len(it.ts); k++ {
		if it.ts[k] <= it.ts[k-1] {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	idx := make([]int, len(it.ts))
	for k := range idx {
		idx[k] = k
	}
	sort.SliceStable(idx, func(a, b int) bool { return it.ts[idx[a]] < it.ts[idx[b]] })
	ts := make([]int64, 0, len(idx))
	vs := make([]float64, 0, len(idx))
	for _, k := range idx {
		if n := len(ts); n > 0 && ts[n-1] == it.ts[k] {
			vs[n-1] = it.vs[k]
			continue
		}
		ts = append(ts, it.ts[k])
		vs = append(vs, it.vs[k])
	}
	it.ts, it.vs = ts, vs
}

// vmSample is one float sample; vmSamples hands out pointers to them, so
// that the list iterator reads them without allocating.
type vmSample struct {
	t int64
	v float64
}

func (s *vmSample) T() int64                      { return s.t }
func (s *vmSample) ST() int64                     { return 0 }
func (s *vmSample) F() float64                    { return s.v }
func (s *vmSample) H() *histogram.Histogram       { return nil }
func (s *vmSample) FH() *histogram.FloatHistogram { return nil }
func (s *vmSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s *vmSample) Copy() chunks.Sample           { c := *s; return &c }

type vmSamples []vmSample

func (s vmSamples) Get(i int) chunks.Sample { return &s[i] }
func (s vmSamples) Len() int                { return len(s) }

var (
	_ storage.Querier      = (*vmQuerier)(nil)
	_ storage.ChunkQuerier = vmChunkQuerier{}
)
