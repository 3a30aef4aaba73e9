package promapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// appendValue appends a query's value as Prometheus' data object
// ({"resultType":…,"result":…}) to b, written as Prometheus' own API
// writes it (web/api/v1's jsoniter codec): timestamps as seconds with
// the milliseconds in three digits (1767225610.500), values as strings
// ("20", "NaN", "+Inf", "1e-07"). A vector or matrix without series is
// [], never null. Encoding points one by one through encoding/json
// (promql's MarshalJSON methods) took two thirds of a large range query's
// time (docs/benchmarks.md).
func appendValue(b []byte, v parser.Value) ([]byte, error) {
	b = append(b, `{"resultType":"`...)
	b = append(b, v.Type()...)
	b = append(b, `","result":`...)
	var err error
	switch x := v.(type) {
	case promql.Vector:
		b = append(b, '[')
		for i, s := range x {
			if b, err = appendMetric(b, i, s.Metric); err != nil {
				return nil, err
			}
			if s.H != nil {
				b = append(b, `,"histogram":`...)
				if b, err = appendHistogramPoint(b, promql.HPoint{T: s.T, H: s.H}); err != nil {
					return nil, err
				}
			} else {
				b = append(b, `,"value":`...)
				b = appendFPoint(b, promql.FPoint{T: s.T, F: s.F})
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	case promql.Matrix:
		b = append(b, '[')
		for i, s := range x {
			if b, err = appendMetric(b, i, s.Metric); err != nil {
				return nil, err
			}
			if len(s.Floats) > 0 {
				b = append(b, `,"values":[`...)
				for j, p := range s.Floats {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendFPoint(b, p)
				}
				b = append(b, ']')
			}
			if len(s.Histograms) > 0 {
				b = append(b, `,"histograms":[`...)
				for j, p := range s.Histograms {
					if j > 0 {
						b = append(b, ',')
					}
					if b, err = appendHistogramPoint(b, p); err != nil {
						return nil, err
					}
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	case promql.Scalar:
		b = appendFPoint(b, promql.FPoint{T: x.T, F: x.V})
	case promql.String:
		b = append(b, '[')
		b = appendTimestamp(b, x.T)
		b = append(b, ',')
		s, err := json.Marshal(x.V)
		if err != nil {
			return nil, err
		}
		b = append(append(b, s...), ']')
	default:
		return nil, fmt.Errorf("encode query result: unknown value type %T", v)
	}
	return append(b, '}'), nil
}

// appendMetric appends `{"metric":{labels}` (the i-th series object, still
// open), after a comma unless it is the first.
func appendMetric(b []byte, i int, ls labels.Labels) ([]byte, error) {
	m, err := json.Marshal(ls)
	if err != nil {
		return nil, fmt.Errorf("encode query result: %w", err)
	}
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"metric":`...)
	return append(b, m...), nil
}

// appendFPoint appends [t, "v"].
func appendFPoint(b []byte, p promql.FPoint) []byte {
	b = append(b, '[')
	b = appendTimestamp(b, p.T)
	b = append(b, ',', '"')
	b = appendFloat(b, p.F)
	return append(b, '"', ']')
}

// appendHistogramPoint appends [t, {histogram}]: sysmonstm stores no
// native histograms, but the engine's types allow them.
func appendHistogramPoint(b []byte, p promql.HPoint) ([]byte, error) {
	h, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode query result: %w", err)
	}
	return append(b, h...), nil
}

// appendTimestamp appends t (ms since epoch) as seconds, as Prometheus'
// jsonutil.MarshalTimestamp does.
func appendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// appendFloat appends f as Prometheus' jsonutil.MarshalFloat does
// (without the quotes).
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// encodedSize estimates the bytes appendValue writes for v, to allocate
// them once: about 100 per series and 24 per point.
func encodedSize(v parser.Value) int {
	switch x := v.(type) {
	case promql.Vector:
		return 64 + 124*len(x)
	case promql.Matrix:
		n := 64
		for _, s := range x {
			n += 100 + 24*(len(s.Floats)+len(s.Histograms))
		}
		return n
	}
	return 64
}
