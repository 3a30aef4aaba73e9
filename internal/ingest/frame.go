package ingest

import (
	"encoding/binary"
	"math"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// frame is a stream's receive buffer, one AgentMessage at a time. With the
// ingest codec (ServerOptions), a batch in the encoding agents send is
// decoded by hand: its series ids into the frame's own slice, reused for
// every batch, and its values into a pooled job's slice, so that a batch
// allocates nothing. Any other message, or a batch encoded otherwise, is
// decoded by proto into the embedded AgentMessage; without the codec (a
// gRPC server built without ServerOptions) every message is.
type frame struct {
	*pb.AgentMessage // the message, unless fast

	s    *Server
	fast bool     // the message was a batch decoded by hand into ids and job
	ids  []uint32 // fast: the batch's series ids; reused by the next message
	job  *job     // fast: the batch's seq, ts and values; the stream takes it
}

// reset readies f for the next message: a new AgentMessage unless the
// last message was decoded by hand and left the current one untouched.
func (f *frame) reset() {
	if f.AgentMessage == nil || !f.fast {
		f.AgentMessage = &pb.AgentMessage{}
	}
	f.fast = false
}

// unmarshal decodes one AgentMessage from b, which it does not keep.
func (f *frame) unmarshal(b []byte) error {
	if f.decodeBatch(b) {
		f.fast = true
		return nil
	}
	return proto.Unmarshal(b, f.AgentMessage)
}

// decodeBatch decodes b if it is an AgentMessage holding one batch whose
// fields each appear at most once, ids and values packed (what proto
// encoders write). It reports false, having decoded nothing that counts,
// for anything else, which proto then decodes or rejects.
func (f *frame) decodeBatch(b []byte) bool {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 3 || typ != protowire.BytesType {
		return false
	}
	body, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return false
	}
	if f.job == nil {
		f.job = f.s.newJob(nil, 0, 0)
	}
	var seq, ts uint64
	ids, vals := f.ids[:0], f.job.values[:0]
	var seen [5]bool
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 || num < 1 || num > 4 || seen[num] {
			return false
		}
		seen[num] = true
		body = body[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(body)
			if n < 0 {
				return false
			}
			if num == 1 {
				seq = v
			} else {
				ts = v
			}
			body = body[n:]
		case num == 3 && typ == protowire.BytesType:
			p, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return false
			}
			for len(p) > 0 {
				v, k := protowire.ConsumeVarint(p)
				if k < 0 {
					return false
				}
				ids = append(ids, uint32(v)) // as proto decodes a uint32
				p = p[k:]
			}
			body = body[n:]
		case num == 4 && typ == protowire.BytesType:
			p, n := protowire.ConsumeBytes(body)
			if n < 0 || len(p)%8 != 0 {
				return false
			}
			for ; len(p) > 0; p = p[8:] {
				vals = append(vals, math.Float64frombits(binary.LittleEndian.Uint64(p)))
			}
			body = body[n:]
		default:
			return false
		}
	}
	f.ids = ids
	f.job.seq, f.job.ts, f.job.values = seq, int64(ts), vals
	return true
}

// takeJob hands the fast batch's job, holding its values, to the caller.
func (f *frame) takeJob() *job {
	j := f.job
	f.job = nil
	return j
}

// codec is the gRPC codec of ServerOptions: AgentMessages received into a
// frame are decoded by frame.unmarshal, everything else by the proto codec.
type codec struct{ proto encoding.CodecV2 }

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return f.unmarshal(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return f.unmarshal(buf.ReadOnlyData())
}
