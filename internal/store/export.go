package store

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Export calls fn for every stored point of the series matching q in
// [q.From, q.To], series by series (sorted by name, then labels), each in
// time order. It reads the finest tier that still covers From: raw when From
// is inside raw retention, else 1m, else 1h. Raw points carry the sample
// value; rollup points carry the bucket's average (sum/count) at the bucket
// start. q.Step is ignored; an empty q.Metric exports every metric. An error
// from fn stops the export and is returned.
func (s *Store) Export(ctx context.Context, q Query, fn ExportFunc) error {
	if q.From.After(q.To) {
		return fmt.Errorf("export: from (%s) is after to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	ms, err := matchers(q)
	if err != nil {
		return err
	}
	tier, db := s.exportTier(q.From)
	mint, maxt := q.From.UnixMilli(), q.To.UnixMilli()
	if tier != TierRaw {
		mint = floorTo(mint, tierResolution(tier).Milliseconds())
	}
	querier, err := db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("export %s tier: %w", tier, err)
	}
	defer querier.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt}

	var it chunkenc.Iterator
	if tier == TierRaw {
		set := querier.Select(ctx, true, hints, ms...)
		for set.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ser := set.At()
			name, ls := ser.Labels().Get(labels.MetricName), toMetricLabels(ser.Labels())
			it = ser.Iterator(it)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				if vt != chunkenc.ValFloat {
					continue
				}
				t, v := it.At()
				if t < mint || t > maxt {
					continue
				}
				if err := fn(name, ls, t, v); err != nil {
					return err
				}
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("export raw tier: %w", err)
			}
		}
		if err := set.Err(); err != nil {
			return fmt.Errorf("export raw tier: %w", err)
		}
		return nil
	}

	return joinRollups(ctx, querier, hints, ms, []int{kindSum, kindCount}, func(base labels.Labels, group *[4]storage.Series) error {
		if group[kindSum] == nil || group[kindCount] == nil {
			return nil
		}
		var sums, counts []stepValue
		var err error
		if sums, it, err = bucketKind(group[kindSum], it, kindSum, 1, mint, maxt+1); err != nil {
			return fmt.Errorf("export %s tier: %w", tier, err)
		}
		if counts, it, err = bucketKind(group[kindCount], it, kindCount, 1, mint, maxt+1); err != nil {
			return fmt.Errorf("export %s tier: %w", tier, err)
		}
		name, ls := base.Get(labels.MetricName), toMetricLabels(base)
		i := 0
		for _, c := range counts {
			for i < len(sums) && sums[i].t < c.t {
				i++
			}
			if i == len(sums) {
				break
			}
			if sums[i].t != c.t || c.v <= 0 {
				continue
			}
			if err := fn(name, ls, c.t, sums[i].v/c.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportTier is the finest tier whose retention covers from.
func (s *Store) exportTier(from time.Time) (string, *tsdb.DB) {
	now := s.now()
	switch {
	case !from.Before(now.Add(-s.opts.RetentionRaw)):
		return TierRaw, s.raw
	case !from.Before(now.Add(-s.opts.Retention1m)):
		return Tier1m, s.tier1m
	default:
		return Tier1h, s.tier1h
	}
}
