package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Values of the agent's own metric families (the catalogue) are stored as
// scaled integers: a percentage of 12.34 (2 decimals) is stored as 1234, a
// temperature of 45.125 °C (3 decimals) as 45125. The TSDB's XOR chunks store
// integer-valued floats in far fewer bits than decimal fractions
// (docs/benchmarks.md, "Bytes per stored sample"). Reading divides by the
// same power of ten; IEEE division returns the double nearest to the
// quotient, which is exactly the value the agent rounded to.
//
// The scale of a series is metric.Decimals of its name, for raw samples and
// the rollup tiers' min, max and sum; a rollup count and every name outside
// the catalogue (custom, pushed, remote-written) are stored as they are. A
// data directory written before this scaling holds unscaled values: samples
// older than its scaledSince keep scale none in every tier (rollups by their
// bucket time), so a replay of old timestamps after an upgrade stays
// consistent.
//
// Every read and write of a tier goes through a *Tier, whose Querier,
// ChunkQuerier and Appender apply the scale; nothing reads a *tsdb.DB
// directly.

// scale is the power of ten a series' values are multiplied by when stored,
// or noScale.
type scale int8

const noScale scale = -1

// maxScale is the largest scale the store supports; a catalogue family with
// more decimals fails TestCataloguePrecisionPinned.
const maxScale = 15

var pow10 = func() (p [maxScale + 1]float64) {
	for i := range p {
		p[i] = math.Pow10(i)
	}
	return p
}()

// scaleOfName returns the scale of a series named name: its catalogue
// family's decimals, or noScale outside the catalogue.
func scaleOfName(name string) scale {
	d, ok := metric.Decimals(name)
	if !ok || d < 0 || d > maxScale {
		return noScale
	}
	return scale(d)
}

// encode returns the stored form of v at scale d. A value with at most d
// decimals (the double nearest k/10^d, as the agent sends) is stored as the
// integer k, which decode gives back bit for bit. Any other value is stored
// as sent: it is not an integer (an integer has no decimals), which is how
// decode tells the two apart, so nothing pushed or remote-written under a
// catalogue name with more decimals loses any. Past 2^53 (no integer k is
// exact any more) v·10^d itself is stored, read back within an ulp. NaN
// (stale markers included) and ±Inf pass unchanged.
//
// With rollup set, v is a rollup tier's min, max or sum of such values:
// a sum carries the float noise of its additions (12.34 + 12.35 =
// 24.689999999999998), so a v·10^d within 1e-9 (relative) of an integer is
// taken as that integer, and the sum is stored exactly.
func encode(d scale, v float64, rollup bool) float64 {
	if d == noScale || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	x := v * pow10[d]
	if math.Abs(x) >= 1<<53 {
		return x
	}
	k := math.Round(x)
	if k/pow10[d] == v || rollup && math.Abs(x-k) <= 1e-9*max(1, math.Abs(x)) {
		return k
	}
	return v
}

// decode returns the value stored as v at scale d: an integer is a scaled
// value, anything else was stored as sent (encode). NaN (stale markers
// included) passes unchanged, with its payload.
func decode(d scale, v float64) float64 {
	if d == noScale || math.IsNaN(v) || v != math.Trunc(v) {
		return v
	}
	return v / pow10[d]
}

// Series refs returned by a Tier's appender carry the series' scale in
// their top byte (scale+1; 0 for noScale), so that an append with a ref
// needs no name lookup. The TSDB's own refs (head series ids, counted from
// 1) never reach those bits; Append returns an error if one does.
const (
	refScaleShift = 56
	refIDMask     = 1<<refScaleShift - 1
)

func packRef(r storage.SeriesRef, d scale) (storage.SeriesRef, error) {
	if r == 0 {
		return 0, nil
	}
	if r&^refIDMask != 0 {
		return 0, fmt.Errorf("tsdb series ref %#x uses the top byte that carries the scale", uint64(r))
	}
	return r | storage.SeriesRef(d+1)<<refScaleShift, nil
}

func refScale(r storage.SeriesRef) scale { return scale(r>>refScaleShift) - 1 }

// tierSource is a tier the store reads samples from: a *Tier, or the raw
// tier on another engine (*vmRaw).
type tierSource interface {
	Querier(mint, maxt int64) (storage.Querier, error)
	ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error)
	// StartTime is the oldest sample's time (ms), math.MaxInt64 when
	// empty.
	StartTime() (int64, error)
}

// rawTier is the raw tier's engine: a *Tier (EngineTSDB) or a *vmRaw
// (EngineVM).
type rawTier interface {
	tierSource
	Appender(ctx context.Context) storage.Appender
	// NumSeries is the number of series with recent samples.
	NumSeries() uint64
	// Compact writes out what the engine holds in memory, as far as it
	// does so on its own in time (tests and tools).
	Compact(ctx context.Context) error
	DisableCompactions()
	EnableCompactions()
	Dir() string
	Close() error
}

// NumSeries returns the series in the tier's head.
func (db *Tier) NumSeries() uint64 { return db.Head().NumSeries() }

// Tier is one TSDB tier of a Store: a *tsdb.DB whose Querier, ChunkQuerier
// and Appender store catalogue values scaled and read them back unscaled.
// Use these methods, never those of the embedded DB's blocks or head, to
// read or write samples.
type Tier struct {
	*tsdb.DB
	rollup bool // a rollup tier: series labelled __rollup__="count" are unscaled
	// since is the first timestamp (ms since epoch) stored scaled; older
	// samples were written before scaling. Set once in Open.
	since int64
	// gate runs the raw tier's compactions (nil for the rollup tiers,
	// which take no appends): rawcompact.go.
	gate *compactGate
}

// DisableCompactions turns the tier's automatic compactions off and waits
// for a running one.
func (db *Tier) DisableCompactions() {
	if db.gate != nil {
		db.gate.set(true)
		return
	}
	db.DB.DisableCompactions()
}

// EnableCompactions turns them back on (the raw tier's once its head has
// a chunk file of its own: rawcompact.go).
func (db *Tier) EnableCompactions() {
	if db.gate != nil {
		db.gate.set(false)
		return
	}
	db.DB.EnableCompactions()
}

// Compact writes out what the tier's head holds past 1.5 blocks and
// compacts its blocks: the raw tier's through its gate (rawcompact.go),
// whether its automatic compactions are on or not.
func (db *Tier) Compact(ctx context.Context) error {
	if db.gate != nil {
		return db.gate.compact(ctx, 0)
	}
	return db.DB.Compact(ctx)
}

// Close closes the tier's TSDB.
func (db *Tier) Close() error {
	if db.gate != nil {
		db.gate.close()
	}
	return db.DB.Close()
}

// seriesScale is the family scale of the series ls in this tier, ignoring
// time.
func (db *Tier) seriesScale(ls labels.Labels) scale {
	if db.rollup && ls.Get(rollupLabel) == "count" {
		return noScale
	}
	return scaleOfName(ls.Get(labels.MetricName))
}

// at returns d for a sample at t (ms), or noScale before the tier's since.
func (db *Tier) at(d scale, t int64) scale {
	if t < db.since {
		return noScale
	}
	return d
}

// Appender returns an appender that stores catalogue values scaled.
func (db *Tier) Appender(ctx context.Context) storage.Appender {
	return &scaledAppender{Appender: db.DB.Appender(ctx), db: db}
}

// Scaled wraps app, an appender whose samples end up in this tier (a
// rollup batch, blockwrite.go), so that it stores
// them as this tier's Appender would.
func (db *Tier) Scaled(app storage.Appender) storage.Appender {
	return &scaledAppender{Appender: app, db: db}
}

// Querier returns a querier whose series read back unscaled values.
func (db *Tier) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := db.DB.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scaledQuerier{Querier: q, db: db}, nil
}

// ChunkQuerier returns a chunk querier whose chunks' iterators read back
// unscaled values.
func (db *Tier) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := db.DB.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scaledChunkQuerier{ChunkQuerier: q, db: db}, nil
}

// scaledAppender encodes each sample at its series' scale and packs the
// scale into the refs it returns.
type scaledAppender struct {
	storage.Appender
	db *Tier
}

// Commit commits the samples; to the raw tier, never during its
// out-of-order compaction (rawcompact.go).
func (a *scaledAppender) Commit() error {
	g := a.db.gate
	if g == nil {
		return a.Appender.Commit()
	}
	g.commits.RLock()
	err := a.Appender.Commit()
	g.commits.RUnlock()
	g.committed()
	return err
}

// scaleOf returns the scale for ref (from its top byte) or, for ref 0, from
// ls.
func (a *scaledAppender) scaleOf(ref storage.SeriesRef, ls labels.Labels) scale {
	if ref != 0 {
		return refScale(ref)
	}
	return a.db.seriesScale(ls)
}

func (a *scaledAppender) Append(ref storage.SeriesRef, ls labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	d := a.scaleOf(ref, ls)
	r, err := a.Appender.Append(ref&refIDMask, ls, t, encode(a.db.at(d, t), v, a.db.rollup))
	return a.pack(r, d, err)
}

func (a *scaledAppender) pack(r storage.SeriesRef, d scale, err error) (storage.SeriesRef, error) {
	r, perr := packRef(r, d)
	if perr != nil {
		return 0, errors.Join(err, perr)
	}
	return r, err
}

func (a *scaledAppender) AppendExemplar(ref storage.SeriesRef, ls labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	d := a.scaleOf(ref, ls)
	e.Value = encode(a.db.at(d, e.Ts), e.Value, a.db.rollup)
	r, err := a.Appender.AppendExemplar(ref&refIDMask, ls, e)
	return a.pack(r, d, err)
}

// AppendHistogram is refused: the store keeps float samples only, and a
// histogram's buckets cannot be scaled.
func (a *scaledAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("append histogram: the store keeps float samples only")
}

// AppendHistogramSTZeroSample is refused, as AppendHistogram is.
func (a *scaledAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("append histogram: the store keeps float samples only")
}

func (a *scaledAppender) UpdateMetadata(ref storage.SeriesRef, ls labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	d := a.scaleOf(ref, ls)
	r, err := a.Appender.UpdateMetadata(ref&refIDMask, ls, m)
	return a.pack(r, d, err)
}

// AppendSTZeroSample appends a zero, which every scale stores as zero.
func (a *scaledAppender) AppendSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64) (storage.SeriesRef, error) {
	d := a.scaleOf(ref, ls)
	r, err := a.Appender.AppendSTZeroSample(ref&refIDMask, ls, t, st)
	return a.pack(r, d, err)
}

// scaledQuerier wraps each selected series so that its iterator decodes.
type scaledQuerier struct {
	storage.Querier
	db *Tier
}

func (q scaledQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &scaledSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, ms...), db: q.db}
}

type scaledSeriesSet struct {
	storage.SeriesSet
	db *Tier
}

func (s *scaledSeriesSet) At() storage.Series {
	ser := s.SeriesSet.At()
	d := s.db.seriesScale(ser.Labels())
	if d == noScale {
		return ser
	}
	return scaledSeries{Series: ser, d: d, since: s.db.since}
}

type scaledSeries struct {
	storage.Series
	d     scale
	since int64
}

func (s scaledSeries) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	return newScaledIterator(s.Series, reuse, s.d, s.since)
}

// newScaledIterator returns src's iterator decoding at scale d from since
// on, reusing reuse (a scaledIterator or another) where it can.
func newScaledIterator(src chunkenc.Iterable, reuse chunkenc.Iterator, d scale, since int64) chunkenc.Iterator {
	si, ok := reuse.(*scaledIterator)
	if ok {
		reuse = si.Iterator
	}
	if d == noScale {
		return src.Iterator(reuse)
	}
	if !ok {
		si = &scaledIterator{}
	}
	si.Iterator, si.d, si.since = src.Iterator(reuse), d, since
	return si
}

// scaledIterator decodes the float samples of an iterator over stored
// values: at scale d from since (ms) on, unscaled before.
type scaledIterator struct {
	chunkenc.Iterator
	d     scale
	since int64
}

func (it *scaledIterator) At() (int64, float64) {
	t, v := it.Iterator.At()
	if t < it.since {
		return t, v
	}
	return t, decode(it.d, v)
}

// scaledChunkQuerier wraps each selected chunk series so that its chunks'
// iterators decode.
type scaledChunkQuerier struct {
	storage.ChunkQuerier
	db *Tier
}

func (q scaledChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return &scaledChunkSeriesSet{ChunkSeriesSet: q.ChunkQuerier.Select(ctx, sortSeries, hints, ms...), db: q.db}
}

type scaledChunkSeriesSet struct {
	storage.ChunkSeriesSet
	db *Tier
}

func (s *scaledChunkSeriesSet) At() storage.ChunkSeries {
	ser := s.ChunkSeriesSet.At()
	d := s.db.seriesScale(ser.Labels())
	if d == noScale {
		return ser
	}
	return scaledChunkSeries{ChunkSeries: ser, d: d, since: s.db.since}
}

type scaledChunkSeries struct {
	storage.ChunkSeries
	d     scale
	since int64
}

func (s scaledChunkSeries) Iterator(reuse chunks.Iterator) chunks.Iterator {
	return &scaledChunkIterator{Iterator: s.ChunkSeries.Iterator(reuse), d: s.d, since: s.since}
}

type scaledChunkIterator struct {
	chunks.Iterator
	d     scale
	since int64
}

func (it *scaledChunkIterator) At() chunks.Meta {
	m := it.Iterator.At()
	if m.Chunk != nil && m.MaxTime >= it.since {
		m.Chunk = &scaledChunk{Chunk: m.Chunk, d: it.d, since: it.since}
	}
	return m
}

// scaledChunk is a stored chunk read back unscaled: its iterator decodes,
// and Bytes re-encodes the decoded samples into a new XOR chunk.
type scaledChunk struct {
	chunkenc.Chunk
	d     scale
	since int64
}

func (c *scaledChunk) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	return newScaledIterator(c.Chunk, reuse, c.d, c.since)
}

// Bytes returns the chunk's samples, decoded, as an XOR chunk's bytes.
func (c *scaledChunk) Bytes() []byte {
	out := chunkenc.NewXORChunk()
	app, err := out.Appender()
	if err != nil {
		panic(err) // a new XOR chunk always has an appender
	}
	it := c.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		app.Append(0, t, v)
	}
	return out.Bytes()
}

func (c *scaledChunk) Encoding() chunkenc.Encoding { return chunkenc.EncXOR }

// Appender is refused: a chunk read through a Tier is read-only.
func (c *scaledChunk) Appender() (chunkenc.Appender, error) {
	return nil, errors.New("append to a chunk read from the store: chunks read back are read-only")
}

// Reset is a no-op: a chunk read through a Tier is read-only.
func (c *scaledChunk) Reset([]byte) {}

var (
	_ storage.Querier      = scaledQuerier{}
	_ storage.ChunkQuerier = scaledChunkQuerier{}
	_ storage.Appender     = (*scaledAppender)(nil)
)

// scaleFile records since when the data directory stores scaled values.
const scaleFile = "scale.json"

type scaleJSON struct {
	Version int `json:"version"`
	// ScaledSince is the first timestamp (ms since epoch) whose values are
	// stored scaled, in every tier.
	ScaledSince int64 `json:"scaled_since"`
}

// loadScaledSince reads scale.json, or writes it on the first open of a
// directory by a version that scales: since = math.MinInt64 for a
// directory without samples, else the later of now and just past the
// newest sample of any tier. The tiers are open and replayed.
func (s *Store) loadScaledSince() (int64, error) {
	path := filepath.Join(s.opts.Dir, scaleFile)
	b, err := os.ReadFile(path)
	if err == nil {
		var st scaleJSON
		if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
			if err == nil {
				err = fmt.Errorf("unknown version %d", st.Version)
			}
			return 0, fmt.Errorf("read %s: %w; it records from when values are stored scaled and the data cannot be read without it: restore it from a backup", path, err)
		}
		return st.ScaledSince, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	since := int64(math.MinInt64)
	tiers := []*Tier{s.tier1m, s.tier1h}
	if raw, ok := s.raw.(*Tier); ok {
		tiers = append(tiers, raw)
	}
	for _, db := range tiers {
		if newest, ok := newestTime(db.DB); ok {
			since = max(since, s.now().UnixMilli(), newest+1)
		}
	}
	out, err := json.MarshalIndent(scaleJSON{Version: 1, ScaledSince: since}, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", path, err)
	}
	if err := writeFileAtomic(path, out); err != nil {
		return 0, err
	}
	return since, nil
}

// newestTime returns the newest timestamp (ms) db holds, and false when it
// holds no series.
func newestTime(db *tsdb.DB) (int64, bool) {
	h := db.Head()
	newest, found := h.MaxTime(), h.NumSeries() > 0
	for _, b := range db.Blocks() {
		newest, found = max(newest, b.Meta().MaxTime), true
	}
	return newest, found
}
