package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// response is the envelope of every Prometheus API answer.
type response struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// decodeResponse decodes the envelope; status must be success or error.
func decodeResponse(b []byte) (response, error) {
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("not a Prometheus API answer: %w", err)
	}
	if r.Status != "success" && r.Status != "error" {
		return r, fmt.Errorf("not a Prometheus API answer: status %.40q", r.Status)
	}
	return r, nil
}

// series is one series of a matrix answer.
type series struct {
	labels map[string]string // as answered, __name__ included when present
	points []sample          // as answered (time order)
}

// sample is one point: ms since epoch and value.
type sample struct {
	t int64
	v float64
}

// decodeMatrix decodes a successful answer whose data is a matrix (a
// query_range answer, or an instant query of a range selector).
func decodeMatrix(b []byte) ([]series, error) {
	ss, typ, err := decodeResult(b)
	if err == nil && typ != "matrix" {
		err = fmt.Errorf("decode matrix: result type %.40q", typ)
	}
	return ss, err
}

// decodeSeries decodes a successful answer whose data is a matrix or an
// instant vector (one point per series).
func decodeSeries(b []byte) ([]series, error) {
	ss, typ, err := decodeResult(b)
	if err == nil && typ != "matrix" && typ != "vector" {
		err = fmt.Errorf("decode series: result type %.40q", typ)
	}
	return ss, err
}

// decodeResult decodes the series of a successful query answer and
// returns its result type.
func decodeResult(b []byte) ([]series, string, error) {
	r, err := decodeResponse(b)
	if err != nil {
		return nil, "", err
	}
	if r.Status != "success" {
		return nil, "", fmt.Errorf("query failed: %s: %.512s", r.ErrorType, r.Error)
	}
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values []samplePair      `json:"values"`
			Value  *samplePair       `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, "", fmt.Errorf("decode %.40s: %w", d.ResultType, err)
	}
	if d.ResultType != "matrix" && d.ResultType != "vector" {
		return nil, d.ResultType, nil
	}
	out := make([]series, 0, len(d.Result))
	for _, s := range d.Result {
		ps := make([]sample, 0, len(s.Values)+1)
		for _, p := range s.Values {
			ps = append(ps, sample(p))
		}
		if s.Value != nil {
			if d.ResultType != "vector" || len(s.Values) > 0 {
				return nil, d.ResultType, errors.New("decode: a vector sample in a matrix")
			}
			ps = append(ps, sample(*s.Value))
		}
		out = append(out, series{labels: s.Metric, points: ps})
	}
	return out, d.ResultType, nil
}

// decodeLabelSets decodes a successful /api/v1/series answer.
func decodeLabelSets(b []byte) ([]map[string]string, error) {
	r, err := decodeResponse(b)
	if err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("series failed: %s: %.512s", r.ErrorType, r.Error)
	}
	var sets []map[string]string
	if err := json.Unmarshal(r.Data, &sets); err != nil {
		return nil, fmt.Errorf("decode series: %w", err)
	}
	return sets, nil
}

// samplePair is [seconds, "value"] as the API writes a point.
type samplePair sample

var errPair = errors.New(`want a point [seconds, "value"]`)

// UnmarshalJSON reads [1700000000.123,"0.5"] without reflection: an export
// decodes millions of them.
func (p *samplePair) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return errPair
	}
	ts, val, ok := bytes.Cut(b[1:len(b)-1], []byte{','})
	if !ok {
		return errPair
	}
	sec, err := strconv.ParseFloat(string(bytes.TrimSpace(ts)), 64)
	if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || math.Abs(sec) > 1e13 {
		return errPair
	}
	val = bytes.TrimSpace(val)
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return errPair
	}
	v, err := strconv.ParseFloat(string(val[1:len(val)-1]), 64)
	if err != nil {
		return fmt.Errorf("point value: %w", err)
	}
	p.t, p.v = int64(math.Round(sec*1000)), v
	return nil
}
