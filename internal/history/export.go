package history

import (
	"context"
	"fmt"
	"net/url"
	"sort"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// Export calls fn for every raw sample of the series matching q in
// [q.From, q.To], series by series (sorted by name, then labels, as the
// store exports them), each in time order, no sample twice. It lists the
// series (/api/v1/series), then reads each one in chunks of ExportChunk
// with instant queries of `sel[chunk] offset 1ms` (standard PromQL: works
// on Prometheus, VictoriaMetrics, Mimir, Thanos), keeping of each chunk
// [a, b) the samples with a ≤ t < b. q.Step is ignored; an empty q.Metric
// exports every metric. An error from fn stops the export and is returned.
func (c *Client) Export(ctx context.Context, q store.Query, fn store.ExportFunc) error {
	if q.From.After(q.To) {
		return fmt.Errorf("export: from (%s) is after to (%s)", q.From, q.To)
	}
	ms, err := store.Matchers(q)
	if err != nil {
		return err
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	all, err := c.series(ctx, selector(ms), from, to)
	if err != nil {
		return err
	}
	chunk := c.opts.ExportChunk.Milliseconds()
	for _, ls := range all {
		name, mls := ls.Get(labels.MetricName), toMetricLabels(ls)
		exact := make([]*labels.Matcher, 0, ls.Len())
		ls.Range(func(l labels.Label) {
			exact = append(exact, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		})
		sel := selector(exact)
		for a := from; a <= to; a += chunk {
			b := min(a+chunk, to+1)
			pts, err := c.rawChunk(ctx, sel, ls, a, b)
			if err != nil {
				return err
			}
			for _, p := range pts {
				if err := fn(name, mls, p.t, p.v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// series lists the label sets (with __name__) matching sel in [from, to],
// sorted; more than store.MaxSeries is a QueryError.
func (c *Client) series(ctx context.Context, sel string, from, to int64) ([]labels.Labels, error) {
	body, err := c.post(ctx, "/api/v1/series", url.Values{
		"match[]": {sel}, "start": {formatTime(from)}, "end": {formatTime(to)},
	})
	if err != nil {
		return nil, err
	}
	sets, err := decodeLabelSets(body)
	if err != nil {
		return nil, c.unavailable("%v", err)
	}
	seen := make(map[string]bool, len(sets))
	out := make([]labels.Labels, 0, len(sets))
	var key []byte
	for _, m := range sets {
		ls := labels.FromMap(m)
		key = ls.Bytes(key)
		if seen[string(key)] || ls.Get(labels.MetricName) == "" {
			continue
		}
		if len(out) >= store.MaxSeries {
			return nil, store.TooManyExportSeries()
		}
		seen[string(key)] = true
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i], out[j]) < 0 })
	return out, nil
}

// rawChunk returns the samples of the one series ls in [a, b), in time
// order. The selector also matches series with further labels; only ls's
// own samples are kept.
func (c *Client) rawChunk(ctx context.Context, sel string, ls labels.Labels, a, b int64) ([]sample, error) {
	body, err := c.post(ctx, "/api/v1/query", url.Values{
		"query": {fmt.Sprintf("%s[%dms] offset 1ms", sel, b-a)},
		"time":  {formatTime(b)},
	})
	if err != nil {
		return nil, err
	}
	res, err := decodeMatrix(body)
	if err != nil {
		return nil, c.unavailable("%v", err)
	}
	var out []sample
	for _, s := range res {
		if !labels.Equal(labels.FromMap(s.labels), ls) {
			continue
		}
		last := int64(-1 << 63)
		for _, p := range s.points {
			if p.t < a || p.t >= b || p.t <= last {
				continue // the left end of a closed range; a repeat
			}
			last = p.t
			out = append(out, p)
		}
	}
	return out, nil
}
