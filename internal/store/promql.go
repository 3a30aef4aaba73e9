package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// hideInternal is the matcher every PromQL read adds: the agent-state
// series the store keeps beside the samples (sysmonstm_agent_*) are
// bookkeeping, not metrics.
var hideInternal = labels.MustNewMatcher(labels.MatchNotRegexp, labels.MetricName, regexp.QuoteMeta(internalPrefix)+".*")

// Queryable returns the history as a Prometheus storage.Queryable for the
// PromQL engine, timestamps in ms since epoch. Every stored series appears
// with its labels as stored (__name__, machine and the series' own labels);
// the store's internal series are hidden.
//
// A plain selector (no __rollup__ matcher that needs a value) reads each
// tier where the finer one has nothing: from the oldest raw sample on,
// every raw sample; before it, one sample per minute from the 1m tier;
// before the 1m tier's oldest bucket, one sample per hour from the 1h
// tier. A rollup sample sits at its bucket's start and is the bucket's
// average (sum/count), labelled as the raw series (no __rollup__).
//
// A selector with a __rollup__ matcher that does not match "" (e.g.
// {__rollup__="max"}) reads the stored buckets instead, labelled with
// __rollup__: the 1m tier's wherever it holds them, the 1h tier's before
// the 1m tier's oldest bucket. Raw samples not rolled up yet are absent.
//
// Label names and values never show __rollup__.
func (s *Store) Queryable() storage.Queryable {
	return storage.QueryableFunc(s.promQuerier)
}

// promQuerier opens the tiers' queriers for [mint, maxt] (ms).
func (s *Store) promQuerier(mint, maxt int64) (storage.Querier, error) {
	rq, err := s.raw.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	rawStart, _ := s.raw.StartTime() // never fails
	m1Start, _ := s.tier1m.StartTime()
	plain := []storage.Querier{publicQuerier{rq}}
	closeAll := func() {
		for _, q := range plain {
			_ = q.Close()
		}
	}
	h1Start, _ := s.tier1h.StartTime()
	// Each coarser tier fills in before the finer tier's oldest sample; a
	// tier whose oldest sample lies after that window is not read at all
	// (no merge of every raw series with an empty tier).
	for _, t := range []struct {
		name       string
		open       func(mint, maxt int64) (storage.Querier, error)
		start, cut int64
	}{
		{Tier1m, s.tier1m.Querier, m1Start, rawStart},
		{Tier1h, s.tier1h.Querier, h1Start, min(rawStart, m1Start)},
	} {
		if mint >= t.cut {
			break
		}
		end := min(maxt, t.cut-1)
		if t.start > end {
			continue
		}
		q, err := t.open(mint, end)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open %s tier: %w", t.name, err)
		}
		plain = append(plain, avgQuerier{publicQuerier{q}, t.name, mint, end})
	}
	pq := &promQuerier{plain: plain[0]}
	if len(plain) > 1 {
		pq.plain = storage.NewMergeQuerier(plain, nil, storage.ChainedSeriesMerge)
	}
	pq.openRollups = func() (storage.Querier, error) {
		q1m, err := s.tier1m.Querier(mint, maxt)
		if err != nil {
			return nil, fmt.Errorf("open %s tier: %w", Tier1m, err)
		}
		if mint >= m1Start {
			return publicQuerier{q1m}, nil
		}
		q1h, err := s.tier1h.Querier(mint, min(maxt, m1Start-1))
		if err != nil {
			_ = q1m.Close()
			return nil, fmt.Errorf("open %s tier: %w", Tier1h, err)
		}
		return storage.NewMergeQuerier([]storage.Querier{publicQuerier{q1m}, publicQuerier{q1h}}, nil, storage.ChainedSeriesMerge), nil
	}
	return pq, nil
}

// promQuerier sends a selector to the plain series (raw samples, then
// rollup averages) or, when it selects __rollup__, to the rollup tiers'
// stored buckets.
type promQuerier struct {
	plain       storage.Querier
	openRollups func() (storage.Querier, error)

	once    sync.Once // opens rollups
	rollups storage.Querier
	err     error
}

// selectsRollup reports whether ms has a __rollup__ matcher that does not
// match the plain series (which have no __rollup__ label).
func selectsRollup(ms []*labels.Matcher) bool {
	return slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return m.Name == rollupLabel && !m.Matches("") })
}

func (q *promQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if !selectsRollup(ms) {
		// Every __rollup__ matcher left matches "": every plain series.
		ms = slices.DeleteFunc(slices.Clone(ms), func(m *labels.Matcher) bool { return m.Name == rollupLabel })
		return q.plain.Select(ctx, sortSeries, hints, ms...)
	}
	q.once.Do(func() { q.rollups, q.err = q.openRollups() })
	if q.err != nil {
		return storage.ErrSeriesSet(q.err)
	}
	return q.rollups.Select(ctx, sortSeries, hints, ms...)
}

func (q *promQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.plain.LabelValues(ctx, name, hints, ms...)
}

func (q *promQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.plain.LabelNames(ctx, hints, ms...)
}

func (q *promQuerier) Close() error {
	err := q.plain.Close()
	if q.rollups != nil {
		err = errors.Join(err, q.rollups.Close())
	}
	return err
}

// publicQuerier is a raw-tier querier that never shows internal series.
type publicQuerier struct{ storage.Querier }

func (q publicQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return q.Querier.Select(ctx, sortSeries, hints, withPublic(ms)...)
}

func (q publicQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.Querier.LabelValues(ctx, name, hints, withPublic(ms)...)
}

func (q publicQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.Querier.LabelNames(ctx, hints, withPublic(ms)...)
}

// withPublic returns ms plus the matcher that hides internal series, in a
// new slice (callers' slices are not changed).
func withPublic(ms []*labels.Matcher) []*labels.Matcher {
	out := make([]*labels.Matcher, 0, len(ms)+1)
	return append(append(out, ms...), hideInternal)
}

// avgQuerier shows a rollup tier's buckets in [mint, maxt] (ms) as plain
// series: one sample per bucket at its start, the average sum/count,
// labelled without __rollup__.
type avgQuerier struct {
	q          storage.Querier
	tier       string // for errors
	mint, maxt int64
}

func (q avgQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	var it [2]chunkenc.Iterator
	err := joinRollups(ctx, q.q, hints, ms, []int{kindSum, kindCount}, func(base labels.Labels, group *[4]storage.Series) error {
		if group[kindSum] == nil || group[kindCount] == nil {
			return nil
		}
		sum, cnt := group[kindSum].Iterator(it[0]), group[kindCount].Iterator(it[1])
		it[0], it[1] = sum, cnt
		var pts []chunks.Sample
		vs, vc := sum.Next(), cnt.Next()
		for vs == chunkenc.ValFloat && vc == chunkenc.ValFloat {
			t, sv := sum.At()
			tc, cv := cnt.At()
			switch {
			case t < tc:
				vs = sum.Next()
			case tc < t:
				vc = cnt.Next()
			default:
				if cv > 0 && t >= q.mint && t <= q.maxt {
					pts = append(pts, fsample{t, sv / cv})
				}
				vs, vc = sum.Next(), cnt.Next()
			}
		}
		if err := errors.Join(sum.Err(), cnt.Err()); err != nil {
			return err
		}
		if len(pts) > 0 {
			out = append(out, storage.NewListSeries(base, pts))
		}
		return nil
	})
	if err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read %s tier: %w", q.tier, err))
	}
	return &listSeriesSet{series: out, i: -1}
}

func (q avgQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	if name == rollupLabel {
		return nil, nil, nil
	}
	return q.q.LabelValues(ctx, name, hints, ms...)
}

func (q avgQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, ann, err := q.q.LabelNames(ctx, hints, ms...)
	return slices.DeleteFunc(names, func(n string) bool { return n == rollupLabel }), ann, err
}

func (q avgQuerier) Close() error { return q.q.Close() }

// listSeriesSet is a sorted list of series.
type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }

// fsample is one float sample.
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

// Internal reports whether ls is one of the store's internal series
// (sysmonstm_agent_*), which PromQL over the store does not show.
func Internal(ls labels.Labels) bool {
	return strings.HasPrefix(ls.Get(labels.MetricName), internalPrefix)
}
