package bus

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// dumpWire writes a read batch as text, values by their bits (NaN too),
// so two reads compare with ==.
func dumpWire(w *wireBatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin=%q machine=%q instance=%x seq=%d ts=%d source=%q machine_label=%q\n",
		w.origin, w.machine, w.instance, w.seq, w.ts, w.source, w.machineLabel)
	for i := range w.samples {
		s := &w.samples[i]
		fmt.Fprintf(&b, "%q %q %x\n", s.name, w.labelsOf(s), math.Float64bits(s.value))
	}
	return b.String()
}

// dumpBatch writes a publisher's batch as dumpWire writes its read.
func dumpBatch(origin string, x *ingest.BusBatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin=%q machine=%q instance=%x seq=%d ts=%d source=%q machine_label=%q\n",
		origin, x.Machine, x.Instance, x.Seq, x.Ts, x.Source, x.MachineLabel)
	for i, s := range x.Series {
		fmt.Fprintf(&b, "%q %q %x\n", s.Name, s.Labels, math.Float64bits(x.Values[i]))
	}
	return b.String()
}

// Every batch the publish path writes is read by hand, field for field.
func TestReadBatchFromPublisher(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []ingest.BusBatch{
		agentBatch(77),
		batch("web.1", 3, 9, 1_700_000_000_000, 2),
		{Machine: "m", Seq: 1},                      // no instance, ts or samples
		{Machine: "m", Instance: 1, Seq: 1, Ts: -5}, // negative ts
		{Machine: "ü-" + long[:200], Instance: math.MaxUint64, Seq: math.MaxUint64, Ts: 1,
			Series: []*live.Series{live.NewSeries("a", nil), live.NewSeries("b", metric.Labels{{Name: "l", Value: long}}), live.NewSeries("c", metric.Labels{{Name: "e", Value: ""}})},
			Values: []float64{0, math.Copysign(0, -1), -1.5}},
		{Machine: "m", Ts: 5, Source: live.SourceHTTP, Series: []*live.Series{live.NewSeries("a", nil)}, Values: []float64{math.Inf(1)}},
		{Machine: "m", Ts: 5, Source: live.SourceRemoteWrite, MachineLabel: "instance",
			Series: []*live.Series{live.NewSeries("up", metric.Labels{{Name: "instance", Value: "m"}, {Name: "machine", Value: "x"}})}, Values: []float64{math.NaN()}},
		{Ts: 5, Source: live.SourceRemoteWrite, Series: []*live.Series{live.NewSeries("up", nil)}, Values: []float64{1}},
	}
	var w wireBatch // reused, as the follower does
	for i, x := range cases {
		for _, origin := range []string{"origin-id", ""} {
			raw := appendBatchMessage(nil, origin, &x)
			ok, err := w.read(raw, metric.DefaultLimits)
			if !ok || err != nil {
				t.Fatalf("case %d: read %v, %v", i, ok, err)
			}
			if got, want := dumpWire(&w), dumpBatch(origin, &x); got != want {
				t.Errorf("case %d: read\n%s\nwant\n%s", i, got, want)
			}
		}
	}
}

// read takes proto3's liberties as proto.Unmarshal does, refuses what
// check refuses with check's words, and leaves other messages to proto.
func TestReadBatchWire(t *testing.T) {
	x := batch("m", 1, 7, 1000, 2)
	plain := appendBatchMessage(nil, "o", &x)
	body := plain[len(appendString(nil, fMessageOrigin, "o")):] // the batch field, tag included
	field := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		return append(protowire.AppendTag(nil, num, typ), v...)
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	disconnect, err := proto.Marshal(&pb.BusMessage{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		raw    []byte
		ok     bool
		errHas string
	}{
		"as published":            {plain, true, ""},
		"batch given twice":       {cat(plain, body), true, ""},
		"unknown fields":          {cat(field(9, protowire.VarintType, []byte{1}), plain, field(100, protowire.Fixed32Type, []byte{1, 2, 3, 4})), true, ""},
		"origin of wrong type":    {cat(field(fMessageOrigin, protowire.VarintType, []byte{5}), body), true, ""},
		"another kind after":      {cat(plain, disconnect), false, ""},
		"another kind before":     {cat(disconnect, plain), false, ""},
		"disconnect only":         {disconnect, false, ""},
		"empty":                   {nil, false, ""},
		"truncated":               {plain[:len(plain)-1], false, ""},
		"invalid UTF-8 origin":    {cat(appendString(nil, fMessageOrigin, "\xff"), body), false, ""},
		"field number past limit": {cat(plain, protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)), false, ""},
		"end group at top":        {cat(plain, protowire.AppendTag(nil, 9, protowire.EndGroupType)), false, ""},
		"seq 0":                   {appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "m"}), true, "batch seq 0"},
		"bad machine":             {appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "a\x00b", Seq: 1}), true, "control character"},
		"unsorted labels": {appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "m", Seq: 1, Series: []*live.Series{
			{Name: "x", Labels: metric.Labels{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}}}, Values: []float64{1}}), true, "not sorted"},
	} {
		var w wireBatch
		ok, err := w.read(c.raw, metric.DefaultLimits)
		switch {
		case ok != c.ok:
			t.Errorf("%s: read %v, want %v", name, ok, c.ok)
		case c.errHas == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s: error %v, want one saying %q", name, err, c.errHas)
		}
		if ok && c.errHas == "" && !strings.Contains(name, "twice") && w.seq != 7 {
			t.Errorf("%s: seq %d", name, w.seq)
		}
		if name == "batch given twice" && len(w.samples) != 4 {
			t.Errorf("merged batch has %d samples, want 4", len(w.samples))
		}
	}
}

// The follower keeps nothing of a message's bytes: what it applied stays
// right after the next messages reuse its buffer.
func TestFollowerCopiesWhatItKeeps(t *testing.T) {
	st, err := live.New(live.Options{OfflineAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var noted []string
	bus := &Bus{opts: Options{Live: st, Limits: metric.DefaultLimits, NoteSeq: func(m string, _, _ uint64) { noted = append(noted, m) }},
		m: newMetrics(nil), origin: "me", helloFrom: map[string]string{}}
	f := newFollower(bus)
	a := batch("machine-a", 1, 1, 1000, 3)
	f.apply(snappy.Encode(nil, appendBatchMessage(nil, "other", &a)))
	// Same length, other bytes, into the same buffer.
	z := ingest.BusBatch{Machine: "machine-z", Instance: 1, Seq: 1, Ts: 1000}
	for i := range 3 {
		z.Series = append(z.Series, live.NewSeries("zzz_usage_percent", metric.Labels{{Name: "zzzz", Value: fmt.Sprint(i)}}))
		z.Values = append(z.Values, 9)
	}
	f.apply(snappy.Encode(nil, appendBatchMessage(nil, "other", &z)))
	f.apply(snappy.Encode(nil, appendBatchMessage(nil, "me", &z))) // its own: skipped
	m, ok := st.Machine("machine-a")
	if !ok || len(m.Metrics) != 3 {
		t.Fatalf("machine-a: %v %+v", ok, m)
	}
	for i, v := range m.Metrics {
		want := fmt.Sprintf("cpu_usage_percent core=%d %g", i, float64(1+i))
		if got := fmt.Sprintf("%s %s=%s %g", v.Name, v.Labels[0].Name, v.Labels[0].Value, v.Value); got != want {
			t.Errorf("metric %d: %s, want %s", i, got, want)
		}
	}
	if got := fmt.Sprint(noted); got != "[machine-a machine-z]" {
		t.Errorf("seqs noted for %s", got)
	}
	if ms := st.Machines(); len(ms) != 2 || ms[0].Info.ID != "machine-a" || ms[1].Info.ID != "machine-z" {
		t.Errorf("machines %+v", ms)
	}
}

// hasOtherKind reports whether raw's top level holds a BusMessage member
// other than batch, in the wire type proto reads it in.
func hasOtherKind(raw []byte) bool {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return false
		}
		raw = raw[n:]
		if num >= fMessageMachine && num <= fMessageProcesses && typ == protowire.BytesType {
			return true
		}
		if n = protowire.ConsumeFieldValue(num, typ, raw); n < 0 {
			return false
		}
		raw = raw[n:]
	}
	return false
}

// FuzzReadBatch: the hand reader accepts and refuses what proto.Unmarshal
// and check do, with the same fields and the same refusal, and leaves to
// proto only messages that are no batch, hold another kind too, or that
// proto refuses.
func FuzzReadBatch(f *testing.F) {
	x := agentBatch(3)
	f.Add(appendBatchMessage(nil, "origin", &x))
	y := batch("web.1", 3, 9, 1_700_000_000_000, 2)
	f.Add(appendBatchMessage(nil, "", &y))
	f.Add(appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "m", Ts: 5, Source: live.SourceRemoteWrite, MachineLabel: "instance",
		Series: []*live.Series{live.NewSeries("up", metric.Labels{{Name: "instance", Value: "m"}, {Name: "machine", Value: "x"}})}, Values: []float64{math.NaN()}}))
	f.Add(appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "m", Source: live.SourceHTTP,
		Series: []*live.Series{live.NewSeries("a", nil)}, Values: []float64{2}}))
	for _, m := range []*pb.BusMessage{
		{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "m"}}},
		{Origin: "o", Msg: &pb.BusMessage_Machine{Machine: machineOf(live.MachineInfo{ID: "m", Hostname: "h"})}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	var w wireBatch // reused, as the follower does
	f.Fuzz(func(t *testing.T, raw []byte) {
		ok, err := w.read(raw, metric.DefaultLimits)
		m := &pb.BusMessage{}
		perr := proto.Unmarshal(raw, m)
		if !ok {
			if perr == nil && m.GetBatch() != nil && !hasOtherKind(raw) {
				t.Fatalf("a batch proto reads was left to proto: %v", m)
			}
			return
		}
		if perr != nil || m.GetBatch() == nil {
			t.Fatalf("read a batch proto reads as %v, %v", m, perr)
		}
		cerr := check(m, metric.DefaultLimits)
		switch {
		case (err == nil) != (cerr == nil):
			t.Fatalf("read says %v, check says %v", err, cerr)
		case err != nil && err.Error() != "bus message refused: "+cerr.Error():
			t.Fatalf("read says %q, check says %q", err, cerr)
		}
		var want wireBatch
		want.fromProto(m.GetOrigin(), m.GetBatch())
		if got, want := dumpWire(&w), dumpWire(&want); got != want {
			t.Fatalf("read\n%s\nproto\n%s", got, want)
		}
	})
}

// The storage consumer's reader writes each batch's samples as Prometheus
// decodes them, whichever decoder read the batch, and its reused buffers
// leave nothing of one message in the next.
func TestStoreReader(t *testing.T) {
	agent := batch("web.1", 0xab, 9, 1000, 2)
	agent.Values[1] = math.NaN() // an agent's non-finite value is not stored
	rw := ingest.BusBatch{Machine: "m", Ts: 2000, Source: live.SourceRemoteWrite, MachineLabel: "instance",
		Series: []*live.Series{live.NewSeries("up", metric.Labels{{Name: "instance", Value: "m"}, {Name: "machine", Value: "x"}})},
		Values: []float64{math.Float64frombits(0x7ff0000000000002)}} // a stale marker, stored as sent
	// The same agent batch after an (empty) disconnect, which the batch
	// replaces: the hand reader leaves that to proto.
	viaProto := appendBatchMessage([]byte{0x22, 0x00}, "o", &agent)
	disconnect, err := proto.Marshal(&pb.BusMessage{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	var enc remotewrite.Encoder
	var r storeReader
	for _, raw := range [][]byte{appendBatchMessage(nil, "o", &agent), appendBatchMessage(nil, "o", &rw), viaProto} {
		if err := r.add(&enc, snappy.Encode(nil, raw), metric.DefaultLimits); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.add(&enc, snappy.Encode(nil, disconnect), metric.DefaultLimits); err == nil || !strings.Contains(err.Error(), "not a batch") {
		t.Errorf("a disconnect stored: %v", err)
	}
	if err := r.add(&enc, snappy.Encode(nil, appendBatchMessage(nil, "o", &ingest.BusBatch{Machine: "m"})), metric.DefaultLimits); err == nil {
		t.Error("a batch of seq 0 stored")
	}
	body, err := snappy.Decode(nil, enc.Compressed())
	if err != nil {
		t.Fatal(err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ts := range wr.Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		got = append(got, fmt.Sprintf("%s %d %x", strings.Join(ls, ","), ts.Samples[0].Timestamp, math.Float64bits(ts.Samples[0].Value)))
	}
	agentLines := []string{
		fmt.Sprintf("__name__=cpu_usage_percent,core=0,machine=web.1 1000 %x", math.Float64bits(9)),
		fmt.Sprintf("__name__=sysmonstm_agent_seq,instance=ab,machine=web.1 1000 %x", math.Float64bits(9)),
	}
	want := append(append(append([]string{}, agentLines...),
		"__name__=up,instance=m,machine=x 2000 7ff0000000000002"), agentLines...)
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("stored\n%s\nwant\n%s", g, w)
	}
}
