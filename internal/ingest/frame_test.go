package ingest

import (
	"math"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

func batchMessage(seq uint64, ts int64, ids []uint32, vals []float64) []byte {
	b, err := proto.Marshal(&pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{Seq: seq, TimestampMs: ts, SeriesIds: ids, Values: vals}}})
	if err != nil {
		panic(err)
	}
	return b
}

// unpackedBatch is a batch whose ids and values are encoded unpacked, as
// proto allows: the frame leaves it to proto.
func unpackedBatch() []byte {
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.VarintType)
	body = protowire.AppendVarint(body, 5)
	for _, id := range []uint32{3, 1} {
		body = protowire.AppendTag(body, 3, protowire.VarintType)
		body = protowire.AppendVarint(body, uint64(id))
	}
	for _, v := range []float64{1.5, -2} {
		body = protowire.AppendTag(body, 4, protowire.Fixed64Type)
		body = protowire.AppendFixed64(body, math.Float64bits(v))
	}
	b := protowire.AppendTag(nil, 3, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// checkFrame decodes data into a frame and with proto.Unmarshal, and fails
// unless both agree: both refuse it, or both read the same message.
func checkFrame(t *testing.T, s *Server, data []byte) (fast bool) {
	t.Helper()
	f := &frame{s: s}
	f.reset()
	err := f.unmarshal(data)
	var want pb.AgentMessage
	werr := proto.Unmarshal(data, &want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("frame error %v, proto error %v", err, werr)
	}
	if err != nil {
		return false
	}
	if !f.fast {
		if !proto.Equal(f.AgentMessage, &want) {
			t.Fatalf("frame decoded %v, proto %v", f.AgentMessage, &want)
		}
		return false
	}
	wb := want.GetBatch()
	if wb == nil {
		t.Fatalf("frame decoded a batch, proto %v", &want)
	}
	if f.job.seq != wb.GetSeq() || f.job.ts != wb.GetTimestampMs() || len(f.ids) != len(wb.GetSeriesIds()) || len(f.job.values) != len(wb.GetValues()) {
		t.Fatalf("frame decoded seq %d ts %d %d ids %d values, proto %v", f.job.seq, f.job.ts, len(f.ids), len(f.job.values), wb)
	}
	for i, id := range wb.GetSeriesIds() {
		if f.ids[i] != id {
			t.Fatalf("id %d: frame %d, proto %d", i, f.ids[i], id)
		}
	}
	for i, v := range wb.GetValues() {
		if math.Float64bits(f.job.values[i]) != math.Float64bits(v) {
			t.Fatalf("value %d: frame %v, proto %v", i, f.job.values[i], v)
		}
	}
	return true
}

func TestFrameDecodesLikeProto(t *testing.T) {
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}})
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := proto.Marshal(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{MachineId: "m"}}})
	twice := append(batchMessage(1, 2, []uint32{1}, []float64{1}), batchMessage(3, 4, []uint32{2}, []float64{2})...)
	for _, c := range []struct {
		name string
		data []byte
		fast bool
	}{
		{"batch", batchMessage(7, 1_700_000_000_000, []uint32{0, 1, 300, math.MaxUint32}, []float64{1, math.NaN(), -0.0, math.Inf(-1)}), true},
		{"empty batch", batchMessage(1, 0, nil, nil), true},
		{"negative timestamp", batchMessage(1, -5, []uint32{1}, []float64{2}), true},
		{"ids and values differ in number", batchMessage(1, 1, []uint32{1, 2}, []float64{2}), true},
		{"unpacked", unpackedBatch(), false},
		{"batch field twice (merged by proto)", twice, false},
		{"hello", hello, false},
		{"empty message", nil, false},
		{"truncated", batchMessage(7, 1, []uint32{1, 2}, []float64{1, 2})[:12], false},
		{"values not a multiple of 8 bytes", []byte{0x1a, 0x03, 0x22, 0x01, 0x00}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := checkFrame(t, s, c.data); got != c.fast {
				t.Fatalf("decoded by hand: %v, want %v", got, c.fast)
			}
		})
	}
}

// FuzzFrame checks the hand decoder of batches against proto: whatever the
// frame accepts, proto reads the same way, and what proto refuses the
// frame refuses.
func FuzzFrame(f *testing.F) {
	f.Add(batchMessage(7, 1_700_000_000_000, []uint32{0, 1, 300}, []float64{1, math.NaN(), -0.0}))
	f.Add(batchMessage(1, -1, nil, []float64{1}))
	f.Add(unpackedBatch())
	f.Add([]byte{0x1a, 0x03, 0x22, 0x01, 0x00})
	hello, _ := proto.Marshal(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{MachineId: "m"}}})
	f.Add(hello)
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFrame(t, s, data) })
}

// TestFrameBatchAllocatesNothing: a batch decoded into a frame whose
// slices have grown allocates nothing.
func TestFrameBatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}})
	if err != nil {
		t.Fatal(err)
	}
	ids, vals := make([]uint32, 1300), make([]float64, 1300)
	for i := range ids {
		ids[i], vals[i] = uint32(i), float64(i)/100
	}
	data := batchMessage(1, 1_700_000_000_000, ids, vals)
	f := &frame{s: s}
	f.reset()
	if err := f.unmarshal(data); err != nil || !f.fast {
		t.Fatalf("fast %v, err %v", f.fast, err)
	}
	if n := testing.AllocsPerRun(100, func() {
		f.reset()
		_ = f.unmarshal(data)
	}); n != 0 {
		t.Fatalf("a batch of 1,300 values allocates %.0f times", n)
	}
}

// TestStreamWithoutIngestCodec: a gRPC server built without ServerOptions
// decodes every message with proto, and batches are stored all the same.
func TestStreamWithoutIngestCodec(t *testing.T) {
	e := newEnvGRPC(t, t.TempDir(), nil, []grpc.ServerOption{grpc.MaxRecvMsgSize(8 << 20)})
	a, err := e.connect("plain-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	a.defs("load1", "load5")
	for i := 1; i <= 3; i++ {
		a.batch(uint64(i), tick(i), []uint32{0, 1}, []float64{float64(i), 0.5})
	}
	a.waitAck(3)
	if pts := e.points("load1", "plain-1"); len(pts) != 3 || pts[2][1] != 3 {
		t.Fatalf("stored %v", pts)
	}
}
