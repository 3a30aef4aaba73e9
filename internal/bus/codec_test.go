package bus

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

func TestCodecRoundTripAndRefusals(t *testing.T) {
	x := batch("web.1", 3, 9, 1_700_000_000_000, 2)
	in := &pb.BusMessage{Origin: "o", Msg: &pb.BusMessage_Batch{Batch: batchOf(&x)}}
	b, err := encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(b, metric.DefaultLimits)
	if err != nil || !proto.Equal(in, out) {
		t.Fatalf("round trip: %v\n%v\n%v", err, in, out)
	}
	raw := func(m *pb.BusMessage) []byte {
		r, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return snappy.Encode(nil, r)
	}
	bad := map[string][]byte{
		"not snappy":   []byte("\xff\xff\xff\xff\xff"),
		"not protobuf": snappy.Encode(nil, []byte("\x0a\xff")),
		"empty":        raw(&pb.BusMessage{}),
		"no machine":   raw(&pb.BusMessage{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{}}}),
		"seq 0":        raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m"}}}),
		"bad name": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Seq: 1,
			Samples: []*pb.BusSample{{Name: "bad name{", Value: 1}}}}}),
		"unsorted labels": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Seq: 1,
			Samples: []*pb.BusSample{{Name: "x", Labels: []*pb.Label{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}, Value: 1}}}}}),
		"machine label": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Seq: 1,
			Samples: []*pb.BusSample{{Name: "x", Labels: []*pb.Label{{Name: "machine", Value: "other"}}, Value: 1}}}}}),
		"control char in id": raw(&pb.BusMessage{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "a\x00b"}}}),
		"too large":          snappy.Encode(nil, make([]byte, MaxMessageBytes+1)),
		"unknown source":     raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Source: "grpc"}}}),
		"http machine label": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Source: live.SourceHTTP,
			Samples: []*pb.BusSample{{Name: "x", Labels: []*pb.Label{{Name: "machine", Value: "other"}}, Value: 1}}}}}),
		"http no machine":         raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{Source: live.SourceHTTP}}}),
		"rw bad machine label":    raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Source: live.SourceRemoteWrite, MachineLabel: "__x"}}}),
		"rw label but no machine": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{Source: live.SourceRemoteWrite, MachineLabel: "instance"}}}),
		"rw reserved name": raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{Source: live.SourceRemoteWrite,
			Samples: []*pb.BusSample{{Name: "sysmonstm_x", Value: 1}}}}}),
	}
	for name, b := range bad {
		if _, err := decode(b, metric.DefaultLimits); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// HTTP and remote-write batches have no seq; remote-written labels
	// keep the machine label as sent; series of no machine have no id.
	good := map[string]*pb.BusBatch{
		"http": {MachineId: "m", Source: live.SourceHTTP, Samples: []*pb.BusSample{{Name: "x", Value: 1}}},
		"rw": {MachineId: "m", Source: live.SourceRemoteWrite, MachineLabel: "instance",
			Samples: []*pb.BusSample{{Name: "x", Labels: []*pb.Label{{Name: "instance", Value: "m"}, {Name: "machine", Value: "other"}}, Value: 1}}},
		"rw no machine": {Source: live.SourceRemoteWrite, Samples: []*pb.BusSample{{Name: "x", Value: 1}}},
	}
	for name, bt := range good {
		if _, err := decode(raw(&pb.BusMessage{Msg: &pb.BusMessage_Batch{Batch: bt}}), metric.DefaultLimits); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A hub recognises its own messages by their leading origin field, as
// both encoders write it.
func TestLeadingOrigin(t *testing.T) {
	x := batch("m", 1, 1, 1, 1)
	byProto, err := proto.Marshal(&pb.BusMessage{Origin: "hub-1", Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		raw  []byte
		want string
	}{
		{appendBatchMessage(nil, "hub-1", &x), "hub-1"},
		{byProto, "hub-1"},
		{appendBatchMessage(nil, "", &x), ""},
		{[]byte{0x0a, 0x7f}, ""}, // length beyond the bytes
		{nil, ""},
	} {
		if got := string(leadingOrigin(c.raw)); got != c.want {
			t.Errorf("leadingOrigin(%x) = %q, want %q", c.raw, got, c.want)
		}
	}
}

// FuzzDecode: bytes from the bus never panic the decoder, and what it
// accepts is a valid message that encodes again.
func FuzzDecode(f *testing.F) {
	x := batch("web.1", 3, 9, 1_700_000_000_000, 2)
	for _, m := range []*pb.BusMessage{
		{Origin: "o", Msg: &pb.BusMessage_Batch{Batch: batchOf(&x)}},
		{Msg: &pb.BusMessage_Machine{Machine: machineOf(live.MachineInfo{ID: "m", Hostname: "h", Labels: metric.Labels{{Name: "a", Value: "b"}}})}},
		{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: "m*>"}}},
		{Msg: &pb.BusMessage_Processes{Processes: &pb.BusProcesses{MachineId: "m", Snapshot: &pb.ProcessSnapshot{Processes: []*pb.Process{{Pid: 1, Name: "init"}}}}}},
		{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Source: live.SourceHTTP, Samples: []*pb.BusSample{{Name: "x", Value: 1}}}}},
		{Msg: &pb.BusMessage_Batch{Batch: &pb.BusBatch{MachineId: "m", Source: live.SourceRemoteWrite, MachineLabel: "instance",
			Samples: []*pb.BusSample{{Name: "x", Labels: []*pb.Label{{Name: "instance", Value: "m"}, {Name: "machine", Value: "k"}}, Value: 1}}}}},
	} {
		b, err := encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b, metric.DefaultLimits)
		if err != nil {
			return
		}
		if err := check(m, metric.DefaultLimits); err != nil {
			t.Fatalf("accepted an invalid message: %v", err)
		}
		if _, err := encode(m); err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
	})
}

// The hand-written encoder of the publish path writes exactly what
// proto.Marshal writes for the same message, edge cases included.
func TestAppendBatchMatchesProto(t *testing.T) {
	f := func(x ingest.BusBatch) {
		t.Helper()
		got := appendBatchMessage(nil, "origin", &x)
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.BusMessage{Origin: "origin", Msg: &pb.BusMessage_Batch{Batch: batchOf(&x)}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("hand-encoded %x\nproto.Marshal %x", got, want)
		}
	}
	f(batch("web.1", 3, 9, 1_700_000_000_000, 2))
	f(agentBatch(77))
	f(ingest.BusBatch{Machine: "m", Seq: 1})                      // no instance, ts or samples
	f(ingest.BusBatch{Machine: "m", Instance: 1, Seq: 1, Ts: -5}) // negative ts: 10-byte varint
	long := strings.Repeat("x", 300)
	f(ingest.BusBatch{Machine: long, Instance: math.MaxUint64, Seq: math.MaxUint64, Ts: 1,
		Series: []*live.Series{live.NewSeries("a", nil), live.NewSeries("b", metric.Labels{{Name: "l", Value: long}}), live.NewSeries("c", metric.Labels{{Name: "e", Value: ""}})},
		Values: []float64{0, math.Copysign(0, -1), -1.5}})
	// HTTP and remote-write batches: source and machine label after the samples.
	f(ingest.BusBatch{Machine: "m", Ts: 5, Source: live.SourceHTTP, Series: []*live.Series{live.NewSeries("a", nil)}, Values: []float64{1}})
	f(ingest.BusBatch{Machine: "m", Ts: 5, Source: live.SourceRemoteWrite, MachineLabel: "instance",
		Series: []*live.Series{live.NewSeries("up", metric.Labels{{Name: "instance", Value: "m"}, {Name: "machine", Value: "x"}})}, Values: []float64{math.NaN()}})
}
