package alert

import (
	"fmt"
	"math"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// maxPreviewMatches caps the preview's list.
const maxPreviewMatches = 500

// PreviewMatch is one series (or machine) a previewed rule selects.
type PreviewMatch struct {
	Machine string            `json:"machine"`
	Labels  map[string]string `json:"labels"`
	// Value is the series' latest sample, or for aggregation "increase"
	// its increase over the window (see Preview.Note), or for offline
	// rules the seconds without data; null when unknown or not finite.
	Value *float64 `json:"value"`
	// State is "would fire" (Value satisfies the condition, ignoring for),
	// "ok", "no data", or "unknown" (aggregation "increase" with no
	// increase known).
	State string `json:"state"`
}

// Preview is what a rule would select and fire on now (the answer of
// POST /api/rules/preview).
type Preview struct {
	Matches   []PreviewMatch `json:"matches"`
	Machines  int            `json:"machines"` // machines the rule selects
	Truncated bool           `json:"truncated"`
	// Note says what Value is when it is not simply the latest sample
	// compared with the threshold: for windowed aggregations.
	Note string `json:"note,omitempty"`
}

// Preview evaluates r against the latest live values, as if it were saved:
// which machines and series it selects and which would fire. Nothing is
// stored. At most 500 matches are listed (Truncated).
func (e *Engine) Preview(r Rule) Preview {
	c := compile(r)
	now := e.now()
	out := Preview{Matches: []PreviewMatch{}}
	if r.Kind == KindThreshold {
		switch w := formatDuration(r.Window); r.Aggregation {
		case AggAvg, AggMax, AggMin:
			out.Note = fmt.Sprintf("values are each series' latest sample, not its %s over %s", r.Aggregation, w)
		case AggIncrease:
			// A counter's latest sample is not its increase: only the
			// engine's own windows know it.
			out.Note = fmt.Sprintf("values are the increase over %s where a saved, enabled rule with aggregation increase and window %s already watches the series, else unknown", w, w)
		}
	}
	add := func(m PreviewMatch) {
		if len(out.Matches) >= maxPreviewMatches {
			out.Truncated = true
			return
		}
		out.Matches = append(out.Matches, m)
	}
	for _, info := range e.opts.Machines.Infos() {
		id := info.Info.ID
		if !c.selects(id, info.Info.Labels) {
			continue
		}
		out.Machines++
		if len(out.Matches) >= maxPreviewMatches {
			out.Truncated = true
			continue
		}
		if r.Kind == KindOffline {
			m := PreviewMatch{Machine: id, Labels: map[string]string{}, State: "ok"}
			if info.LastSeen.IsZero() {
				m.State = "no data"
			} else {
				v := now.Sub(info.LastSeen).Seconds()
				m.Value = &v
				if now.Sub(info.LastSeen) >= r.For {
					m.State = "would fire"
				}
			}
			add(m)
			continue
		}
		mv, _ := e.opts.Machines.Machine(id)
		found := false
		for _, v := range mv.Metrics {
			if v.Name != r.Metric || !matchLabels(c.matchers, v.Labels) {
				continue
			}
			found = true
			m := PreviewMatch{Machine: id, Labels: v.Labels.Map(), State: "ok"}
			val, known := v.Value, true
			if c.agg == aggIncrease {
				val, known = e.windowValue(id, metric.SeriesKey(v.Name, v.Labels), c)
			}
			switch {
			case !known:
				m.State = "unknown"
			case val != val: // a sample without a value
				m.State = "no data"
			case c.breach(val):
				m.State = "would fire"
			}
			if known && !math.IsNaN(val) && !math.IsInf(val, 0) { // JSON has no NaN or ±Inf
				m.Value = &val
			}
			add(m)
		}
		if !found {
			add(PreviewMatch{Machine: id, Labels: map[string]string{}, State: "no data"})
		}
	}
	return out
}

// windowValue is the aggregate the engine keeps for series key of machine
// id in a slot whose rule has c's aggregation and window; false when no
// slot with samples has one.
func (e *Engine) windowValue(id, key string, c *compiled) (float64, bool) {
	e.machinesMu.RLock()
	m := e.machines[id]
	e.machinesMu.RUnlock()
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ss := m.series[key]; ss != nil {
		for _, s := range ss.slots {
			if s.win != nil && s.win.newest != math.MinInt64 && s.rule.sameWindow(c) {
				return s.win.value(), true
			}
		}
	}
	return 0, false
}
