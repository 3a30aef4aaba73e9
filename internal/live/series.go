package live

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Series is the immutable identity of one series of a machine: ingest creates
// it once per series (per stream) and passes the same pointer with every
// batch, so Update does no per-value allocation.
type Series struct {
	Key    string        // metric.SeriesKey(Name, Labels)
	Name   string        // metric name
	Labels metric.Labels // sorted, machine label excluded

	// prefix is `{"name":…,"labels":{…},"ts"?…,"value":` pre-encoded for the
	// WebSocket metrics message; nil when the Series was not built by NewSeries.
	prefix []byte
}

// NewSeries returns the identity of the series name{ls}. ls must be sorted
// and must not change afterwards.
func NewSeries(name string, ls metric.Labels) *Series {
	s := &Series{Key: metric.SeriesKey(name, ls), Name: name, Labels: ls}
	s.prefix = appendValuePrefix(nil, name, ls)
	return s
}

// appendValuePrefix appends `{"name":NAME,"labels":{…},"value":`.
func appendValuePrefix(b []byte, name string, ls metric.Labels) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"labels":`...)
	b = appendLabels(b, ls)
	b = append(b, `,"value":`...)
	return b
}

// appendLabels appends ls as a JSON object.
func appendLabels(b []byte, ls metric.Labels) []byte {
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	}
	return append(b, '}')
}

// appendJSONFloat appends v as a JSON number, or null for NaN and ±Inf
// (which JSON cannot carry).
func appendJSONFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 && !(v == 0 && math.Signbit(v)) {
		return strconv.AppendInt(b, int64(v), 10) // byte counts etc.: much cheaper
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string with the escaping of
// encoding/json: quotes, backslashes and control characters escaped, <, > and
// & as \u00XX (so the text is safe inside HTML), U+2028/U+2029 escaped and
// invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
