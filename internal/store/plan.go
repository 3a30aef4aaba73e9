package store

import (
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

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
	db       *tsdb.DB
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
	if q.Metric == "" {
		return plan{}, queryError("query: metric name is required")
	}
	if q.From.After(q.To) {
		return plan{}, queryErrorf("query: from (%s) is after to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Step < 0 {
		return plan{}, queryErrorf("query: negative step %s", q.Step)
	}
	ms, err := matchers(q)
	if err != nil {
		return plan{}, err
	}
	step := q.Step
	if step == 0 {
		step = niceStep((q.To.Sub(q.From) + targetPoints - 1) / targetPoints)
	}
	now := s.now()
	p := plan{matchers: ms, machine: q.rollupKey()}
	from := q.From.UnixMilli()
	switch {
	case step < time.Minute && !q.From.Before(now.Add(-s.opts.RetentionRaw)):
		p.tier, p.db = TierRaw, s.raw
	case step < time.Hour && !q.From.Before(now.Add(-s.opts.Retention1m)):
		p.tier, p.db = Tier1m, s.tier1m
	default:
		p.tier, p.db = Tier1h, s.tier1h
	}
	// Never finer than the tier, and whole multiples of its resolution so
	// that rollup buckets never straddle two steps.
	res := tierResolution(p.tier)
	step = max(step, res)
	step = (step + res - 1) / res * res

	p.step = step.Milliseconds()
	p.from = from
	p.mint = floorTo(from, p.step)
	p.maxt = q.To.UnixMilli()
	p.buckets = (floorTo(p.maxt, p.step)-p.mint)/p.step + 1
	if p.buckets > MaxPointsPerSeries {
		return plan{}, queryErrorf("query: %s at step %s would return %d points per series (limit %d); use a larger step or a shorter range",
			q.To.Sub(q.From), step, p.buckets, MaxPointsPerSeries)
	}
	return p, nil
}

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
