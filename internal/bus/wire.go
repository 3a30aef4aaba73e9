package bus

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// The publish path encodes batches by hand, straight from ingest's batch
// into one buffer, instead of building protobuf objects per sample (about
// 380 allocations for a 100-series batch): the bytes are those of
// proto.Marshal of batchOf's message (field numbers of bus.proto), which
// TestAppendBatchMatchesProto checks. The follower and the storage
// consumer read them back by hand too (read.go).

// Field numbers of bus.proto and ingest.proto's Label.
const (
	fMessageOrigin = 1
	fMessageBatch  = 2
	fBatchMachine  = 1
	fBatchInstance = 2
	fBatchSeq      = 3
	fBatchTs       = 4
	fBatchSamples  = 5
	fBatchSource   = 6
	fBatchMLabel   = 7
	fSampleName    = 1
	fSampleLabels  = 2
	fSampleValue   = 3
	fLabelName     = 1
	fLabelValue    = 2
)

// appendBatchMessage appends BusMessage{origin, batch: x} to b.
func appendBatchMessage(b []byte, origin string, x *ingest.BusBatch) []byte {
	b = appendString(b, fMessageOrigin, origin)
	b = protowire.AppendTag(b, fMessageBatch, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(batchSize(x)))
	b = appendString(b, fBatchMachine, x.Machine)
	if x.Instance != 0 {
		b = protowire.AppendTag(b, fBatchInstance, protowire.Fixed64Type)
		b = binary.LittleEndian.AppendUint64(b, x.Instance)
	}
	if x.Seq != 0 {
		b = protowire.AppendTag(b, fBatchSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, x.Seq)
	}
	if x.Ts != 0 {
		b = protowire.AppendTag(b, fBatchTs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(x.Ts))
	}
	for i, s := range x.Series {
		b = protowire.AppendTag(b, fBatchSamples, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sampleSize(s.Name, s.Labels, x.Values[i])))
		b = appendString(b, fSampleName, s.Name)
		for _, l := range s.Labels {
			b = protowire.AppendTag(b, fSampleLabels, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = appendString(b, fLabelName, l.Name)
			b = appendString(b, fLabelValue, l.Value)
		}
		if v := x.Values[i]; math.Float64bits(v) != 0 {
			b = protowire.AppendTag(b, fSampleValue, protowire.Fixed64Type)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	b = appendString(b, fBatchSource, x.Source)
	return appendString(b, fBatchMLabel, x.MachineLabel)
}

// appendString appends a string field; proto3 leaves out an empty one.
func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func stringSize(field protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(field) + protowire.SizeBytes(len(s))
}

func labelSize(l metric.Label) int {
	return stringSize(fLabelName, l.Name) + stringSize(fLabelValue, l.Value)
}

func sampleSize(name string, ls metric.Labels, v float64) int {
	n := stringSize(fSampleName, name)
	for _, l := range ls {
		n += 1 + protowire.SizeBytes(labelSize(l))
	}
	if math.Float64bits(v) != 0 {
		n += 1 + 8
	}
	return n
}

func batchSize(x *ingest.BusBatch) int {
	n := stringSize(fBatchMachine, x.Machine)
	if x.Instance != 0 {
		n += 1 + 8
	}
	if x.Seq != 0 {
		n += 1 + protowire.SizeVarint(x.Seq)
	}
	if x.Ts != 0 {
		n += 1 + protowire.SizeVarint(uint64(x.Ts))
	}
	for i, s := range x.Series {
		n += 1 + protowire.SizeBytes(sampleSize(s.Name, s.Labels, x.Values[i]))
	}
	return n + stringSize(fBatchSource, x.Source) + stringSize(fBatchMLabel, x.MachineLabel)
}
