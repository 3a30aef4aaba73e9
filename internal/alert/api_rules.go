package alert

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Rules returns every rule, sorted by name then id.
func (e *Engine) Rules() []Rule {
	e.mu.Lock()
	out := make([]Rule, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, r)
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Rule) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

func (e *Engine) rule(id string) (Rule, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rules[id]
	return r, ok
}

// checkNotifiers verifies that every notifier a rule names exists.
func (e *Engine) checkNotifiers(r Rule) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range r.Notifiers {
		if _, ok := e.notifiers[id]; !ok {
			return fieldErr("notifiers", "unknown notifier %q (create it first under /api/notifiers)", id)
		}
	}
	return nil
}

// CreateRule stores a new rule (an id is generated when r has none) and
// applies it to the live stream.
func (e *Engine) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if r.ID == "" {
		r.ID = newID()
	} else if _, ok := e.rule(r.ID); ok {
		return Rule{}, conflict("rule id %q is taken; leave id out to get a new one", r.ID)
	}
	if err := e.checkNotifiers(r); err != nil {
		return Rule{}, err
	}
	now := e.now().UTC().Truncate(time.Millisecond)
	r.Builtin, r.Provisioned = false, false
	r.CreatedAt, r.UpdatedAt = now, now
	if err := saveRule(ctx, e.db, r); err != nil {
		return Rule{}, err
	}
	e.mu.Lock()
	e.rules[r.ID] = r
	e.bumpLocked()
	e.mu.Unlock()
	return r, nil
}

// UpdateRule replaces rule id with r (keeping its id, builtin mark and
// creation time).
func (e *Engine) UpdateRule(ctx context.Context, id string, r Rule) (Rule, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.rule(id)
	if !ok {
		return Rule{}, notFound("rule %q", id)
	}
	if old.Provisioned {
		return Rule{}, conflict("rule %q is provisioned from the alerts config file (--alerts-config) and read-only here; change it in the file and restart the hub", id)
	}
	if r.ID != "" && r.ID != id {
		return Rule{}, fieldErr("id", "%q does not match the rule in the URL (%q)", r.ID, id)
	}
	if err := e.checkNotifiers(r); err != nil {
		return Rule{}, err
	}
	r.ID, r.Builtin, r.Provisioned, r.CreatedAt = id, old.Builtin, false, old.CreatedAt
	r.UpdatedAt = e.now().UTC().Truncate(time.Millisecond)
	if err := saveRule(ctx, e.db, r); err != nil {
		return Rule{}, err
	}
	e.mu.Lock()
	e.rules[id] = r
	e.bumpLocked()
	e.mu.Unlock()
	return r, nil
}

// DeleteRule removes rule id; its active alerts resolve.
func (e *Engine) DeleteRule(ctx context.Context, id string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.rule(id)
	if !ok {
		return notFound("rule %q", id)
	}
	if old.Provisioned {
		return conflict("rule %q is provisioned from the alerts config file (--alerts-config) and read-only here; remove it from the file and restart the hub", id)
	}
	if err := deleteRow(ctx, e.db, "alert_rules", id); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.rules, id)
	e.bumpLocked()
	e.mu.Unlock()
	return nil
}

func (e *Engine) handleListRules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Rules())
}

func (e *Engine) handleGetRule(w http.ResponseWriter, r *http.Request) {
	rule, ok := e.rule(r.PathValue("id"))
	if !ok {
		e.fail(w, r, notFound("rule %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

// decodeRuleRequest reads and validates a rule body.
func decodeRuleRequest(w http.ResponseWriter, r *http.Request) (Rule, error) {
	b, err := readBody(w, r, false)
	if err != nil {
		return Rule{}, err
	}
	return DecodeRule(b)
}

func (e *Engine) handleCreateRule(w http.ResponseWriter, r *http.Request) {
	rule, err := decodeRuleRequest(w, r)
	if err == nil {
		rule, err = e.CreateRule(r.Context(), rule)
	}
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "alert rule created", "rule", rule.ID, "name", rule.Name)
	writeJSON(w, http.StatusCreated, rule)
}

func (e *Engine) handleUpdateRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := e.rule(id); !ok {
		e.fail(w, r, notFound("rule %q", id))
		return
	}
	rule, err := decodeRuleRequest(w, r)
	if err == nil {
		rule, err = e.UpdateRule(r.Context(), id, rule)
	}
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "alert rule updated", "rule", rule.ID, "name", rule.Name)
	writeJSON(w, http.StatusOK, rule)
}

func (e *Engine) handleDeleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := e.DeleteRule(r.Context(), id); err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "alert rule deleted", "rule", id)
	w.WriteHeader(http.StatusNoContent)
}

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

// Preview is the answer of POST /api/rules/preview.
type Preview struct {
	Matches   []PreviewMatch `json:"matches"`
	Machines  int            `json:"machines"` // machines the rule selects
	Truncated bool           `json:"truncated"`
	// Note says what Value is when it is not simply the latest sample
	// compared with the threshold: for windowed aggregations.
	Note string `json:"note,omitempty"`
}

// preview evaluates a rule against the latest live values.
func (e *Engine) preview(r Rule) Preview {
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

func (e *Engine) handlePreview(w http.ResponseWriter, r *http.Request) {
	rule, err := decodeRuleRequest(w, r)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e.preview(rule))
}
