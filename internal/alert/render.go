package alert

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Description placeholders: {{machine}}, {{value}}, {{threshold}},
// {{clear}}, {{op}}, {{metric}}, {{rule}}, {{severity}}, {{for}},
// {{window}} and {{labels.NAME}}. Anything else in {{ }} is rejected when the rule is
// saved.
var placeholders = map[string]bool{
	"machine": true, "value": true, "threshold": true, "clear": true, "op": true,
	"metric": true, "rule": true, "severity": true, "for": true, "window": true,
}

// checkTemplate validates the placeholders of a description.
func checkTemplate(t string) error {
	rest := t
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return fmt.Errorf("unclosed {{ at %q", truncate(rest[i:], 20))
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		if !placeholders[name] {
			l, ok := strings.CutPrefix(name, "labels.")
			if !ok || !metric.ValidLabelName(l) {
				return fmt.Errorf("unknown placeholder {{%s}}: use machine, value, threshold, clear, op, metric, rule, severity, for, window or labels.NAME", truncate(name, 40))
			}
		}
		rest = rest[i+j+2:]
	}
}

// renderInput is what a description is rendered with.
type renderInput struct {
	rule    *Rule
	machine string
	labels  metric.Labels
	value   float64
}

// render fills the placeholders of the rule's description (or, when it has
// none, a default description). The result is plain text; agent-provided
// parts (machine, labels) are inserted as they are and must be shown as
// text.
func render(in renderInput) string {
	t := in.rule.Description
	if t == "" {
		t = defaultDescription(in.rule)
	}
	var b strings.Builder
	rest := t
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		b.WriteString(in.placeholder(strings.TrimSpace(rest[i+2 : i+j])))
		rest = rest[i+j+2:]
	}
}

func (in renderInput) placeholder(name string) string {
	r := in.rule
	switch name {
	case "machine":
		return in.machine
	case "value":
		return formatValue(in.value)
	case "threshold":
		return formatValue(r.Threshold)
	case "clear":
		if r.Clear != nil {
			return formatValue(*r.Clear)
		}
		return formatValue(r.Threshold)
	case "op":
		return r.Op
	case "metric":
		return r.Metric
	case "rule":
		return r.Name
	case "severity":
		return r.Severity
	case "for":
		return formatDuration(r.For)
	case "window":
		return formatDuration(r.Window)
	}
	if l, ok := strings.CutPrefix(name, "labels."); ok {
		return in.labels.Get(l)
	}
	return "{{" + name + "}}"
}

func defaultDescription(r *Rule) string {
	if r.Kind == KindOffline {
		return "{{machine}} sent no data for {{for}}"
	}
	return "{{metric}} on {{machine}} is {{value}} ({{op}} {{threshold}})"
}

// formatValue writes v with up to 4 significant decimals, no exponent for
// ordinary magnitudes: 93.2, 0.0012, 1.5e+12.
func formatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	a := math.Abs(v)
	if a != 0 && (a >= 1e12 || a < 1e-4) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if a < 1 {
		s = strconv.FormatFloat(v, 'f', 4, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
