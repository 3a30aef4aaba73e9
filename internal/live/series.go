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
	if out, ok := appendFewDecimals(b, v); ok {
		return out
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendFewDecimals appends v, a finite non-integer, as strconv's shortest
// text ('g', -1) when v is a decimal of at most four places below 10⁶ (an
// agent's percentages and rates in hundredths, ratios and seconds in ten
// thousandths), and reports whether it did. Those are most of what the live
// view sends, and formatting them as a scaled integer costs a fraction of
// the shortest-float search (docs/benchmarks.md, "Commit stalls kept off
// the live view").
//
// Why the text is strconv's: v·10ᵏ = r is an integer with r/10ᵏ == v, so the
// decimal r/10ᵏ parses back to v (the division is correctly rounded, as
// parsing is). Below 10¹⁵ the decimals of k places are farther apart than
// v's rounding interval is wide, so no other decimal of k places or fewer
// parses to v: with its trailing zeros trimmed it is the shortest. And
// 10⁻⁴ ≤ |v| < 10⁶ is where 'g' writes plain decimals, not exponents.
func appendFewDecimals(b []byte, v float64) ([]byte, bool) {
	a := math.Abs(v)
	if a >= 1e6 || a < 1e-4 {
		return b, false
	}
	for _, k := range [...]struct {
		scale  float64
		places int
	}{{100, 2}, {10000, 4}} {
		r := a * k.scale
		if r != math.Trunc(r) || r/k.scale != a {
			continue
		}
		n := uint64(r)
		unit := uint64(k.scale)
		if v < 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, n/unit, 10)
		frac := n % unit
		places := k.places
		for frac != 0 && frac%10 == 0 { // frac > 0: v is not an integer
			frac /= 10
			places--
		}
		var digits [4]byte // frac with its leading zeros
		for i := places - 1; i >= 0; i-- {
			digits[i] = byte('0' + frac%10)
			frac /= 10
		}
		b = append(b, '.')
		return append(b, digits[:places]...), true
	}
	return b, false
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
