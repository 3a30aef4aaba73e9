package collect

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// maxTextfileSamples bounds the samples of one textfile, so a runaway script
// cannot flood the hub with series.
const maxTextfileSamples = 10000

// parseTextfile parses the Prometheus text exposition format (version 0.0.4,
// as node_exporter's textfile collector reads it) strictly:
//
//	# HELP name free text
//	# TYPE name counter|gauge|histogram|summary|untyped
//	name{label="value",…} value [timestamp_ms]
//
// Other "#" lines are comments. Every sample must have a valid metric name,
// valid, unique label names (metric.DefaultLimits; the machine label is the
// hub's), label values with only the \\, \" and \n escapes, a finite value
// (NaN and ±Inf are rejected: the hub refuses them) and an optional integer
// timestamp, which is ignored (the agent stamps the tick). A metric's TYPE
// and HELP may appear once, before its samples; a series may appear once.
// The first error rejects the whole file. Labels of the returned samples
// are sorted.
func parseTextfile(data []byte) ([]metric.Sample, error) {
	var (
		out   []metric.Sample
		seen  = map[string]struct{}{}
		typed = map[string]bool{} // metric name → has TYPE
		help  = map[string]bool{}
		lbuf  []metric.Label
	)
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data = nextLine(data)
		line = bytes.TrimRight(line, " \t\r")
		if !utf8.Valid(line) {
			return nil, fmt.Errorf("line %d: not valid UTF-8", lineNo)
		}
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) == 0 {
			continue
		}
		if trimmed[0] == '#' {
			if err := parseTextfileComment(trimmed, typed, help); err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			continue
		}
		s, err := parseTextfileSample(trimmed, lbuf[:0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		lbuf = s.Labels[:0]
		s.Labels = append(metric.Labels(nil), s.Labels...).Sort()
		if err := metric.DefaultLimits.ValidateSeries(s.Name, s.Labels); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		key := s.Key()
		if _, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: series %s%s repeated", lineNo, s.Name, formatLabels(s.Labels))
		}
		seen[key] = struct{}{}
		if len(out) == maxTextfileSamples {
			return nil, fmt.Errorf("more than %d samples", maxTextfileSamples)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseTextfileComment checks a "# HELP" or "# TYPE" line; other comments
// pass.
func parseTextfileComment(line []byte, typed, help map[string]bool) error {
	rest := bytes.TrimLeft(line[1:], " \t")
	if len(rest) == len(line)-1 { // "#HELP" without a blank is a plain comment
		return nil
	}
	kw, rest := nextField(rest)
	isType := string(kw) == "TYPE"
	if !isType && string(kw) != "HELP" {
		return nil
	}
	name, rest := nextField(rest)
	if !metric.ValidMetricName(string(name)) {
		return fmt.Errorf("%s: invalid metric name %q", kw, name)
	}
	if !isType {
		if help[string(name)] {
			return fmt.Errorf("second HELP for %s", name)
		}
		help[string(name)] = true
		return nil
	}
	typ, rest := nextField(rest)
	if len(bytes.TrimSpace(rest)) != 0 {
		return fmt.Errorf("TYPE %s: trailing text %q", name, rest)
	}
	switch string(typ) {
	case "counter", "gauge", "histogram", "summary", "untyped":
	default:
		return fmt.Errorf("TYPE %s: unknown type %q", name, typ)
	}
	if _, ok := typed[string(name)]; ok {
		return fmt.Errorf("second TYPE for %s", name)
	}
	typed[string(name)] = true
	return nil
}

// parseTextfileSample parses `name{labels} value [timestamp]`; the labels
// are appended to lbuf and returned unsorted.
func parseTextfileSample(line []byte, lbuf metric.Labels) (metric.Sample, error) {
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	s := metric.Sample{Name: string(line[:i])}
	if !metric.ValidMetricName(s.Name) {
		return s, fmt.Errorf("invalid metric name %q", line[:i])
	}
	rest := line[i:]
	if len(rest) > 0 && rest[0] == '{' {
		var err error
		if lbuf, rest, err = parseTextfileLabels(rest[1:], lbuf); err != nil {
			return s, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	s.Labels = lbuf
	if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
		return s, fmt.Errorf("%s: want a blank before the value", s.Name)
	}
	val, rest := nextField(rest)
	v, err := parseTextfileValue(val)
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.Name, err)
	}
	s.Value = v
	ts, rest := nextField(rest)
	if len(ts) > 0 {
		if _, err := strconv.ParseInt(string(ts), 10, 64); err != nil {
			return s, fmt.Errorf("%s: invalid timestamp %q", s.Name, ts)
		}
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return s, fmt.Errorf("%s: trailing text %q", s.Name, bytes.TrimSpace(rest))
	}
	return s, nil
}

// parseTextfileValue accepts Go float syntax (what the format allows),
// rejecting NaN and ±Inf, hex floats and underscores.
func parseTextfileValue(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("missing value")
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, fmt.Errorf("invalid value %q (NaN and Inf are not accepted)", b)
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid value %q", b)
	}
	return v, nil
}

// parseTextfileLabels parses `name="value",…}` (after the opening brace) and
// returns what follows the closing brace.
func parseTextfileLabels(b []byte, ls metric.Labels) (metric.Labels, []byte, error) {
	skip := func() {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			b = b[1:]
		}
	}
	for {
		skip()
		if len(b) > 0 && b[0] == '}' {
			return ls, b[1:], nil
		}
		i := 0
		for i < len(b) && b[i] != '=' && b[i] != ' ' && b[i] != '\t' && b[i] != '}' && b[i] != ',' {
			i++
		}
		name := string(b[:i])
		if !metric.ValidLabelName(name) {
			return ls, nil, fmt.Errorf("invalid label name %q", b[:i])
		}
		b = b[i:]
		skip()
		if len(b) < 2 || b[0] != '=' {
			return ls, nil, fmt.Errorf("label %s: want =\"value\"", name)
		}
		b = b[1:]
		skip()
		if len(b) == 0 || b[0] != '"' {
			return ls, nil, fmt.Errorf("label %s: value must be quoted", name)
		}
		b = b[1:]
		var val []byte
		closed := false
		for j := 0; j < len(b); j++ {
			c := b[j]
			if c == '"' {
				val = append(val, b[:j]...)
				b = b[j+1:]
				closed = true
				break
			}
			if c != '\\' {
				continue
			}
			if j+1 == len(b) {
				break
			}
			val = append(val, b[:j]...)
			switch b[j+1] {
			case '\\':
				val = append(val, '\\')
			case '"':
				val = append(val, '"')
			case 'n':
				val = append(val, '\n')
			default:
				return ls, nil, fmt.Errorf("label %s: invalid escape \\%c", name, b[j+1])
			}
			b = b[j+2:]
			j = -1
		}
		if !closed {
			return ls, nil, fmt.Errorf("label %s: unterminated value", name)
		}
		for _, l := range ls {
			if l.Name == name {
				return ls, nil, fmt.Errorf("label %s repeated", name)
			}
		}
		ls = append(ls, metric.Label{Name: name, Value: string(val)})
		skip()
		if len(b) == 0 {
			return ls, nil, fmt.Errorf("missing }")
		}
		switch b[0] {
		case ',':
			b = b[1:]
		case '}':
		default:
			return ls, nil, fmt.Errorf("after label %s: want , or }", name)
		}
	}
}

// formatLabels renders labels as {k="v",…} for error messages.
func formatLabels(ls metric.Labels) string {
	if len(ls) == 0 {
		return ""
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}
