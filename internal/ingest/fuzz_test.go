package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// FuzzIngestJSON: any body either fails with an error or yields only samples
// that pass validation; nothing panics.
func FuzzIngestJSON(f *testing.F) {
	f.Add([]byte(`{"machine":"m","metrics":[{"name":"a","labels":{"k":"v"},"value":1,"ts":1700000000000}]}`))
	f.Add([]byte(`{"machine":"m","metrics":[{"name":"a","value":1e309}]}`))
	f.Add([]byte(`{"machine":"<script>","metrics":[{"name":"a","labels":{"machine":"x"},"value":-0}]}`))
	f.Add([]byte(`{"machine":"m\u0000","metrics":null}`))
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		machine, ok, _, err := s.decodeIngest(bytes.NewReader(body))
		if err != nil {
			return
		}
		if metric.ValidateMachineID(machine) != nil {
			t.Fatalf("accepted invalid machine id %q", machine)
		}
		for _, sm := range ok {
			if metric.ValidateValue(sm.v) != nil || metric.DefaultLimits.ValidateSeries(sm.name, sm.ls) != nil {
				t.Fatalf("accepted invalid sample %+v", sm)
			}
			if sm.lset.Get(metric.MachineLabel) != machine {
				t.Fatalf("machine label %q, want %q", sm.lset.Get(metric.MachineLabel), machine)
			}
		}
	})
}

// FuzzAgentMessage: arbitrary bytes decoded as an agent message and run
// through the stream's series table and batch validation never panic, and
// every queued value is finite and belongs to a defined series.
func FuzzAgentMessage(f *testing.F) {
	seed := func(m *pb.AgentMessage) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: []*pb.SeriesDef{
		{Id: 0, Name: "cpu_usage_percent", Labels: []*pb.Label{{Name: "cpu", Value: "0"}}}, {Id: 70000, Name: "x"}}}}})
	seed(&pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{Seq: 1, TimestampMs: 1, SeriesIds: []uint32{0, 1}, Values: []float64{1, math.NaN()}}}})
	seed(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{MachineId: "m", Labels: []*pb.Label{{Name: "a"}}}}})
	seed(&pb.AgentMessage{Msg: &pb.AgentMessage_Processes{Processes: &pb.ProcessSnapshot{TimestampMs: 1_700_000_000_000, Processes: []*pb.Process{
		{Pid: 1, Name: "init", User: "root", Command: "/sbin/init", CpuPercent: 0.5, RssBytes: 4096, State: "S"},
		{Pid: 2, Name: "<script>&amp;", User: "\u2028", Command: strings.Repeat("é", 200), CpuPercent: math.Inf(1), State: "Z\x00"}}}}})
	fixed := time.UnixMilli(1_700_000_000_000)
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}, MaxSeriesPerStream: 1000, Now: func() time.Time { return fixed }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pb.AgentMessage
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		st := newStream(s, &pb.Hello{MachineId: "fuzz", Instance: 1}, s.writers[0])
		st.define([]*pb.SeriesDef{{Id: 0, Name: "base"}})
		switch x := m.Msg.(type) {
		case *pb.AgentMessage_Hello:
			_ = s.validateHello(x.Hello)
		case *pb.AgentMessage_Series:
			_ = st.define(x.Series.GetSeries())
		case *pb.AgentMessage_Processes:
			checkProcessSnapshot(t, s, x.Processes)
		case *pb.AgentMessage_Batch:
			j := st.batch(x.Batch)
			if j.skip {
				return
			}
			if len(j.entries) != len(j.values) {
				t.Fatalf("entries %d values %d", len(j.entries), len(j.values))
			}
			for i, v := range j.values {
				if metric.ValidateValue(v) != nil || j.entries[i] == nil {
					t.Fatalf("queued invalid value %v", v)
				}
			}
		}
	})
}

// checkProcessSnapshot: an accepted snapshot is bounded, its strings are
// valid UTF-8 within their limits, its numbers finite, and its JSON (as the
// API and the WebSocket event encode it) decodes to the same strings.
func checkProcessSnapshot(t *testing.T, s *Server, ps *pb.ProcessSnapshot) {
	_, procs, err := s.processSnapshot(ps)
	if err != nil {
		return
	}
	if len(procs) > live.MaxProcesses {
		t.Fatalf("accepted %d processes", len(procs))
	}
	for _, p := range procs {
		for _, f := range []struct {
			v     string
			limit int
		}{{p.Name, maxProcessName}, {p.User, maxProcessUser}, {p.Command, maxProcessCommand}, {p.State, maxProcessState}} {
			if !utf8.ValidString(f.v) || len(f.v) > f.limit {
				t.Fatalf("accepted string %q (limit %d)", f.v, f.limit)
			}
		}
		if math.IsNaN(p.CPUPercent) || math.IsInf(p.CPUPercent, 0) || p.CPUPercent < 0 {
			t.Fatalf("accepted cpu_percent %v", p.CPUPercent)
		}
	}
	b, err := json.Marshal(procs)
	if err != nil || !json.Valid(b) {
		t.Fatalf("encode %+v: %v: %s", procs, err, b)
	}
	if bytes.ContainsAny(b, "<>&\u2028\u2029") {
		t.Fatalf("unescaped HTML or line-separator character in %s", b)
	}
	var back []struct {
		PID     uint32 `json:"pid"`
		Name    string `json:"name"`
		User    string `json:"user"`
		Command string `json:"command"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back) != len(procs) {
		t.Fatalf("decode %s: %v", b, err)
	}
	for i, p := range procs {
		q := back[i]
		if q.PID != p.PID || q.Name != p.Name || q.User != p.User || q.Command != p.Command || q.State != p.State {
			t.Fatalf("round trip %+v → %+v", p, q)
		}
	}
}

// nopStorage and nopLive satisfy the interfaces for decoders that never
// reach storage or live state; calling them would panic.
type nopStorage struct{ Storage }

type nopLive struct{ Live }

// FuzzRemoteWrite: any body, compressed or not, either fails to decode with
// an error or yields only series and samples that pass validation; nothing
// panics.
func FuzzRemoteWrite(f *testing.F) {
	t0 := time.Now().UnixMilli()
	for _, req := range []*prompb.WriteRequest{
		{Timeseries: []prompb.TimeSeries{rwTS([]prompb.Sample{{Value: 1, Timestamp: t0}}, "__name__", "up", "instance", "localhost:9090", "job", "prometheus")}},
		{Timeseries: []prompb.TimeSeries{rwTS([]prompb.Sample{{Value: math.NaN(), Timestamp: t0}, {Value: 1, Timestamp: 0}}, "job", "x", "__name__", "a", "job", "y")}},
		{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{{Timestamp: t0}}}}},
	} {
		b, err := req.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(snappy.Encode(nil, b))
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}, Now: func() time.Time { return time.UnixMilli(t0) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		buf := &rwBuffers{}
		var err error
		if buf.decoded, err = decodeSnappy(nil, body, 1<<20); err != nil {
			return
		}
		// The receiver's decoder and prompb's may disagree on malformed
		// input (prompb skips groups with any field numbers, the receiver
		// skips fields of an unexpected wire type); when both decode a
		// body, they must read the same request.
		var want prompb.WriteRequest
		wantErr := want.Unmarshal(buf.decoded)
		if err := unmarshalWriteRequest(&buf.req, buf.decoded); err != nil {
			return
		}
		if wantErr == nil {
			sameWriteRequest(t, &buf.req, &want)
		}
		series, _ := s.parseRemoteWrite(buf, t0, nil)
		for _, sr := range series {
			name := sr.lset.Get(labels.MetricName)
			if !metric.ValidMetricName(name) || strings.HasPrefix(name, metric.ReservedPrefix) {
				t.Fatalf("accepted series %s", sr.lset)
			}
			if _, dup := sr.lset.HasDuplicateLabelNames(); dup || sr.lset.Len()-1 > metric.DefaultLimits.MaxLabels {
				t.Fatalf("accepted label set %s", sr.lset)
			}
			sr.lset.Range(func(l labels.Label) {
				if l.Name != labels.MetricName && (!metric.ValidLabelName(l.Name) || l.Value == "" || !utf8.ValidString(l.Value)) {
					t.Fatalf("accepted label %q=%q", l.Name, l.Value)
				}
			})
			if len(sr.samples) == 0 || sr.hash != sr.lset.Hash() {
				t.Fatalf("series %s: %d samples, hash %d", sr.lset, len(sr.samples), sr.hash)
			}
			for _, sm := range sr.samples {
				if sm.Timestamp > t0+s.opts.MaxFuture.Milliseconds() || sm.Timestamp < t0-s.opts.MaxAge.Milliseconds() {
					t.Fatalf("accepted timestamp %d", sm.Timestamp)
				}
			}
		}
	})
}

// sameWriteRequest fails unless got (the receiver's decoder) holds want's
// (prompb's) labels, samples and number of native histograms.
func sameWriteRequest(t *testing.T, got, want *prompb.WriteRequest) {
	t.Helper()
	if len(got.Timeseries) != len(want.Timeseries) {
		t.Fatalf("%d series, prompb %d", len(got.Timeseries), len(want.Timeseries))
	}
	for i := range want.Timeseries {
		g, w := &got.Timeseries[i], &want.Timeseries[i]
		if len(g.Labels) != len(w.Labels) || len(g.Samples) != len(w.Samples) || len(g.Histograms) != len(w.Histograms) {
			t.Fatalf("series %d: %+v, prompb %+v", i, g, w)
		}
		for k := range w.Labels {
			if g.Labels[k].Name != w.Labels[k].Name || g.Labels[k].Value != w.Labels[k].Value {
				t.Fatalf("series %d label %d: %q=%q, prompb %q=%q", i, k, g.Labels[k].Name, g.Labels[k].Value, w.Labels[k].Name, w.Labels[k].Value)
			}
		}
		for k := range w.Samples {
			gs, ws := g.Samples[k], w.Samples[k]
			if gs.Timestamp != ws.Timestamp || math.Float64bits(gs.Value) != math.Float64bits(ws.Value) {
				t.Fatalf("series %d sample %d: %v@%d, prompb %v@%d", i, k, gs.Value, gs.Timestamp, ws.Value, ws.Timestamp)
			}
		}
	}
}
