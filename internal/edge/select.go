package edge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// DefaultMetrics is the default public metric set: the headline values of
// the overview. Everything else (per-CPU usage, memory bytes, disks,
// processes, services, sensors, custom metrics) stays on the hub.
const DefaultMetrics = `cpu_usage_percent{cpu="total"},memory_usage_percent,load1,load5,load15,` +
	`filesystem_usage_percent,network_receive_bytes_per_second,network_transmit_bytes_per_second,uptime_seconds`

// glob matches a pattern where * is any run of characters (including none,
// and including /) and ? is one character; every other character stands
// for itself (metric.StarQuestion).
func glob(pattern, s string) bool { return metric.Glob(pattern, s, metric.StarQuestion) }

// Globs is a list of glob patterns (see MachineFilter for the syntax).
type Globs struct {
	include []string
	exclude []string
}

// ParseGlobs parses a comma-separated list of globs: * is any run of
// characters, ? one character; a pattern starting with ! excludes. A name
// matches when it matches an include pattern and no exclude pattern; with
// only exclude patterns, every other name matches. An empty list matches
// nothing.
func ParseGlobs(s string) (Globs, error) {
	var g Globs
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.HasPrefix(p, "!") {
			if p = strings.TrimSpace(p[1:]); p == "" {
				return Globs{}, errors.New(`"!" without a pattern`)
			}
			g.exclude = append(g.exclude, p)
			continue
		}
		g.include = append(g.include, p)
	}
	if len(g.include) == 0 && len(g.exclude) > 0 {
		g.include = []string{"*"}
	}
	return g, nil
}

// Empty reports whether the list matches nothing.
func (g Globs) Empty() bool { return len(g.include) == 0 }

// Match reports whether name passes the list.
func (g Globs) Match(name string) bool {
	ok := false
	for _, p := range g.include {
		if glob(p, name) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, p := range g.exclude {
		if glob(p, name) {
			return false
		}
	}
	return true
}

// Selector picks series: a metric name (globs allowed) and optional label
// matchers, e.g. cpu_usage_percent{cpu="total"} or network_*{interface="eth0"}.
type Selector struct {
	Name     string
	Matchers []LabelMatcher
}

// LabelMatcher requires a label's value to match a glob (= ) or not (!=).
// A missing label has the value "".
type LabelMatcher = metric.LabelMatcher

// Match reports whether the series name{labels} is selected.
func (sel Selector) Match(name string, labels func(string) string) bool {
	if !glob(sel.Name, name) {
		return false
	}
	for _, m := range sel.Matchers {
		if !m.Matches(labels(m.Name), metric.StarQuestion) {
			return false
		}
	}
	return true
}

// String is the selector in its parsed syntax.
func (sel Selector) String() string {
	if len(sel.Matchers) == 0 {
		return sel.Name
	}
	parts := make([]string, len(sel.Matchers))
	for i, m := range sel.Matchers {
		op := "="
		if m.Not {
			op = "!="
		}
		parts[i] = m.Name + op + strconv.Quote(m.Value)
	}
	return sel.Name + "{" + strings.Join(parts, ",") + "}"
}

// Selectors is a list of selectors; a series is public when any selects it.
type Selectors []Selector

// Match reports whether any selector picks the series.
func (ss Selectors) Match(name string, labels func(string) string) bool {
	for _, s := range ss {
		if s.Match(name, labels) {
			return true
		}
	}
	return false
}

// MatchName reports whether some selector could pick a series of this
// name (its label matchers aside): a cheap first test.
func (ss Selectors) MatchName(name string) bool {
	for _, s := range ss {
		if glob(s.Name, name) {
			return true
		}
	}
	return false
}

// ParseSelectors parses a comma-separated list of selectors such as
// DefaultMetrics. Commas inside {…} separate matchers, not selectors.
func ParseSelectors(s string) (Selectors, error) {
	var out Selectors
	for len(strings.TrimSpace(s)) > 0 {
		sel, rest, err := parseSelector(strings.TrimLeft(s, " \t"))
		if err != nil {
			return nil, err
		}
		out = append(out, sel)
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("selector %s: unexpected %q, want , between selectors", sel, clip(rest))
		}
		s = rest[1:]
	}
	return out, nil
}

// isNameChar reports whether c may appear in a metric name pattern.
func isNameChar(c byte) bool {
	return c == '_' || c == ':' || c == '*' || c == '?' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func parseSelector(s string) (Selector, string, error) {
	i := 0
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if i == 0 {
		return Selector{}, "", fmt.Errorf("selector %q: want a metric name (globs * and ? allowed) first", clip(s))
	}
	sel := Selector{Name: s[:i]}
	if plain := strings.NewReplacer("*", "a", "?", "a").Replace(sel.Name); !metric.ValidMetricName(plain) {
		return Selector{}, "", fmt.Errorf("selector %q: invalid metric name", sel.Name)
	}
	s = strings.TrimLeft(s[i:], " \t")
	if s == "" || s[0] != '{' {
		return sel, s, nil
	}
	s = s[1:]
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return sel, s[1:], nil
		}
		j := 0
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > 0 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == 0 || !metric.ValidLabelName(s[:j]) {
			return Selector{}, "", fmt.Errorf("selector %s{…}: want a label name at %q", sel.Name, clip(s))
		}
		m := LabelMatcher{Name: s[:j]}
		s = strings.TrimLeft(s[j:], " \t")
		switch {
		case strings.HasPrefix(s, "!="):
			m.Not = true
			s = s[2:]
		case strings.HasPrefix(s, "="):
			s = s[1:]
		default:
			return Selector{}, "", fmt.Errorf("selector %s{%s…}: want = or != after the label name", sel.Name, m.Name)
		}
		s = strings.TrimLeft(s, " \t")
		q, err := strconv.QuotedPrefix(s)
		if err != nil || q[0] != '"' {
			return Selector{}, "", fmt.Errorf("selector %s{%s…}: want a double-quoted value", sel.Name, m.Name)
		}
		m.Value, _ = strconv.Unquote(q)
		sel.Matchers = append(sel.Matchers, m)
		s = strings.TrimLeft(s[len(q):], " \t")
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
		default:
			return Selector{}, "", fmt.Errorf("selector %s{…}: missing }", sel.Name)
		}
	}
}
