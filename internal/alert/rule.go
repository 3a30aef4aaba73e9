package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Rule kinds.
const (
	KindThreshold = "threshold" // a metric compared with a threshold
	KindOffline   = "offline"   // a machine that sent no data for For
)

// Severities.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Aggregations over Rule.Window.
const (
	AggLast = "last"
	AggAvg  = "avg"
	AggMax  = "max"
	AggMin  = "min"
	// AggIncrease is the increase of a counter over the window: the sum of
	// the rises between consecutive samples, a fall (counter reset)
	// counting as the new value.
	AggIncrease = "increase"
)

// Limits of rule fields.
const (
	maxNameLen        = 200
	maxDescriptionLen = 4096
	maxMatchers       = 30
	maxMachines       = 1000
	maxNotifiers      = 50
	maxFor            = 7 * 24 * time.Hour
	maxWindow         = 24 * time.Hour
	maxIDLen          = 64
)

// Rule is one alert rule. Its JSON form is the API's (see docs/alerts.md).
type Rule struct {
	ID   string
	Name string
	Kind string // KindThreshold or KindOffline
	// Metric and Matchers select the series (threshold rules): label →
	// value, exact, or a glob when the value contains '*'.
	Metric   string
	Matchers map[string]string
	// Machines selects machines by id or glob; nil means every machine.
	Machines []string
	// MachineLabels selects machines by their agent labels (exact or glob).
	MachineLabels map[string]string
	Op            string  // ">", ">=", "<", "<="
	Threshold     float64 // threshold rules
	// Clear, when set, is the hysteresis threshold: a firing alert resolves
	// only once the value no longer satisfies Op against Clear.
	Clear *float64
	// For is how long the condition must hold before firing; for offline
	// rules, how long without data.
	For         time.Duration
	Aggregation string        // AggLast, AggAvg, AggMax, AggMin or AggIncrease
	Window      time.Duration // aggregation window; 0 for AggLast
	Severity    string        // SeverityWarning or SeverityCritical
	// Description is a template: {{machine}}, {{value}}, {{threshold}},
	// {{labels.NAME}} and more (see render.go).
	Description string
	Notifiers   []string // notifier ids; empty routes by severity
	Enabled     bool
	Builtin     bool // shipped default
	Provisioned bool // from --alerts-config: read-only in the API
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// FieldError is a validation error naming the offending field.
type FieldError struct {
	Field string
	Msg   string
}

// Error is "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ruleJSON is the wire form of a Rule.
type ruleJSON struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Metric        string            `json:"metric,omitempty"`
	Matchers      map[string]string `json:"matchers"`
	Machines      json.RawMessage   `json:"machines"`
	MachineLabels map[string]string `json:"machine_labels"`
	Op            string            `json:"op,omitempty"`
	Threshold     *float64          `json:"threshold,omitempty"`
	Clear         *float64          `json:"clear"`
	For           string            `json:"for"`
	Aggregation   string            `json:"aggregation"`
	Window        string            `json:"window,omitempty"`
	Severity      string            `json:"severity"`
	Description   string            `json:"description"`
	Notifiers     []string          `json:"notifiers"`
	Enabled       *bool             `json:"enabled"`
	Builtin       bool              `json:"builtin"`
	Provisioned   bool              `json:"provisioned"`
	CreatedAt     *time.Time        `json:"created_at,omitempty"`
	UpdatedAt     *time.Time        `json:"updated_at,omitempty"`
}

// MarshalJSON encodes the rule in its API form: "machines" is "*" for every
// machine, durations are Go duration strings, times RFC 3339.
func (r Rule) MarshalJSON() ([]byte, error) {
	j := ruleJSON{
		ID: r.ID, Name: r.Name, Kind: r.Kind, Metric: r.Metric,
		Matchers: r.Matchers, MachineLabels: r.MachineLabels, Op: r.Op,
		Clear: r.Clear, For: formatDuration(r.For), Aggregation: r.Aggregation,
		Severity: r.Severity, Description: r.Description, Notifiers: r.Notifiers,
		Enabled: &r.Enabled, Builtin: r.Builtin, Provisioned: r.Provisioned,
	}
	if j.Matchers == nil {
		j.Matchers = map[string]string{}
	}
	if j.MachineLabels == nil {
		j.MachineLabels = map[string]string{}
	}
	if j.Notifiers == nil {
		j.Notifiers = []string{}
	}
	if r.Kind == KindThreshold {
		th := r.Threshold
		j.Threshold = &th
		if r.Aggregation != AggLast {
			j.Window = formatDuration(r.Window)
		}
	} else {
		j.Aggregation = ""
	}
	if len(r.Machines) == 0 {
		j.Machines = json.RawMessage(`"*"`)
	} else {
		b, err := json.Marshal(r.Machines)
		if err != nil {
			return nil, err
		}
		j.Machines = b
	}
	if !r.CreatedAt.IsZero() {
		t := r.CreatedAt.UTC()
		j.CreatedAt = &t
	}
	if !r.UpdatedAt.IsZero() {
		t := r.UpdatedAt.UTC()
		j.UpdatedAt = &t
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes and validates a rule like DecodeRule.
func (r *Rule) UnmarshalJSON(b []byte) error {
	d, err := DecodeRule(b)
	if err != nil {
		return err
	}
	*r = d
	return nil
}

// DecodeRule parses a rule from its JSON form, fills in defaults and
// validates it; the error names the offending field ("threshold: …").
// Unknown fields are errors. id, builtin, provisioned, created_at and
// updated_at are read but are the caller's to trust or overwrite.
func DecodeRule(b []byte) (Rule, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j ruleJSON
	if err := dec.Decode(&j); err != nil {
		return Rule{}, jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Rule{}, fieldErr("body", "unexpected data after the JSON object")
	}
	return j.rule()
}

// jsonFieldError rewrites encoding/json errors so that they name the field.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(te.Field, "must be a %s, not a JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr("body", "invalid JSON at byte %d: %v", se.Offset, err)
	}
	if errors.Is(err, io.EOF) {
		return fieldErr("body", "empty; send a JSON object")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fieldErr(strings.Trim(f, `"`), "unknown field")
	}
	return fieldErr("body", "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "float64", "int", "int64":
		return "number"
	case "ptr":
		return "value of the right type"
	case "map":
		return "object"
	case "slice":
		return "list"
	}
	return k
}

// rule converts and validates the wire form.
func (j *ruleJSON) rule() (Rule, error) {
	r := Rule{
		ID: j.ID, Name: strings.TrimSpace(j.Name), Kind: j.Kind, Metric: strings.TrimSpace(j.Metric),
		MachineLabels: j.MachineLabels, Op: j.Op, Clear: j.Clear,
		Aggregation: j.Aggregation, Severity: j.Severity, Description: j.Description,
		Notifiers: j.Notifiers, Builtin: j.Builtin, Provisioned: j.Provisioned, Enabled: true,
	}
	if j.Enabled != nil {
		r.Enabled = *j.Enabled
	}
	if j.CreatedAt != nil {
		r.CreatedAt = *j.CreatedAt
	}
	if j.UpdatedAt != nil {
		r.UpdatedAt = *j.UpdatedAt
	}
	if r.Kind == "" {
		r.Kind = KindThreshold
	}
	if len(j.Matchers) > 0 {
		r.Matchers = make(map[string]string, len(j.Matchers))
		for k, v := range j.Matchers {
			r.Matchers[k] = v
		}
	}
	if err := r.parseMachines(j.Machines); err != nil {
		return Rule{}, err
	}
	var err error
	if j.For != "" {
		if r.For, err = parseDuration(j.For); err != nil {
			return Rule{}, fieldErr("for", "%v", err)
		}
	} else if r.Kind == KindOffline {
		r.For = time.Minute
	}
	if j.Window != "" {
		if r.Window, err = parseDuration(j.Window); err != nil {
			return Rule{}, fieldErr("window", "%v", err)
		}
	}
	if j.Threshold != nil {
		r.Threshold = *j.Threshold
	} else if r.Kind == KindThreshold {
		return Rule{}, fieldErr("threshold", "required: the number the value is compared with")
	}
	if r.Kind == KindThreshold && strings.Contains(r.Metric, "{") {
		name, ms, err := ParseSelector(r.Metric)
		if err != nil {
			return Rule{}, fieldErr("metric", "%v", err)
		}
		r.Metric = name
		for k, v := range ms {
			if old, dup := r.Matchers[k]; dup && old != v {
				return Rule{}, fieldErr("matchers", "label %q is given in both the metric selector (%q) and matchers (%q)", k, v, old)
			}
			if r.Matchers == nil {
				r.Matchers = map[string]string{}
			}
			r.Matchers[k] = v
		}
	}
	if len(r.MachineLabels) == 0 {
		r.MachineLabels = nil
	}
	if len(r.Notifiers) == 0 {
		r.Notifiers = nil
	}
	if err := r.normalize(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// parseMachines reads "machines": "*", a single id or glob, or a list.
func (r *Rule) parseMachines(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one = strings.TrimSpace(one); one != "" && one != "*" {
			r.Machines = []string{one}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return fieldErr("machines", `must be "*" or a list of machine ids or globs`)
	}
	if len(list) == 0 {
		return fieldErr("machines", `an empty list matches no machine; use "*" for every machine`)
	}
	for _, m := range list {
		if m == "*" {
			return nil // every machine
		}
	}
	r.Machines = list
	return nil
}

// normalize fills defaults and validates every field.
func (r *Rule) normalize() error {
	if r.ID != "" && !validID(r.ID) {
		return fieldErr("id", "%q: use 1–%d letters, digits, '-', '_' or '.'", truncate(r.ID, 80), maxIDLen)
	}
	if r.Name == "" {
		return fieldErr("name", "required")
	}
	if len(r.Name) > maxNameLen {
		return fieldErr("name", "is %d bytes, limit %d", len(r.Name), maxNameLen)
	}
	if r.Severity == "" {
		r.Severity = SeverityWarning
	}
	if r.Severity != SeverityWarning && r.Severity != SeverityCritical {
		return fieldErr("severity", "%q: must be %q or %q", truncate(r.Severity, 40), SeverityWarning, SeverityCritical)
	}
	if len(r.Machines) > maxMachines {
		return fieldErr("machines", "%d entries, limit %d", len(r.Machines), maxMachines)
	}
	for _, m := range r.Machines {
		if m == "" {
			return fieldErr("machines", "empty machine id")
		}
		if strings.Contains(m, "*") {
			if len(m) > 256 {
				return fieldErr("machines", "glob %q is too long", truncate(m, 40))
			}
			continue
		}
		if err := metric.ValidateMachineID(m); err != nil {
			return fieldErr("machines", "%q: %v", truncate(m, 80), err)
		}
	}
	if err := validateLabelMatchers("machine_labels", r.MachineLabels); err != nil {
		return err
	}
	if len(r.Description) > maxDescriptionLen {
		return fieldErr("description", "is %d bytes, limit %d", len(r.Description), maxDescriptionLen)
	}
	if err := checkTemplate(r.Description); err != nil {
		return fieldErr("description", "%v", err)
	}
	if len(r.Notifiers) > maxNotifiers {
		return fieldErr("notifiers", "%d entries, limit %d", len(r.Notifiers), maxNotifiers)
	}
	seen := map[string]bool{}
	for _, n := range r.Notifiers {
		if !validID(n) {
			return fieldErr("notifiers", "%q is not a notifier id", truncate(n, 80))
		}
		if seen[n] {
			return fieldErr("notifiers", "%q is listed twice", n)
		}
		seen[n] = true
	}
	if r.For < 0 || r.For > maxFor {
		return fieldErr("for", "%s: must be between 0s and %s", formatDuration(r.For), formatDuration(maxFor))
	}
	switch r.Kind {
	case KindOffline:
		return r.normalizeOffline()
	case KindThreshold:
		return r.normalizeThreshold()
	}
	return fieldErr("kind", "%q: must be %q or %q", truncate(r.Kind, 40), KindThreshold, KindOffline)
}

func (r *Rule) normalizeOffline() error {
	switch {
	case r.Metric != "":
		return fieldErr("metric", "not used by offline rules (they watch for any data); leave it out")
	case len(r.Matchers) > 0:
		return fieldErr("matchers", "not used by offline rules; leave them out")
	case r.Op != "":
		return fieldErr("op", "not used by offline rules; leave it out")
	case r.Clear != nil:
		return fieldErr("clear", "not used by offline rules; leave it out")
	case r.Aggregation != "" && r.Aggregation != AggLast:
		return fieldErr("aggregation", "not used by offline rules; leave it out")
	case r.Window != 0:
		return fieldErr("window", "not used by offline rules; leave it out")
	case r.For < time.Second:
		return fieldErr("for", "%s: an offline rule needs at least 1s without data", formatDuration(r.For))
	}
	r.Threshold = 0
	r.Aggregation = ""
	return nil
}

func (r *Rule) normalizeThreshold() error {
	if r.Metric == "" {
		return fieldErr("metric", `required, e.g. "cpu_usage_percent" or "filesystem_usage_percent{mountpoint=\"/\"}"`)
	}
	if len(r.Metric) > metric.DefaultLimits.MaxNameLength || !metric.ValidMetricName(r.Metric) {
		return fieldErr("metric", "%q is not a metric name: must match [a-zA-Z_:][a-zA-Z0-9_:]*", truncate(r.Metric, 80))
	}
	if err := validateLabelMatchers("matchers", r.Matchers); err != nil {
		return err
	}
	if _, ok := parseOp(r.Op); !ok {
		if r.Op == "" {
			return fieldErr("op", `required: one of ">", ">=", "<", "<="`)
		}
		return fieldErr("op", `%q: must be one of ">", ">=", "<", "<="`, truncate(r.Op, 20))
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		return fieldErr("threshold", "must be a finite number")
	}
	if c := r.Clear; c != nil {
		if math.IsNaN(*c) || math.IsInf(*c, 0) {
			return fieldErr("clear", "must be a finite number")
		}
		switch r.Op {
		case ">", ">=":
			if *c > r.Threshold {
				return fieldErr("clear", "%g is above the threshold %g: with %q the alert clears below the threshold, so clear must be ≤ threshold", *c, r.Threshold, r.Op)
			}
		default:
			if *c < r.Threshold {
				return fieldErr("clear", "%g is below the threshold %g: with %q the alert clears above the threshold, so clear must be ≥ threshold", *c, r.Threshold, r.Op)
			}
		}
	}
	if r.Aggregation == "" {
		r.Aggregation = AggLast
	}
	switch r.Aggregation {
	case AggLast:
		if r.Window != 0 {
			return fieldErr("window", `only used with aggregation "avg", "max", "min" or "increase"; leave it out for "last"`)
		}
	case AggAvg, AggMax, AggMin, AggIncrease:
		if r.Window == 0 {
			r.Window = r.For
		}
		if r.Window < time.Second {
			r.Window = time.Second
		}
		if r.Window > maxWindow {
			return fieldErr("window", "%s: at most %s", formatDuration(r.Window), formatDuration(maxWindow))
		}
	default:
		return fieldErr("aggregation", `%q: must be "last", "avg", "max", "min" or "increase"`, truncate(r.Aggregation, 20))
	}
	return nil
}

// validateLabelMatchers checks a label → value-or-glob map.
func validateLabelMatchers(field string, ms map[string]string) error {
	if len(ms) > maxMatchers {
		return fieldErr(field, "%d labels, limit %d", len(ms), maxMatchers)
	}
	for k, v := range ms {
		if !metric.ValidLabelName(k) {
			return fieldErr(field, "%q is not a label name: must match [a-zA-Z_][a-zA-Z0-9_]*", truncate(k, 80))
		}
		if len(v) > metric.DefaultLimits.MaxLabelValueLength {
			return fieldErr(field, "value of %q is %d bytes, limit %d", k, len(v), metric.DefaultLimits.MaxLabelValueLength)
		}
	}
	return nil
}

// validID reports whether s is a usable id: 1–64 of [A-Za-z0-9_.-].
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			continue
		}
		return false
	}
	return true
}

// parseDuration parses a Go duration ("90s", "5m", "1h30m"); "0" is 0.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use e.g. \"30s\", \"5m\", \"1h\"", truncate(s, 40))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", s)
	}
	return d, nil
}

// formatDuration writes d like "5m", "1h30m", "90s", "500ms", "0s": Go's
// form without zero units.
func formatDuration(d time.Duration) string {
	s := d.String()
	if d%time.Second == 0 && d != 0 {
		if strings.HasSuffix(s, "m0s") {
			s = s[:len(s)-2]
		}
		if strings.HasSuffix(s, "h0m") {
			s = s[:len(s)-2]
		}
	}
	return s
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// equalStrings reports whether two string lists are equal.
func equalStrings(a, b []string) bool { return slices.Equal(a, b) }
