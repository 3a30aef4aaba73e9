package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

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
// From the oldest raw sample on, the series hold every raw sample. Before
// it (ranges beyond the raw retention), they hold one sample per minute
// from the 1m tier: at the minute's start, the average (sum/count) of the
// minute's raw samples; __rollup__ and the min, max and count are not
// exposed. The 1h tier is not exposed: beyond the 1m retention there is no
// data.
func (s *Store) Queryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		rq, err := s.raw.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		raw := publicQuerier{rq}
		rawStart, _ := s.raw.StartTime() // never fails
		if mint >= rawStart {
			return raw, nil
		}
		end := min(maxt, rawStart-1)
		mq, err := s.tier1m.Querier(mint, end)
		if err != nil {
			_ = rq.Close()
			return nil, err
		}
		minutes := avgQuerier{publicQuerier{mq}, mint, end}
		return storage.NewMergeQuerier([]storage.Querier{raw, minutes}, nil, storage.ChainedSeriesMerge), nil
	})
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
		return storage.ErrSeriesSet(fmt.Errorf("read 1m tier: %w", err))
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
