package alert

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alert list limits.
const (
	defaultAlertLimit = 500
	maxAlertLimit     = 10000
)

// AlertQuery selects alerts for Alerts.
type AlertQuery struct {
	States   []string // StatePending, StateFiring, StateResolved; empty = pending and firing
	Machine  string
	Rule     string // rule id
	Severity string
	Limit    int // default 500
}

func (q *AlertQuery) has(state string) bool { return slices.Contains(q.States, state) }

func (q *AlertQuery) matches(a *Alert) bool {
	return q.has(a.State) &&
		(q.Machine == "" || q.Machine == a.Machine) &&
		(q.Rule == "" || q.Rule == a.RuleID) &&
		(q.Severity == "" || q.Severity == a.Severity)
}

// Alerts lists alerts: active ones from memory, resolved ones from the
// history; active first (newest first), then resolved (newest first).
func (e *Engine) Alerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	if len(q.States) == 0 {
		q.States = []string{StateFiring, StatePending}
	}
	if q.Limit <= 0 {
		q.Limit = defaultAlertLimit
	}
	var active, fresh []Alert
	e.mu.Lock()
	for _, r := range e.active {
		if q.matches(&r.a) {
			active = append(active, r.snapshot())
		}
	}
	for _, r := range e.dirty { // resolved but not yet written
		if r.a.State == StateResolved && !r.deleted && q.matches(&r.a) {
			fresh = append(fresh, r.snapshot())
		}
	}
	e.mu.Unlock()
	slices.SortFunc(active, func(a, b Alert) int {
		if a.State != b.State {
			if a.State == StateFiring {
				return -1
			}
			return 1
		}
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	out := active
	if q.has(StateResolved) {
		stored, err := queryAlerts(ctx, e.db, alertFilter{
			states: []string{StateResolved}, machine: q.Machine, rule: q.Rule, severity: q.Severity, limit: q.Limit,
		})
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, a := range fresh {
			seen[a.ID] = true
		}
		for _, a := range stored {
			if !seen[a.ID] {
				fresh = append(fresh, a)
			}
		}
		slices.SortFunc(fresh, func(a, b Alert) int {
			return cmp.Or(b.ResolvedAt.Compare(*a.ResolvedAt), cmp.Compare(a.ID, b.ID))
		})
		out = append(out, fresh...)
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	if out == nil {
		out = []Alert{}
	}
	return out, nil
}

// Alert returns one alert by id.
func (e *Engine) Alert(ctx context.Context, id string) (Alert, error) {
	e.mu.Lock()
	r := e.active[id]
	if r == nil {
		r = e.dirty[id]
	}
	var a Alert
	if r != nil && !r.deleted {
		a = r.snapshot()
	}
	e.mu.Unlock()
	if a.ID != "" {
		return a, nil
	}
	if r != nil && r.deleted {
		return Alert{}, notFound("alert %q (a pending alert that never fired)", id)
	}
	return getAlert(ctx, e.db, id)
}

// Acknowledge acknowledges active alert id as who with a comment (ack
// true: no more repeat notifications until it resolves, which clears the
// acknowledgement) or removes the acknowledgement (ack false). A resolved
// alert answers a conflict error.
func (e *Engine) Acknowledge(ctx context.Context, id string, ack bool, who, comment string) (Alert, error) {
	e.mu.Lock()
	r := e.active[id]
	if r == nil {
		e.mu.Unlock()
		if _, err := getAlert(ctx, e.db, id); err != nil {
			return Alert{}, err
		}
		return Alert{}, conflict("alert %q is resolved: there is nothing to acknowledge", id)
	}
	now := e.now().UTC()
	if ack {
		r.a.Acknowledged = true
		r.a.Ack = &Ack{By: who, At: now, Comment: comment}
	} else {
		r.a.Acknowledged = false
		r.a.Ack = nil
	}
	r.a.UpdatedAt = now
	e.dirty[id] = r
	a := r.snapshot()
	e.mu.Unlock()
	return a, nil
}

// parseAlertQuery reads ?state=&machine=&rule=&severity=&limit=.
func parseAlertQuery(r *http.Request) (AlertQuery, error) {
	v := r.URL.Query()
	var q AlertQuery
	if s := v.Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st = strings.TrimSpace(st); st {
			case StatePending, StateFiring, StateResolved:
				if !q.has(st) {
					q.States = append(q.States, st)
				}
			case "all":
				q.States = []string{StateFiring, StatePending, StateResolved}
			default:
				return q, fieldErr("state", "%q: must be firing, pending, resolved or all (or a comma-separated list)", truncate(st, 40))
			}
		}
	}
	q.Machine = v.Get("machine")
	q.Rule = v.Get("rule")
	q.Severity = v.Get("severity")
	if q.Severity != "" && q.Severity != SeverityWarning && q.Severity != SeverityCritical {
		return q, fieldErr("severity", "%q: must be warning or critical", truncate(q.Severity, 40))
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAlertLimit {
			return q, fieldErr("limit", "%q: must be a whole number from 1 to %d", truncate(s, 20), maxAlertLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func (e *Engine) handleListAlerts(w http.ResponseWriter, r *http.Request) {
	q, err := parseAlertQuery(r)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	alerts, err := e.Alerts(r.Context(), q)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerts)
}

func (e *Engine) handleGetAlert(w http.ResponseWriter, r *http.Request) {
	a, err := e.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		e.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (e *Engine) handleAck(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, true)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	var in struct {
		Comment string `json:"comment"`
	}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			e.fail(w, r, jsonFieldError(err))
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			e.fail(w, r, fieldErr("body", "unexpected data after the JSON object"))
			return
		}
	}
	in.Comment = strings.TrimSpace(in.Comment)
	if len(in.Comment) > 1024 {
		e.fail(w, r, fieldErr("comment", "is %d bytes, limit 1024", len(in.Comment)))
		return
	}
	a, err := e.Acknowledge(r.Context(), r.PathValue("id"), true, principal(r), in.Comment)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "alert acknowledged", "alert", a.ID, "rule", a.RuleName, "machine", a.Machine)
	writeJSON(w, http.StatusOK, a)
}

func (e *Engine) handleUnack(w http.ResponseWriter, r *http.Request) {
	a, err := e.Acknowledge(r.Context(), r.PathValue("id"), false, "", "")
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "alert acknowledgement removed", "alert", a.ID)
	writeJSON(w, http.StatusOK, a)
}

// nowUTC is the engine clock in UTC, truncated to milliseconds (what the
// database keeps).
func (e *Engine) nowUTC() time.Time { return e.now().UTC().Truncate(time.Millisecond) }
