package alert

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// ParseSelector parses a series selector in PromQL form,
// `name{label="value",…}`, into the metric name and its label matchers.
// Only `=` is supported; a value containing '*' is a glob. Values are
// double-quoted with the escapes \" \\ and \n.
func ParseSelector(s string) (name string, matchers map[string]string, err error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return s, nil, nil
	}
	name = strings.TrimSpace(s[:open])
	if !metric.ValidMetricName(name) {
		return "", nil, fmt.Errorf("%q is not a metric name: must match [a-zA-Z_:][a-zA-Z0-9_:]*", truncate(name, 80))
	}
	rest := s[open+1:]
	matchers = map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return "", nil, errors.New("selector: missing closing '}'")
		}
		if rest[0] == '}' {
			if strings.TrimSpace(rest[1:]) != "" {
				return "", nil, fmt.Errorf("selector: unexpected %q after '}'", truncate(rest[1:], 20))
			}
			return name, matchers, nil
		}
		i := 0
		for i < len(rest) && (rest[i] == '_' || (rest[i] >= 'a' && rest[i] <= 'z') || (rest[i] >= 'A' && rest[i] <= 'Z') || (i > 0 && rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		label := rest[:i]
		if label == "" {
			return "", nil, fmt.Errorf("selector: expected a label name at %q", truncate(rest, 20))
		}
		if !metric.ValidLabelName(label) {
			return "", nil, fmt.Errorf("selector: %q is not a label name", label)
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		switch {
		case strings.HasPrefix(rest, "=~"), strings.HasPrefix(rest, "!="), strings.HasPrefix(rest, "!~"):
			return "", nil, fmt.Errorf("selector: %q after %s: only = is supported (use * in the value for a glob)", rest[:2], label)
		case !strings.HasPrefix(rest, "="):
			return "", nil, fmt.Errorf("selector: expected = after %s", label)
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		value, n, err := unquote(rest)
		if err != nil {
			return "", nil, fmt.Errorf("selector: value of %s: %w", label, err)
		}
		if _, dup := matchers[label]; dup {
			return "", nil, fmt.Errorf("selector: label %s given twice", label)
		}
		matchers[label] = value
		rest = strings.TrimLeft(rest[n:], " \t")
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
		} else if !strings.HasPrefix(rest, "}") {
			return "", nil, fmt.Errorf("selector: expected ',' or '}' after the value of %s", label)
		}
	}
}

// unquote reads a double-quoted string at the start of s; n is the number
// of bytes consumed.
func unquote(s string) (v string, n int, err error) {
	if s == "" || s[0] != '"' {
		return "", 0, errors.New(`must be in double quotes`)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) {
				return "", 0, errors.New("unterminated escape")
			}
			switch s[i] {
			case '"', '\\':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			default:
				return "", 0, fmt.Errorf(`unknown escape \%c`, s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("missing closing quote")
}

// FormatSelector writes name{k="v",…} with labels sorted (the inverse of
// ParseSelector).
func FormatSelector(name string, matchers map[string]string) string {
	if len(matchers) == 0 {
		return name
	}
	ls := metric.FromMap(matchers)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// compileMatchers turns label → value matchers into metric.LabelMatchers,
// sorted by label name. A value containing '*' is a glob (metric.Star: '?'
// stands for itself); any other value matches only itself.
func compileMatchers(ms map[string]string) []metric.LabelMatcher {
	out := make([]metric.LabelMatcher, 0, len(ms))
	for _, l := range metric.FromMap(ms) {
		out = append(out, metric.LabelMatcher{Name: l.Name, Value: l.Value})
	}
	return out
}

// matchLabels reports whether every matcher matches ls; an absent label has
// the value "".
func matchLabels(ms []metric.LabelMatcher, ls metric.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name), metric.Star) {
			return false
		}
	}
	return true
}

// matchName reports whether id matches an exact id or glob.
func matchName(pattern, id string) bool { return metric.Glob(pattern, id, metric.Star) }
