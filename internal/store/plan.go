package store

import (
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Limits that bound one query's work.
const (
	MaxPointsPerSeries = 11_000
	MaxSeries          = 10_000
	// MaxPoints bounds the points of all series of one query together.
	MaxPoints = 11_000_000
	// targetPoints is how many points a query with Step 0 aims for.
	targetPoints = 600
)

// niceSteps are the steps Step 0 picks from; beyond the last, whole days.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// niceStep returns the smallest nice step ≥ d.
func niceStep(d time.Duration) time.Duration {
	for _, s := range niceSteps {
		if s >= d {
			return s
		}
	}
	const day = 24 * time.Hour
	return (d + day - 1) / day * day
}

// tierResolution is the spacing of each tier's points.
func tierResolution(tier string) time.Duration {
	switch tier {
	case Tier1m:
		return time.Minute
	case Tier1h:
		return time.Hour
	default:
		return time.Second
	}
}

// plan is a validated query: the tier, the step and the aligned range.
type plan struct {
	tier     string
	db       tierSource
	step     int64 // ms
	mint     int64 // ms, start of the first step bucket
	from     int64 // ms, Query.From: no sample before it is read
	maxt     int64 // ms, inclusive
	buckets  int64 // step buckets in [mint, maxt]
	matchers []*labels.Matcher
	machine  string // Query.Machine when it is a machine label's value, else ""
}

// planQuery checks q and picks tier and step as documented on Query.
func (s *Store) planQuery(q Query) (plan, error) {
	step, err := CheckQuery(q)
	if err != nil {
		return plan{}, err
	}
	ms, err := matchers(q)
	if err != nil {
		return plan{}, err
	}
	now := s.now()
	p := plan{matchers: ms, machine: q.rollupKey()}
	switch {
	case step < time.Minute && !q.From.Before(now.Add(-s.opts.RetentionRaw)):
		p.tier, p.db = TierRaw, s.raw
	case step < time.Hour && !q.From.Before(now.Add(-s.opts.Retention1m)):
		p.tier, p.db = Tier1m, s.tier1m
	default:
		p.tier, p.db = Tier1h, s.tier1h
	}
	g, err := NewGrid(q, step, p.tier)
	if err != nil {
		return plan{}, err
	}
	p.step, p.from, p.mint, p.maxt, p.buckets = g.Step, g.From, g.Mint, g.Maxt, g.Buckets
	return p, nil
}

// CheckQuery checks what Query requires of q (a metric, from ≤ to, a step
// ≥ 0, no reserved label matcher) and returns its step: q.Step, or for 0
// the nice step that gives about 600 points.
func CheckQuery(q Query) (time.Duration, error) {
	if q.Metric == "" {
		return 0, queryError("query: metric name is required")
	}
	if q.From.After(q.To) {
		return 0, queryErrorf("query: from (%s) is after to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Step < 0 {
		return 0, queryErrorf("query: negative step %s", q.Step)
	}
	if _, err := matchers(q); err != nil {
		return 0, err
	}
	if q.Step == 0 {
		return niceStep((q.To.Sub(q.From) + targetPoints - 1) / targetPoints), nil
	}
	return q.Step, nil
}

// TierFor is the tier a step is read from when every tier holds the
// range: raw under a minute, 1m under an hour, else 1h.
func TierFor(step time.Duration) string {
	switch {
	case step < time.Minute:
		return TierRaw
	case step < time.Hour:
		return Tier1m
	default:
		return Tier1h
	}
}

// Grid is the bucket grid of a query read at a tier's resolution: step
// buckets [T, T+Step) aligned to multiples of Step since the Unix epoch,
// from the one holding From to the one holding Maxt.
type Grid struct {
	Step    int64 // ms, a whole multiple of the tier's resolution
	From    int64 // ms, Query.From: no sample before it counts
	Mint    int64 // ms, start of the first bucket (≤ From)
	Maxt    int64 // ms, Query.To, inclusive
	Buckets int64 // buckets in [Mint, Maxt]
}

// NewGrid rounds step up to a whole multiple of the tier's resolution
// (never finer than the tier, so rollup buckets never straddle two steps)
// and lays q's range on it; more than MaxPointsPerSeries buckets is a
// QueryError.
func NewGrid(q Query, step time.Duration, tier string) (Grid, error) {
	res := tierResolution(tier)
	step = max(step, res)
	step = (step + res - 1) / res * res
	g := Grid{Step: step.Milliseconds(), From: q.From.UnixMilli(), Maxt: q.To.UnixMilli()}
	g.Mint = floorTo(g.From, g.Step)
	g.Buckets = (floorTo(g.Maxt, g.Step)-g.Mint)/g.Step + 1
	if g.Buckets > MaxPointsPerSeries {
		return Grid{}, queryErrorf("query: %s at step %s would return %d points per series (limit %d); use a larger step or a shorter range",
			q.To.Sub(q.From), step, g.Buckets, MaxPointsPerSeries)
	}
	return g, nil
}

// FloorTo rounds t (ms) down to a multiple of step (ms), also for t < 0.
func FloorTo(t, step int64) int64 { return floorTo(t, step) }

// rawCovers reports whether the raw tier holds every stored sample from
// from (ms) on: from is at or after its oldest sample, or no rollup tier
// holds anything older than that (the data is simply younger than from, as
// on a young hub). Retention drops whole blocks, oldest first, so the raw
// tier is complete from its oldest sample on.
func (s *Store) rawCovers(from int64) bool {
	start, _ := s.raw.StartTime() // never fails
	if from >= start {
		return true
	}
	// The rollups begin at the raw tier's first minute and hour.
	m, _ := s.tier1m.StartTime()
	h, _ := s.tier1h.StartTime()
	return m >= floorTo(start, minuteMs) && h >= floorTo(start, hourMs)
}

// minuteCovers is rawCovers for the 1m tier against the 1h tier.
func (s *Store) minuteCovers(from int64) bool {
	start, _ := s.tier1m.StartTime()
	if from >= start {
		return true
	}
	h, _ := s.tier1h.StartTime()
	return h >= floorTo(start, hourMs)
}

// rollupKey is the rollup watermark that q's series are under, when q
// names one: rollups are kept per machine label value, so a machine by
// another label (remote write) reads under every watermark, each series
// in the window of its own machine label.
func (q Query) rollupKey() string {
	if q.MachineLabel != "" && q.MachineLabel != metric.MachineLabel {
		return ""
	}
	return q.Machine
}

// matchers builds the TSDB matchers of q. An empty Metric matches every
// metric (Export only).
func matchers(q Query) ([]*labels.Matcher, error) {
	var ms []*labels.Matcher
	if q.Metric != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, q.Metric))
	} else {
		ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	}
	if q.Machine != "" {
		name := q.MachineLabel
		if name == "" {
			name = metric.MachineLabel
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, name, q.Machine))
	}
	for k, v := range q.Matchers {
		if strings.HasPrefix(k, "__") {
			return nil, queryErrorf("query: label %q is reserved and cannot be matched", k)
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, v))
	}
	return ms, nil
}

// toMetricLabels converts TSDB labels to metric.Labels, dropping __name__
// and __rollup__; both are sorted by name.
func toMetricLabels(ls labels.Labels) metric.Labels {
	out := make(metric.Labels, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		if l.Name == labels.MetricName || l.Name == rollupLabel {
			return
		}
		out = append(out, metric.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

// Matchers are the label matchers that select q's series: __name__ (any
// metric when Metric is ""), the machine label, and q.Matchers; a reserved
// (__-prefixed) label in q.Matchers is a QueryError.
func Matchers(q Query) ([]*labels.Matcher, error) { return matchers(q) }
