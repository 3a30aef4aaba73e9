package history

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// aggregations are the *_over_time functions one history query runs, one
// request each, in Point's order of need.
var aggregations = [...]string{"min_over_time", "max_over_time", "sum_over_time", "count_over_time"}

const (
	aggMin = iota
	aggMax
	aggSum
	aggCount
)

// span is a run of buckets evaluated by one query_range: bucket i covers
// [lo + i*step, lo + i*step + width) for i in [0, n).
type span struct {
	lo, width, step int64 // ms
	n               int64
}

// Query answers q as store.Store.Query does, computed in the TSDB: the same
// validation and limits, the same step (q.Step, or the one giving about 600
// points, rounded up to the resolution of the tier that step would read),
// the same buckets [T, T+step) aligned to multiples of the step since the
// epoch, the first clipped to From and the last to To, each point the min,
// max, count and average (sum/count, rounded as the store rounds it) of
// the raw samples in its bucket. Result.Tier names the tier the embedded
// store would read for that step; every point comes from raw samples.
//
// Each bucket [lo, hi) is the PromQL function over `sel[hi-lo] offset 1ms`
// evaluated at hi, so one second spikes stay in max at any step.
func (c *Client) Query(ctx context.Context, q store.Query) (*store.Result, error) {
	step, err := store.CheckQuery(q)
	if err != nil {
		return nil, err
	}
	tier := store.TierFor(step)
	g, err := store.NewGrid(q, step, tier)
	if err != nil {
		return nil, err
	}
	ms, err := store.Matchers(q)
	if err != nil {
		return nil, err
	}
	closed, err := c.closedRanges(ctx)
	if err != nil {
		return nil, err
	}
	sel := selector(ms)
	spans := gridSpans(g)
	results := make([][]series, len(spans)*len(aggregations))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(4)
	for i, sp := range spans {
		for a, fn := range aggregations {
			eg.Go(func() error {
				r, err := c.rangeQuery(ectx, fn, sel, sp, closed)
				results[i*len(aggregations)+a] = r
				return err
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return assemble(q.Metric, tier, g.Step, spans, results)
}

// gridSpans splits g into its whole buckets (one span) and the first and
// last ones where From or To cut them.
func gridSpans(g store.Grid) []span {
	last := store.FloorTo(g.Maxt, g.Step)
	if g.Mint == last { // one bucket
		return []span{{lo: g.From, width: g.Maxt + 1 - g.From, step: g.Step, n: 1}}
	}
	var out []span
	first, end := g.Mint, last // whole buckets: [first, end) by step
	if g.From > g.Mint {
		out = append(out, span{lo: g.From, width: g.Mint + g.Step - g.From, step: g.Step, n: 1})
		first += g.Step
	}
	if g.Maxt+1 == last+g.Step {
		end += g.Step
	}
	if end > first {
		out = append(out, span{lo: first, width: g.Step, step: g.Step, n: (end - first) / g.Step})
	}
	if end == last {
		out = append(out, span{lo: last, width: g.Maxt + 1 - last, step: g.Step, n: 1})
	}
	return out
}

// rangeQuery evaluates fn over sp's buckets: a range query for a run of
// whole buckets, an instant query for a cut one (VictoriaMetrics answers
// a one-point range query that ends in the current second with nothing).
func (c *Client) rangeQuery(ctx context.Context, fn, sel string, sp span, closed bool) ([]series, error) {
	window := sp.width
	if closed && window > 1 {
		window-- // [hi-1-w, hi-1] = [lo, hi-1]
	}
	expr := fmt.Sprintf("%s(%s[%dms] offset 1ms)", fn, sel, window)
	path, form := "/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {formatTime(sp.lo + sp.width)},
		"end":   {formatTime(sp.lo + sp.width + (sp.n-1)*sp.step)},
		"step":  {strconv.FormatFloat(float64(sp.step)/1000, 'f', 3, 64)},
	}
	if sp.n == 1 {
		path, form = "/api/v1/query", url.Values{"query": {expr}, "time": {formatTime(sp.lo + sp.width)}}
	}
	body, err := c.post(ctx, path, form)
	if err != nil {
		return nil, err
	}
	r, err := decodeSeries(body)
	if err != nil {
		return nil, c.unavailable("%v", err)
	}
	return r, nil
}

// seriesPoints is one output series being assembled.
type seriesPoints struct {
	ls  labels.Labels // without __name__
	pts map[int64]*[4]float64
	has map[int64]uint8 // bit per aggregation answered
}

// assemble joins the four aggregations of every span into store.Series,
// sorted by labels as the store sorts them. A bucket some aggregation did
// not answer (samples arriving between the requests) is left out.
func assemble(name, tier string, step int64, spans []span, results [][]series) (*store.Result, error) {
	all := map[string]*seriesPoints{}
	var key []byte
	for i, sp := range spans {
		for a := range aggregations {
			for _, s := range results[i*len(aggregations)+a] {
				delete(s.labels, labels.MetricName)
				ls := labels.FromMap(s.labels)
				key = ls.Bytes(key)
				sp2 := all[string(key)]
				if sp2 == nil {
					if len(all) >= store.MaxSeries {
						return nil, store.TooManySeries(name)
					}
					sp2 = &seriesPoints{ls: ls, pts: map[int64]*[4]float64{}, has: map[int64]uint8{}}
					all[string(key)] = sp2
				}
				for _, p := range s.points {
					// p.t is the bucket's end; its start is on the grid.
					t := store.FloorTo(p.t-sp.width, step)
					if sp.n == 1 {
						t = store.FloorTo(sp.lo, step)
					}
					v := sp2.pts[t]
					if v == nil {
						v = &[4]float64{}
						sp2.pts[t] = v
					}
					v[a] = p.v
					sp2.has[t] |= 1 << a
				}
			}
		}
	}
	list := make([]*seriesPoints, 0, len(all))
	total := 0
	for _, s := range all {
		list = append(list, s)
		total += len(s.pts)
	}
	if total > store.MaxPoints {
		return nil, store.TooManyPoints(name, total)
	}
	sort.Slice(list, func(i, j int) bool { return labels.Compare(list[i].ls, list[j].ls) < 0 })
	res := &store.Result{Tier: tier, Step: time.Duration(step) * time.Millisecond, Series: make([]store.Series, 0, len(list))}
	for _, s := range list {
		ts := make([]int64, 0, len(s.pts))
		for t := range s.pts {
			if s.has[t] == 1<<len(aggregations)-1 && s.pts[t][aggCount] > 0 {
				ts = append(ts, t)
			}
		}
		if len(ts) == 0 {
			continue
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		pts := make([]store.Point, len(ts))
		for i, t := range ts {
			v := s.pts[t]
			pts[i] = store.Point{T: t, Min: v[aggMin], Max: v[aggMax], Count: int64(v[aggCount]),
				Avg: metric.RoundAverage(name, v[aggSum]/v[aggCount])}
		}
		res.Series = append(res.Series, store.Series{Labels: toMetricLabels(s.ls), Points: pts})
	}
	return res, nil
}

// toMetricLabels converts labels (sorted, without __name__) to
// metric.Labels.
func toMetricLabels(ls labels.Labels) metric.Labels {
	out := make(metric.Labels, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		if l.Name != labels.MetricName {
			out = append(out, metric.Label{Name: l.Name, Value: l.Value})
		}
	})
	return out
}

// selector is the PromQL vector selector of ms, quoted by the PromQL
// printer (untrusted values cannot escape their string).
func selector(ms []*labels.Matcher) string {
	return (&parser.VectorSelector{LabelMatchers: ms}).String()
}

// closedRanges asks the TSDB once (until it answers) whether its range
// selectors include their left end: count_over_time of a 10s subquery at
// 1s steps is 11 there (Prometheus 2.x), 10 where they do not.
func (c *Client) closedRanges(ctx context.Context) (bool, error) {
	c.mu.Lock()
	closed, probed := c.closed, c.probed
	c.mu.Unlock()
	if probed {
		return closed, nil
	}
	at := time.Now().Add(-time.Minute).Unix() // recent: inside any TSDB's query window
	body, err := c.post(ctx, "/api/v1/query", url.Values{
		"query": {"count_over_time(vector(1)[10s:1s])"}, "time": {strconv.FormatInt(at, 10)},
	})
	if err != nil {
		return false, err
	}
	r, err := decodeSeries(body)
	if err != nil || len(r) != 1 || len(r[0].points) != 1 || (r[0].points[0].v != 10 && r[0].points[0].v != 11) {
		return false, c.unavailable("unexpected answer to the range-semantics probe (is it a Prometheus query API?): %v", err)
	}
	closed = r[0].points[0].v == 11
	c.mu.Lock()
	c.closed, c.probed = closed, true
	c.mu.Unlock()
	c.log.Info("history TSDB range selectors", "url", c.Redacted(), "left_closed", closed)
	return closed, nil
}
