package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Export calls fn for every stored point of the series matching q in
// [q.From, q.To], series by series (sorted by name, then labels), each in
// time order. It exports raw samples, as stored, whenever the raw tier holds
// every stored sample from From on: From inside raw retention, or data that
// is simply younger than From. Otherwise it exports one average (sum/count,
// rounded by metric.RoundAverage: to the metric family's precision) per minute, or per hour when From is
// older than the 1-minute tier holds, stamped at the start of the minute or
// hour: from the rollup tier up to each machine's rollup watermark and from
// the finer tiers after it, so the newest data is never missing. A rollup
// bucket that begins before From is left out. q.Step is ignored; an empty
// q.Metric exports every metric. An error from fn stops the export and is
// returned.
func (s *Store) Export(ctx context.Context, q Query, fn ExportFunc) error {
	if q.From.After(q.To) {
		return fmt.Errorf("export: from (%s) is after to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	ms, err := matchers(q)
	if err != nil {
		return err
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	if s.rawCovers(from) {
		return exportRaw(ctx, s.raw, ms, from, to, fn)
	}
	p := plan{tier: Tier1h, db: s.tier1h, matchers: ms, machine: q.rollupKey(), from: from, maxt: to}
	if s.minuteCovers(from) {
		p.tier, p.db = Tier1m, s.tier1m
	}
	p.step = tierResolution(p.tier).Milliseconds()
	p.mint = floorTo(from, p.step)
	return s.exportRollups(ctx, p, fn)
}

// exportRaw streams the raw samples of the series matching ms in
// [mint, maxt].
func exportRaw(ctx context.Context, db tierSource, ms []*labels.Matcher, mint, maxt int64, fn ExportFunc) error {
	querier, err := db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("export raw tier: %w", err)
	}
	defer querier.Close()
	set := querier.Select(ctx, true, &storage.SelectHints{Start: mint, End: maxt}, ms...)
	var it chunkenc.Iterator
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		ser := set.At()
		name, ls := ser.Labels().Get(labels.MetricName), toMetricLabels(ser.Labels())
		it = ser.Iterator(it)
		for vt := it.Seek(mint); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if t > maxt {
				break
			}
			if t < mint {
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

// exportRollups exports p's series one at a time through the query path
// (rollup tier plus the not yet rolled up tail), so memory holds one
// series' buckets, not the whole export's.
func (s *Store) exportRollups(ctx context.Context, p plan, fn ExportFunc) error {
	all, err := s.exportSeries(ctx, p)
	if err != nil {
		return err
	}
	for _, ls := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		ps := p
		ps.machine = ls.Get(metric.MachineLabel) // the tail is read for this machine only
		ps.matchers = make([]*labels.Matcher, 0, ls.Len())
		ls.Range(func(l labels.Label) {
			ps.matchers = append(ps.matchers, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		})
		c := &collector{series: map[string]*seriesBuckets{}, metric: ls.Get(labels.MetricName), only: ls}
		if err := s.read(ctx, ps, c); err != nil {
			return fmt.Errorf("export %s tier: %w", p.tier, err)
		}
		name, mls := ls.Get(labels.MetricName), toMetricLabels(ls)
		for _, sb := range c.series {
			for _, b := range sb.buckets {
				if err := fn(name, mls, b.t, metric.RoundAverage(name, b.sum/b.count)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// exportSeries lists the series (labels with __name__, without __rollup__)
// matching p in its tier and the finer ones, sorted.
func (s *Store) exportSeries(ctx context.Context, p plan) ([]labels.Labels, error) {
	dbs := []tierSource{s.raw, s.tier1m}
	if p.tier == Tier1h {
		dbs = append(dbs, s.tier1h)
	}
	seen := map[string]labels.Labels{}
	var (
		b   labels.Builder
		key []byte
	)
	for _, db := range dbs {
		ms := p.matchers
		if db != s.raw {
			ms = append(append([]*labels.Matcher{}, ms...), labels.MustNewMatcher(labels.MatchEqual, rollupLabel, rollupKinds[kindCount]))
		}
		querier, err := db.Querier(p.mint, p.maxt)
		if err != nil {
			return nil, fmt.Errorf("export: list series: %w", err)
		}
		set := querier.Select(ctx, false, &storage.SelectHints{Start: p.mint, End: p.maxt, Func: "series"}, ms...)
		for set.Next() {
			b.Reset(set.At().Labels())
			b.Del(rollupLabel)
			ls := b.Labels()
			key = ls.Bytes(key)
			if _, ok := seen[string(key)]; !ok {
				if len(seen) >= MaxSeries {
					querier.Close()
					return nil, TooManyExportSeries()
				}
				seen[string(key)] = ls
			}
		}
		err = set.Err()
		querier.Close()
		if err != nil {
			return nil, fmt.Errorf("export: list series: %w", err)
		}
	}
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i], out[j]) < 0 })
	return out, nil
}
