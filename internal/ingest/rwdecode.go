package ingest

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// decodeWriteRequest decodes a protobuf prometheus.WriteRequest into req,
// reusing req's slices, the way prompb's Unmarshal would but without an
// allocation per label: label names and values are strings over b, valid
// while b is. Only what the receiver reads is kept: labels, float samples
// and, for counting, one empty entry per native histogram; exemplars,
// metadata and unknown fields are skipped.
func decodeWriteRequest(req *prompb.WriteRequest, b []byte) error {
	ts := req.Timeseries[:cap(req.Timeseries)]
	n := 0
	err := bytesFields(b, func(num protowire.Number, v []byte) error {
		if num != 1 {
			return nil // metadata (3) and unknown fields
		}
		if n == len(ts) {
			ts = append(ts, prompb.TimeSeries{})
			ts = ts[:cap(ts)]
		}
		if err := decodeTimeSeries(&ts[n], v); err != nil {
			return fmt.Errorf("timeseries[%d]: %w", n, err)
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	req.Timeseries = ts[:n]
	req.Metadata = req.Metadata[:0]
	return nil
}

func decodeTimeSeries(ts *prompb.TimeSeries, b []byte) error {
	ts.Labels, ts.Samples, ts.Histograms, ts.Exemplars = ts.Labels[:0], ts.Samples[:0], ts.Histograms[:0], ts.Exemplars[:0]
	return bytesFields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			var l prompb.Label
			err := bytesFields(v, func(num protowire.Number, v []byte) error {
				switch num {
				case 1:
					l.Name = bytesString(v)
				case 2:
					l.Value = bytesString(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			ts.Labels = append(ts.Labels, l)
		case 2:
			var sm prompb.Sample
			if err := decodeSample(&sm, v); err != nil {
				return err
			}
			ts.Samples = append(ts.Samples, sm)
		case 4:
			ts.Histograms = append(ts.Histograms, prompb.Histogram{})
		}
		return nil
	})
}

// bytesFields calls fn with the number and bytes of each length-delimited
// field of b, skipping the others.
func bytesFields(b []byte, fn func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, v, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		if typ == protowire.BytesType {
			if err := fn(num, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func decodeSample(sm *prompb.Sample, b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			sm.Value, b = math.Float64frombits(v), b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			sm.Timestamp, b = int64(v), b[n:]
		default:
			n, err := skipField(num, typ, b)
			if err != nil {
				return err
			}
			b = b[n:]
		}
	}
	return nil
}

// field reads one field: its number, wire type, its bytes when it is
// length-delimited, and what follows it.
func field(b []byte) (protowire.Number, protowire.Type, []byte, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	b = b[n:]
	if typ == protowire.BytesType {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, 0, nil, nil, protowire.ParseError(n)
		}
		return num, typ, v, b[n:], nil
	}
	n, err := skipField(num, typ, b)
	if err != nil {
		return 0, 0, nil, nil, err
	}
	return num, typ, nil, b[n:], nil
}

var errEndGroup = errors.New("protobuf end-group marker without a group")

// skipField returns the length of the value of a field of type typ at the
// start of b. A group is skipped to its end marker by nesting depth alone,
// as prompb's generated decoder does (remote write has no groups; this
// only keeps both decoders agreeing on odd input).
func skipField(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	switch typ {
	case protowire.EndGroupType:
		return 0, errEndGroup
	case protowire.StartGroupType:
		off := 0
		for depth := 1; depth > 0; {
			_, t, n := protowire.ConsumeTag(b[off:])
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			off += n
			switch t {
			case protowire.StartGroupType:
				depth++
			case protowire.EndGroupType:
				depth--
			default:
				m := protowire.ConsumeFieldValue(num, t, b[off:])
				if m < 0 {
					return 0, protowire.ParseError(m)
				}
				off += m
			}
		}
		return off, nil
	}
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return n, nil
}

// bytesString is b as a string without a copy; b must not change while the
// string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
