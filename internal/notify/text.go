package notify

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// ellipsis marks text cut to fit a limit.
const ellipsis = "…"

// cleanLine makes an untrusted string safe to show on one line: invalid
// UTF-8 becomes U+FFFD, every control, line-separator and bidi-override
// character becomes a space, and the result is cut to max runes (0: no
// limit) with a trailing ellipsis.
func cleanLine(s string, max int) string {
	return clean(s, max, false)
}

// cleanText is cleanLine that keeps line breaks (CR LF and lone CR become
// LF), for descriptions.
func cleanText(s string, max int) string {
	return clean(s, max, true)
}

func clean(s string, max int, keepNewlines bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if keepNewlines {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	for _, r := range s {
		if max > 0 && n == max {
			return strings.TrimRight(b.String(), " ") + ellipsis
		}
		switch {
		case keepNewlines && (r == '\n' || r == '\r'):
			r = '\n'
		case unsafeRune(r):
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// unsafeRune reports whether r must not appear in shown text: controls
// (C0, DEL, C1), line and paragraph separators, and the bidirectional
// embedding, override and isolate characters that can reorder what a
// reader sees.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r == '\u200e' || r == '\u200f' || r == '\u061c':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	case r == '\ufeff':
		return true
	}
	return false
}

// truncateRunes cuts s (valid UTF-8) to at most n runes.
func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// utf16Len is the length of s in UTF-16 code units: at least its rune
// count, so it is a safe measure for services that count either.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if l := utf16.RuneLen(r); l > 0 {
			n += l
		} else {
			n++
		}
	}
	return n
}

// fit returns esc(s), where s has first been cut (with an ellipsis) so that
// the escaped result measures at most limit by size. Cutting before
// escaping never splits an escape sequence.
func fit(s string, limit int, esc func(string) string, size func(string) int) string {
	if utf8.RuneCountInString(s) <= limit {
		if out := esc(s); size(out) <= limit {
			return out
		}
	} else {
		// Escaping never shrinks text and every rune measures at least
		// 1, so no more than limit runes can be kept.
		s = truncateRunes(s, limit)
	}
	lo, hi := 0, utf8.RuneCountInString(s) // lo always fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if size(esc(strings.TrimRight(truncateRunes(s, mid), " ")+ellipsis)) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	out := esc(strings.TrimRight(truncateRunes(s, lo), " ") + ellipsis)
	if size(out) > limit {
		return ""
	}
	return out
}

// identity is the escaper for text without markup.
func identity(s string) string { return s }

// formatValue renders a sample value compactly ("97.3", "1.5e+09").
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// formatLabels renders labels as "k=v, k2=v2" in key order.
func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}

// formatTime renders t in UTC, RFC 3339, "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// level is what a message is about, for colours, priorities and tags.
type level int

const (
	levelResolved level = iota
	levelWarning
	levelCritical
)

// messageLevel is critical when any firing alert is critical, warning when
// the message fires otherwise, resolved when it does not fire.
func messageLevel(m Message) level {
	if m.Status != StatusFiring {
		firing := false
		for _, a := range m.Alerts {
			if a.State == StatusFiring {
				firing = true
			}
		}
		if !firing {
			return levelResolved
		}
	}
	l := levelWarning
	for _, a := range m.Alerts {
		if a.State != StatusResolved && a.Severity == "critical" {
			l = levelCritical
		}
	}
	return l
}

// alertLevel is one alert's level.
func alertLevel(a Alert) level {
	switch {
	case a.State == StatusResolved:
		return levelResolved
	case a.Severity == "critical":
		return levelCritical
	default:
		return levelWarning
	}
}

// title is the message's title cleaned to one line, or a summary when the
// engine gave none.
func title(m Message, max int) string {
	t := m.Title
	if strings.TrimSpace(t) == "" {
		t = fmt.Sprintf("[%s:%d] sysmonstm alert", strings.ToUpper(statusWord(m)), len(m.Alerts))
	}
	if m.Test {
		t = "[TEST] " + t
	}
	return cleanLine(t, max)
}

func statusWord(m Message) string {
	if m.Status == StatusResolved {
		return StatusResolved
	}
	return StatusFiring
}

// alertHeadline is "CRITICAL firing: cpu high" for an alert.
func alertHeadline(a Alert) string {
	sev := strings.ToUpper(cleanLine(a.Severity, 16))
	if sev == "" {
		sev = "ALERT"
	}
	state := cleanLine(a.State, 16)
	name := a.RuleName
	if name == "" {
		name = a.RuleID
	}
	return fmt.Sprintf("%s %s: %s", sev, state, cleanLine(name, 200))
}

// alertCondition is "cpu_usage_percent{cpu=0} = 97.3 (> 90)".
func alertCondition(a Alert) string {
	s := cleanLine(a.Metric, 200)
	if l := formatLabels(a.Labels); l != "" {
		s += "{" + cleanLine(l, 400) + "}"
	}
	s += " = " + formatValue(a.Value)
	if a.Op != "" {
		s += " (" + cleanLine(a.Op, 2) + " " + formatValue(a.Threshold) + ")"
	}
	return s
}

// alertTimes is "since 2024-05-01T10:00:00Z, resolved 2024-…", plus the
// acknowledgement and silence marks.
func alertTimes(a Alert) string {
	var parts []string
	if s := formatTime(a.StartedAt); s != "" {
		parts = append(parts, "since "+s)
	}
	if s := formatTime(a.ResolvedAt); s != "" {
		parts = append(parts, "resolved "+s)
	}
	if a.Acknowledged {
		if a.AckedBy != "" {
			parts = append(parts, "acknowledged by "+cleanLine(a.AckedBy, 64))
		} else {
			parts = append(parts, "acknowledged")
		}
	}
	if a.Silenced {
		parts = append(parts, "silenced")
	}
	return strings.Join(parts, ", ")
}

// countStates is "2 firing, 1 resolved".
func countStates(m Message) string {
	firing, resolved := 0, 0
	for _, a := range m.Alerts {
		if a.State == StatusResolved {
			resolved++
		} else {
			firing++
		}
	}
	var parts []string
	if firing > 0 {
		parts = append(parts, fmt.Sprintf("%d firing", firing))
	}
	if resolved > 0 {
		parts = append(parts, fmt.Sprintf("%d resolved", resolved))
	}
	if len(parts) == 0 {
		return "no alerts"
	}
	return strings.Join(parts, ", ")
}

// andMore is the line that stands for alerts left out.
func andMore(n int) string {
	if n == 1 {
		return "…and 1 more alert"
	}
	return fmt.Sprintf("…and %d more alerts", n)
}

// plainAlert is one alert as plain-text lines (ntfy, e-mail).
func plainAlert(a Alert) string {
	var b strings.Builder
	b.WriteString(alertHeadline(a))
	b.WriteString("\nmachine: ")
	b.WriteString(cleanLine(a.Machine, 256))
	b.WriteString("\n")
	b.WriteString(alertCondition(a))
	if t := alertTimes(a); t != "" {
		b.WriteString("\n")
		b.WriteString(t)
	}
	if d := strings.TrimSpace(cleanText(a.Description, 1000)); d != "" {
		b.WriteString("\n")
		b.WriteString(d)
	}
	return b.String()
}

// plainBody lists the alerts in plain text within limit bytes, ending with
// "…and N more alerts" when some did not fit, and the hub link.
func plainBody(m Message, limit int) string {
	var head strings.Builder
	if m.Test {
		head.WriteString("This is a test notification from sysmonstm.\n\n")
	}
	head.WriteString(countStates(m))
	head.WriteString("\n")
	var tail string
	if m.URL != "" {
		tail = "\n" + cleanLine(m.URL, 2048)
	}
	var body strings.Builder
	body.WriteString(head.String())
	for i, a := range m.Alerts {
		block := "\n" + plainAlert(a) + "\n"
		rest := len(m.Alerts) - i - 1
		reserve := len(tail)
		if rest > 0 {
			reserve += len("\n"+andMore(rest)) + 4
		}
		if body.Len()+len(block)+reserve > limit {
			more := "\n" + andMore(len(m.Alerts)-i) + "\n"
			if body.Len()+len(more)+len(tail) <= limit {
				body.WriteString(more)
			}
			break
		}
		body.WriteString(block)
	}
	if body.Len()+len(tail) <= limit {
		body.WriteString(tail)
	}
	return body.String()
}
