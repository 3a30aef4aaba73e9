package bus

import (
	"errors"
	"fmt"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// MaxMessageBytes bounds a bus message, compressed and decompressed: a
// message over it is refused when published and when read.
const MaxMessageBytes = 8 << 20

// encode returns m as snappy-compressed protobuf (a bus message's payload).
func encode(m *pb.BusMessage) ([]byte, error) {
	raw, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode bus message: %w", err)
	}
	out := snappy.Encode(nil, raw)
	if len(raw) > MaxMessageBytes || len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("bus message is %d bytes, limit %d", len(raw), MaxMessageBytes)
	}
	return out, nil
}

// decode reads a bus message and checks it as ingest checks an agent's
// (machine id, series names and labels under lim, one sample value per
// series): bytes from the bus came from another process and may be
// damaged or forged. Values are not checked here; a non-finite one never
// passed a hub's validation and is dropped by the caller.
func decode(b []byte, lim metric.Limits) (*pb.BusMessage, error) {
	raw, err := uncompress(nil, b)
	if err != nil {
		return nil, err
	}
	return decodeRaw(raw, lim)
}

// uncompress snappy-decodes a bus message's payload into dst (reused when
// large enough), refusing one that would be over MaxMessageBytes.
func uncompress(dst, b []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(b)
	if err != nil {
		return nil, fmt.Errorf("decode bus message: %w", err)
	}
	if n > MaxMessageBytes {
		return nil, fmt.Errorf("decode bus message: %d bytes decompressed, limit %d", n, MaxMessageBytes)
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	raw, err := snappy.Decode(dst[:cap(dst)], b)
	if err != nil {
		return nil, fmt.Errorf("decode bus message: %w", err)
	}
	return raw, nil
}

// decodeRaw is decode after the snappy layer.
func decodeRaw(raw []byte, lim metric.Limits) (*pb.BusMessage, error) {
	m := &pb.BusMessage{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("decode bus message: %w", err)
	}
	if err := check(m, lim); err != nil {
		return nil, fmt.Errorf("bus message refused: %w", err)
	}
	return m, nil
}

// leadingOrigin returns the origin of an uncompressed message when it is
// its first field, as every publisher writes it (else nil), without
// copying it: a hub skips its own messages without decoding them.
func leadingOrigin(raw []byte) []byte {
	num, typ, n := protowire.ConsumeTag(raw)
	if n < 0 || num != fMessageOrigin || typ != protowire.BytesType {
		return nil
	}
	v, m := protowire.ConsumeBytes(raw[n:])
	if m < 0 {
		return nil
	}
	return v
}

// check validates a decoded message.
func check(m *pb.BusMessage, lim metric.Limits) error {
	var machine string
	switch x := m.Msg.(type) {
	case *pb.BusMessage_Batch:
		var w wireBatch
		w.fromProto(m.GetOrigin(), x.Batch)
		return w.check(lim)
	case *pb.BusMessage_Machine:
		machine = x.Machine.GetMachineId()
		if err := lim.ValidateSeries("machine_labels", labelsOf(x.Machine.GetLabels())); err != nil {
			return fmt.Errorf("machine labels: %w", err)
		}
	case *pb.BusMessage_Disconnect:
		machine = x.Disconnect.GetMachineId()
	case *pb.BusMessage_Processes:
		machine = x.Processes.GetMachineId()
		if n := len(x.Processes.GetSnapshot().GetProcesses()); n > 100 {
			return fmt.Errorf("%d processes, limit 100", n)
		}
	default:
		return errors.New("empty or unknown message")
	}
	return metric.ValidateMachineID(machine)
}

// labelsOf converts and sorts wire labels.
func labelsOf(in []*pb.Label) metric.Labels {
	if len(in) == 0 {
		return nil
	}
	ls := make(metric.Labels, len(in))
	for i, l := range in {
		ls[i] = metric.Label{Name: l.GetName(), Value: l.GetValue()}
	}
	return ls.Sort()
}

// wireLabels converts labels for the wire.
func wireLabels(ls metric.Labels) []*pb.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]*pb.Label, len(ls))
	for i, l := range ls {
		out[i] = &pb.Label{Name: l.Name, Value: l.Value}
	}
	return out
}
