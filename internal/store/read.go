package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Kind indexes into rollupKinds.
const (
	kindMin = iota
	kindMax
	kindSum
	kindCount
)

// Query returns q.Metric's series over [q.From, q.To] as step buckets. The
// tier and step are chosen as documented on Query; buckets are aligned to
// multiples of the step since the Unix epoch, so the first bucket may start
// before From, but it holds no sample from before From: on the raw tier it
// is clipped to From, and a rollup bucket that begins before From is left
// out. Only buckets with data get a point. Series are sorted by labels. A
// query that would return more than MaxPointsPerSeries points per series,
// more than MaxSeries series or more than MaxPoints points in all is
// refused.
//
// A rollup tier lags by RollupLag and more for machines whose data is still
// coming in; each machine's buckets past its rollup watermark are computed
// from the finer tiers, so the newest data is never missing whatever the
// tier.
func (s *Store) Query(ctx context.Context, q Query) (*Result, error) {
	p, err := s.planQuery(q)
	if err != nil {
		return nil, err
	}
	c := &collector{series: map[string]*seriesBuckets{}, metric: q.Metric}
	if err := s.read(ctx, p, c); err != nil {
		return nil, err
	}
	return c.result(p)
}

// read adds the buckets of p's tier to c, and each machine's buckets past
// that tier's rollup watermark from the finer tiers.
func (s *Store) read(ctx context.Context, p plan, c *collector) error {
	switch p.tier {
	case TierRaw:
		everything := func(string) (int64, int64) { return math.MinInt64, math.MaxInt64 }
		return readRaw(ctx, s.raw, p, p.mint, everything, c)
	case Tier1m:
		wm := s.watermarks()
		if err := readRollup(ctx, s.tier1m, p, p.mint, wm.window(nil, done1m), c); err != nil {
			return err
		}
		return readTail(ctx, readRaw, s.raw, p, wm, done1m, nil, c)
	default:
		wm := s.watermarks()
		if err := readRollup(ctx, s.tier1h, p, p.mint, wm.window(nil, done1h), c); err != nil {
			return err
		}
		if err := readTail(ctx, readRollup, s.tier1m, p, wm, done1h, done1m, c); err != nil {
			return err
		}
		return readTail(ctx, readRaw, s.raw, p, wm, done1m, nil, c)
	}
}

// bucket is one step bucket being accumulated.
type bucket struct {
	t                    int64 // ms, start of the step
	min, max, sum, count float64
}

func (b *bucket) add(o bucket) {
	b.min = min(b.min, o.min)
	b.max = max(b.max, o.max)
	b.sum += o.sum
	b.count += o.count
}

// seriesBuckets is one output series.
type seriesBuckets struct {
	ls      labels.Labels // with __name__, without __rollup__
	buckets []bucket      // sorted by t
}

// collector gathers the buckets of every series from one or more tiers.
type collector struct {
	metric string
	series map[string]*seriesBuckets
	key    []byte
	// only, when not empty, is the one series kept; the matchers of a
	// query cannot exclude series with further labels.
	only labels.Labels
}

func (c *collector) add(ls labels.Labels, bs []bucket) error {
	if len(bs) == 0 || (!c.only.IsEmpty() && !labels.Equal(ls, c.only)) {
		return nil
	}
	c.key = ls.Bytes(c.key)
	sb := c.series[string(c.key)]
	if sb == nil {
		if len(c.series) >= MaxSeries {
			return TooManySeries(c.metric)
		}
		c.series[string(c.key)] = &seriesBuckets{ls: ls, buckets: bs}
		return nil
	}
	sb.buckets = mergeBuckets(sb.buckets, bs)
	return nil
}

// mergeBuckets merges two sorted bucket lists, combining equal steps.
func mergeBuckets(a, b []bucket) []bucket {
	out := make([]bucket, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].t < b[j].t:
			out = append(out, a[i])
			i++
		case a[i].t > b[j].t:
			out = append(out, b[j])
			j++
		default:
			x := a[i]
			x.add(b[j])
			out = append(out, x)
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (c *collector) result(p plan) (*Result, error) {
	res := &Result{Tier: p.tier, Step: time.Duration(p.step) * time.Millisecond, Series: make([]Series, 0, len(c.series))}
	all := make([]*seriesBuckets, 0, len(c.series))
	total := 0
	for _, sb := range c.series {
		all = append(all, sb)
		total += len(sb.buckets)
	}
	if total > MaxPoints {
		return nil, TooManyPoints(c.metric, total)
	}
	sort.Slice(all, func(i, j int) bool { return labels.Compare(all[i].ls, all[j].ls) < 0 })
	for _, sb := range all {
		pts := make([]Point, len(sb.buckets))
		for i, b := range sb.buckets {
			pts[i] = Point{T: b.t, Avg: metric.RoundAverage(c.metric, b.sum/b.count), Min: b.min, Max: b.max, Count: int64(b.count)}
		}
		res.Series = append(res.Series, Series{Labels: toMetricLabels(sb.ls), Points: pts})
	}
	return res, nil
}

// readRaw adds the raw samples of the series matching p, each machine's
// limited to its window [lo, hi), as step buckets. from is where the
// windows start at the earliest.
func readRaw(ctx context.Context, db tierSource, p plan, from int64, win func(string) (int64, int64), c *collector) error {
	if from > p.maxt {
		return nil
	}
	querier, err := db.Querier(from, p.maxt)
	if err != nil {
		return fmt.Errorf("query raw tier: %w", err)
	}
	defer querier.Close()
	set := querier.Select(ctx, false, &storage.SelectHints{Start: from, End: p.maxt, Step: p.step}, p.matchers...)
	var it chunkenc.Iterator
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		ser := set.At()
		lo, hi := win(ser.Labels().Get(metric.MachineLabel))
		lo, hi = max(lo, p.from), min(hi, p.maxt+1)
		if lo >= hi {
			continue
		}
		var bs []bucket
		bs, it, err = bucketRaw(ser, it, p.step, lo, hi)
		if err != nil {
			return fmt.Errorf("query raw tier: %w", err)
		}
		if err := c.add(ser.Labels(), bs); err != nil {
			return err
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("query raw tier: %w", err)
	}
	return nil
}

// bucketRaw aggregates one raw series' samples in [lo, hi) into step
// buckets.
func bucketRaw(ser storage.Series, it chunkenc.Iterator, step, lo, hi int64) ([]bucket, chunkenc.Iterator, error) {
	var bs []bucket
	it = ser.Iterator(it)
	for vt := it.Seek(lo); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue
		}
		t, v := it.At()
		if t >= hi {
			break
		}
		if t < lo || math.IsNaN(v) {
			continue
		}
		bt := floorTo(t, step)
		if n := len(bs); n > 0 && bs[n-1].t == bt {
			b := &bs[n-1]
			b.min, b.max, b.sum, b.count = min(b.min, v), max(b.max, v), b.sum+v, b.count+1
			continue
		}
		bs = append(bs, bucket{t: bt, min: v, max: v, sum: v, count: 1})
	}
	return bs, it, it.Err()
}

// readRollup adds the rollup points of the series matching p, each
// machine's limited to its window [lo, hi), as step buckets.
func readRollup(ctx context.Context, db tierSource, p plan, from int64, win func(string) (int64, int64), c *collector) error {
	if from > p.maxt {
		return nil
	}
	querier, err := db.Querier(from, p.maxt)
	if err != nil {
		return fmt.Errorf("query rollup tier: %w", err)
	}
	defer querier.Close()
	hints := &storage.SelectHints{Start: from, End: p.maxt, Step: p.step}
	var it chunkenc.Iterator
	return joinRollups(ctx, querier, hints, p.matchers, []int{kindMin, kindMax, kindSum, kindCount}, func(base labels.Labels, group *[4]storage.Series) error {
		lo, hi := win(base.Get(metric.MachineLabel))
		lo, hi = max(lo, p.from), min(hi, p.maxt+1)
		if lo >= hi {
			return nil
		}
		var bs []bucket
		var err error
		if bs, it, err = bucketRollup(group, it, p.step, lo, hi); err != nil {
			return fmt.Errorf("query rollup tier: %w", err)
		}
		return c.add(base, bs)
	})
}

// stepValue is one rollup kind's value combined over one step bucket.
type stepValue struct {
	t int64
	v float64
}

// bucketKind combines one rollup series' points in [lo, hi) into step
// buckets with the kind's combiner.
func bucketKind(ser storage.Series, it chunkenc.Iterator, kind int, step, lo, hi int64) ([]stepValue, chunkenc.Iterator, error) {
	var out []stepValue
	it = ser.Iterator(it)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			continue
		}
		t, v := it.At()
		if t < lo || math.IsNaN(v) {
			continue
		}
		if t >= hi {
			break
		}
		bt := floorTo(t, step)
		if n := len(out); n > 0 && out[n-1].t == bt {
			switch kind {
			case kindMin:
				out[n-1].v = min(out[n-1].v, v)
			case kindMax:
				out[n-1].v = max(out[n-1].v, v)
			default:
				out[n-1].v += v
			}
			continue
		}
		out = append(out, stepValue{t: bt, v: v})
	}
	return out, it, it.Err()
}

// bucketRollup merges the four kinds of one rollup series into buckets.
// Buckets come from the count series.
func bucketRollup(group *[4]storage.Series, it chunkenc.Iterator, step, lo, hi int64) ([]bucket, chunkenc.Iterator, error) {
	if group[kindCount] == nil {
		return nil, it, nil
	}
	var vals [4][]stepValue
	for k, ser := range group {
		if ser == nil {
			continue
		}
		var err error
		if vals[k], it, err = bucketKind(ser, it, k, step, lo, hi); err != nil {
			return nil, it, err
		}
	}
	var idx [4]int
	// at returns kind k's value at bucket t, if any.
	at := func(k int, t int64) (float64, bool) {
		vs := vals[k]
		for idx[k] < len(vs) && vs[idx[k]].t < t {
			idx[k]++
		}
		if idx[k] < len(vs) && vs[idx[k]].t == t {
			return vs[idx[k]].v, true
		}
		return 0, false
	}
	bs := make([]bucket, 0, len(vals[kindCount]))
	for _, c := range vals[kindCount] {
		if c.v <= 0 {
			continue
		}
		sum, ok := at(kindSum, c.t)
		if !ok {
			continue
		}
		b := bucket{t: c.t, sum: sum, count: c.v, min: sum / c.v, max: sum / c.v}
		if v, ok := at(kindMin, c.t); ok {
			b.min = v
		}
		if v, ok := at(kindMax, c.t); ok {
			b.max = v
		}
		bs = append(bs, b)
	}
	return bs, it, nil
}

// joinRollups selects the given rollup kinds of the series matching ms and
// calls fn once per base series (labels without __rollup__) with the kinds
// found, in label order. Each kind's set is sorted by labels and __rollup__
// is constant within it, so the sets line up on the base labels.
func joinRollups(ctx context.Context, q storage.Querier, hints *storage.SelectHints, ms []*labels.Matcher, kinds []int,
	fn func(base labels.Labels, group *[4]storage.Series) error,
) error {
	var (
		sets  [4]storage.SeriesSet
		cur   [4]storage.Series
		bases [4]labels.Labels
		b     labels.Builder
	)
	advance := func(k int) error {
		cur[k] = nil
		if sets[k].Next() {
			cur[k] = sets[k].At()
			b.Reset(cur[k].Labels())
			b.Del(rollupLabel)
			bases[k] = b.Labels()
			return nil
		}
		return sets[k].Err()
	}
	for _, k := range kinds {
		kms := append(append([]*labels.Matcher{}, ms...), labels.MustNewMatcher(labels.MatchEqual, rollupLabel, rollupKinds[k]))
		sets[k] = q.Select(ctx, true, hints, kms...)
		if err := advance(k); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		lowest := -1
		for _, k := range kinds {
			if cur[k] != nil && (lowest < 0 || labels.Compare(bases[k], bases[lowest]) < 0) {
				lowest = k
			}
		}
		if lowest < 0 {
			return nil
		}
		base := bases[lowest]
		var group [4]storage.Series
		var matched []int
		for _, k := range kinds {
			if cur[k] != nil && labels.Equal(bases[k], base) {
				group[k] = cur[k]
				matched = append(matched, k)
			}
		}
		if err := fn(base, &group); err != nil {
			return err
		}
		for _, k := range matched {
			if err := advance(k); err != nil {
				return err
			}
		}
	}
}
