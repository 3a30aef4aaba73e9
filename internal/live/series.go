package live

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Series is the immutable identity of one series of a machine: ingest creates
// it once per series (per stream) and passes the same pointer with every
// batch, so Update does no per-value allocation.
type Series struct {
	Name   string        // metric name
	Labels metric.Labels // sorted, machine label excluded

	// hash is seriesHash(Name, Labels): a machine's live index is keyed
	// by it; 0 when the Series was not built by NewSeries.
	hash uint64
	// prefix is `{"name":…,"labels":{…},"value":` pre-encoded for the
	// WebSocket metrics message, built the first time a subscriber gets
	// the series (most series of a busy hub never are: 94 B each at
	// 260,000 series).
	prefix atomic.Pointer[[]byte]
}

// NewSeries returns the identity of the series name{ls}. ls must be sorted
// and must not change afterwards.
func NewSeries(name string, ls metric.Labels) *Series {
	return &Series{Name: name, Labels: ls, hash: seriesHash(name, ls)}
}

// Key returns metric.SeriesKey of the series (allocated on each call).
func (s *Series) Key() string { return metric.SeriesKey(s.Name, s.Labels) }

// id returns the series' hash, computed for a Series not built by
// NewSeries.
func (s *Series) id() uint64 {
	if s.hash != 0 {
		return s.hash
	}
	return seriesHash(s.Name, s.Labels)
}

// seriesHash hashes a series' name and labels, with the separators of
// metric.SeriesKey.
func seriesHash(name string, ls metric.Labels) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(name)
	for _, l := range ls {
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(l.Name)
		_, _ = d.WriteString("\xfe")
		_, _ = d.WriteString(l.Value)
	}
	return d.Sum64()
}

// sameSeries reports whether a and b are the same series.
func sameSeries(a, b *Series) bool {
	return a == b || a.Name == b.Name && slices.Equal(a.Labels, b.Labels)
}

// compareSeries orders series by name, then by labels.
func compareSeries(a, b *Series) int {
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	for i := 0; i < len(a.Labels) && i < len(b.Labels); i++ {
		if c := cmp.Compare(a.Labels[i].Name, b.Labels[i].Name); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Labels[i].Value, b.Labels[i].Value); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Labels), len(b.Labels))
}

// jsonPrefix returns the series' value prefix (see Series.prefix),
// building it on first use.
func (s *Series) jsonPrefix() []byte {
	if p := s.prefix.Load(); p != nil {
		return *p
	}
	b := appendValuePrefix(nil, s.Name, s.Labels)
	s.prefix.Store(&b)
	return b
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

// seriesIndex finds a machine's series in its values by hash; the rare
// series whose hash another one of the machine has go by key.
type seriesIndex struct {
	byHash map[uint64]int // series hash → position in values
	spill  map[string]int // Key → position, for the series byHash could not take
}

// find returns sr's position in values.
func (x *seriesIndex) find(values []entry, sr *Series) (int, bool) {
	j, ok := x.byHash[sr.id()]
	if ok && sameSeries(values[j].series, sr) {
		return j, true
	}
	if ok && x.spill != nil {
		j, ok = x.spill[sr.Key()]
		return j, ok
	}
	return 0, false
}

// add records that sr, not in the index yet, is at position j.
func (x *seriesIndex) add(sr *Series, j int) {
	h := sr.id()
	if _, taken := x.byHash[h]; !taken {
		x.byHash[h] = j
		return
	}
	if x.spill == nil {
		x.spill = map[string]int{}
	}
	x.spill[sr.Key()] = j
}

// reset empties the index.
func (x *seriesIndex) reset() {
	clear(x.byHash)
	x.spill = nil
}
