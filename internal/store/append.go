package store

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// SeriesRef is a store's handle of one series, valid while the store is
// open: 0 means unknown. Append returns it; passing it back with the same
// labels skips the label lookup.
type SeriesRef uint64

// Appender adds samples to a store. Nothing is visible before Commit; an
// Appender is spent after Commit or Rollback.
//
// This is the write seam between ingest and storage: *Store's raw tier
// implements it, and another store (remote write, a cluster) can stand
// behind the same interface.
type Appender interface {
	// Append adds one sample of the series ls at t (ms since epoch) and
	// returns the series' ref. A refused sample returns an error that
	// matches (errors.Is) ErrDuplicateSample, ErrOutOfOrder, ErrTooOld or
	// ErrOutOfBounds, or another error; the appender stays usable.
	Append(ref SeriesRef, ls labels.Labels, t int64, v float64) (SeriesRef, error)
	// Commit makes every appended sample durable and visible.
	Commit() error
	// Rollback drops every appended sample.
	Rollback() error
}

// Errors of Append for one refused sample.
var (
	// ErrDuplicateSample: the series has another value at that timestamp.
	ErrDuplicateSample = storage.ErrDuplicateSampleForTimestamp
	// ErrOutOfOrder: the series has a newer sample.
	ErrOutOfOrder = storage.ErrOutOfOrderSample
	// ErrTooOld: the timestamp is older than the store takes.
	ErrTooOld = storage.ErrTooOldSample
	// ErrOutOfBounds: the timestamp is outside the writable time range.
	ErrOutOfBounds = storage.ErrOutOfBounds
)

// rawAppender is the Appender of the raw tier: a TSDB appender whose
// Commit and Rollback report a lack of space to the free-space guard, as
// spaceAppender does for the rollup tiers. With minutes kept (minutes.go)
// it holds the samples it took and counts them into their series'
// minutes once Commit has stored them.
type rawAppender struct {
	app     storage.Appender
	g       *spaceGuard
	minutes *minuteRoller
	pending *[]pendingSample
}

func (a *rawAppender) Append(ref SeriesRef, ls labels.Labels, t int64, v float64) (SeriesRef, error) {
	r, err := a.app.Append(storage.SeriesRef(ref), ls, t, v)
	if err == nil && a.minutes != nil {
		if a.pending == nil {
			a.pending = pendingPool.Get().(*[]pendingSample)
		}
		*a.pending = append(*a.pending, pendingSample{ref: r, t: t, v: v})
	}
	return SeriesRef(r), err
}

func (a *rawAppender) Commit() error {
	err := a.app.Commit()
	if a.pending != nil {
		if err == nil {
			a.minutes.apply(*a.pending)
		} else {
			a.minutes.lose(*a.pending, err)
		}
	}
	a.release()
	return a.g.noteWriteError(err)
}

func (a *rawAppender) Rollback() error {
	a.release()
	return a.g.noteWriteError(a.app.Rollback())
}

func (a *rawAppender) release() {
	if a.pending != nil {
		*a.pending = (*a.pending)[:0]
		pendingPool.Put(a.pending)
		a.pending = nil
	}
}

// NewestSamples calls fn with the labels and the newest sample, at t (ms
// since epoch) with value v, of every raw series named name that has a
// sample in [mint, maxt]. The order of the series is unspecified.
func (s *Store) NewestSamples(ctx context.Context, name string, mint, maxt int64, fn func(ls labels.Labels, t int64, v float64)) error {
	q, err := s.raw.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	var it chunkenc.Iterator
	for set.Next() {
		ser := set.At()
		it = ser.Iterator(it)
		var t int64
		var v float64
		found := false
		for it.Next() != chunkenc.ValNone {
			t, v = it.At()
			found = true
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read raw tier: %w", err)
		}
		if found {
			fn(ser.Labels(), t, v)
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	return nil
}

// MachineSeries calls fn with the labels of every raw series of a machine
// (with a non-empty machine label) that has data in [mint, maxt]. Only the
// index is read, not the samples.
func (s *Store) MachineSeries(ctx context.Context, mint, maxt int64, fn func(ls labels.Labels)) error {
	q, err := s.raw.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
	set := q.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchRegexp, metric.MachineLabel, ".+"))
	for set.Next() {
		fn(set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("read raw tier: %w", err)
	}
	return nil
}
