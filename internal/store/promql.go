package store

import (
	"context"
	"regexp"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// hideInternal is the matcher every PromQL read adds: the agent-state
// series the store keeps beside the samples (sysmonstm_agent_*) are
// bookkeeping, not metrics.
var hideInternal = labels.MustNewMatcher(labels.MatchNotRegexp, labels.MetricName, regexp.QuoteMeta(internalPrefix)+".*")

// Queryable returns the raw tier as a Prometheus storage.Queryable for the
// PromQL engine: every stored series with its labels as stored (__name__,
// machine and the series' own labels) and every raw sample, timestamps in
// ms since epoch. The store's internal series are hidden. Data older than
// the raw retention is not there: the rollup tiers are not exposed through
// it.
func (s *Store) Queryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		q, err := s.raw.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		return publicQuerier{q}, nil
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
