package promapi

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// tooManySeries is the error of a query or /series answer over MaxSeries;
// it is answered with errorType "execution" (422).
type tooManySeries struct{ max int }

func (e tooManySeries) Error() string {
	return fmt.Sprintf("query selects more than %d series (the hub's --query-max-series); narrow the selector or raise the limit", e.max)
}

// seriesLimited is a Queryable whose queriers fail a Select once the
// querier's selects together have yielded more than max series: a query
// over too many series stops before loading their samples.
type seriesLimited struct {
	storage.Queryable
	max int
}

func (q seriesLimited) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &limitedQuerier{Querier: inner, max: int64(q.max)}, nil
}

// limitedQuerier counts the series its selects yield.
type limitedQuerier struct {
	storage.Querier
	max  int64
	seen atomic.Int64 // series yielded by every Select so far
}

func (q *limitedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &limitedSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, ms...), q: q}
}

// limitedSet is a SeriesSet that ends with tooManySeries past the limit.
type limitedSet struct {
	storage.SeriesSet
	q   *limitedQuerier
	err error
}

func (s *limitedSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	if s.q.seen.Add(1) > s.q.max {
		s.err = tooManySeries{int(s.q.max)}
		return false
	}
	return true
}

func (s *limitedSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SeriesSet.Err()
}

func (s *limitedSet) Warnings() annotations.Annotations { return s.SeriesSet.Warnings() }
