package bus

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// The live-view follower and the storage consumer read batches by hand,
// as the publish path writes them (wire.go): generated protobuf decoding
// cost about 870 allocations for a 100-series batch, one object and one
// string per sample and label.
// read accepts and refuses exactly what proto.Unmarshal followed by check
// does, and reads the same fields (FuzzReadBatch); any other message goes
// through the generated code.

// Field numbers of bus.proto's other BusMessage kinds (the oneof's
// members after batch).
const (
	fMessageMachine    = 3
	fMessageProcesses  = 5
	fMessageDisconnect = 4
)

// wireBatch is a BusMessage holding a batch, read by read from an
// uncompressed message or copied from a decoded one by fromProto. After
// read its strings alias the message's bytes: they are valid until those
// bytes are reused for the next message, so a user that keeps one (a
// machine id, a new series) copies it. Its slices are reused from one
// message to the next.
type wireBatch struct {
	origin       string
	machine      string // "" only for remote-written series of no dashboard machine
	instance     uint64 // the agent process's Hello.instance
	seq          uint64 // the agent's Batch.seq; 0 with source
	ts           int64  // ms since epoch
	source       string // "", live.SourceHTTP or live.SourceRemoteWrite
	machineLabel string // with source remote_write, the label naming the machine
	samples      []wireSample
	labels       metric.Labels // every sample's labels, back to back
	scratch      metric.Labels // check's: a remote-written sample's labels less the machine label
}

// wireSample is one BusSample of a wireBatch.
type wireSample struct {
	name   string
	lo, hi int // its labels are wireBatch.labels[lo:hi], as they came
	value  float64
}

// labelsOf returns s's labels as they came (sorted, once checked).
func (w *wireBatch) labelsOf(s *wireSample) metric.Labels { return w.labels[s.lo:s.hi] }

// reset empties w, keeping its slices' memory.
func (w *wireBatch) reset() {
	*w = wireBatch{samples: w.samples[:0], labels: w.labels[:0], scratch: w.scratch[:0]}
}

// fromProto sets w to a decoded batch and its message's origin.
func (w *wireBatch) fromProto(origin string, b *pb.BusBatch) {
	w.reset()
	w.origin, w.machine, w.instance, w.seq, w.ts = origin, b.GetMachineId(), b.GetInstance(), b.GetSeq(), b.GetTimestampMs()
	w.source, w.machineLabel = b.GetSource(), b.GetMachineLabel()
	for _, s := range b.GetSamples() {
		lo := len(w.labels)
		for _, l := range s.GetLabels() {
			w.labels = append(w.labels, metric.Label{Name: l.GetName(), Value: l.GetValue()})
		}
		w.samples = append(w.samples, wireSample{name: s.GetName(), lo: lo, hi: len(w.labels), value: s.GetValue()})
	}
}

// read decodes raw, an uncompressed bus message, into w and checks it,
// when raw holds a batch proto.Unmarshal would decode as one. It reports
// false, w's content then meaningless, for anything else: another kind of
// message, a batch field followed or preceded by another member of the
// oneof, and bytes proto.Unmarshal refuses (malformed, invalid UTF-8), so
// that decodeRaw decodes them with the generated code and says what is
// wrong. Fields are read as proto3 reads them: a scalar or string field
// given twice keeps the last, a batch field given twice is merged into
// one batch, unknown fields and known ones of another wire type are
// skipped.
func (w *wireBatch) read(raw []byte, lim metric.Limits) (bool, error) {
	w.reset()
	batch := false
	for len(raw) > 0 {
		num, typ, n := consumeTag(raw)
		if n < 0 {
			return false, nil
		}
		raw = raw[n:]
		switch {
		case num == fMessageOrigin && typ == protowire.BytesType:
			w.origin, n = consumeString(raw)
		case num == fMessageBatch && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(raw); n >= 0 && !w.readBatch(v) {
				n = -1
			}
			batch = true
		case num >= fMessageMachine && num <= fMessageProcesses && typ == protowire.BytesType:
			return false, nil
		default:
			n = protowire.ConsumeFieldValue(num, typ, raw)
		}
		if n < 0 {
			return false, nil
		}
		raw = raw[n:]
	}
	if !batch {
		return false, nil
	}
	if err := w.check(lim); err != nil {
		return true, fmt.Errorf("bus message refused: %w", err)
	}
	return true, nil
}

// readBatch reads a BusBatch's fields into w, after any read before.
func (w *wireBatch) readBatch(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fBatchMachine && typ == protowire.BytesType:
			w.machine, n = consumeString(b)
		case num == fBatchInstance && typ == protowire.Fixed64Type:
			w.instance, n = protowire.ConsumeFixed64(b)
		case num == fBatchSeq && typ == protowire.VarintType:
			w.seq, n = protowire.ConsumeVarint(b)
		case num == fBatchTs && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			w.ts = int64(v)
		case num == fBatchSamples && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 && !w.readSample(v) {
				n = -1
			}
		case num == fBatchSource && typ == protowire.BytesType:
			w.source, n = consumeString(b)
		case num == fBatchMLabel && typ == protowire.BytesType:
			w.machineLabel, n = consumeString(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// readSample appends one BusSample to w.
func (w *wireBatch) readSample(b []byte) bool {
	s := wireSample{lo: len(w.labels)}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fSampleName && typ == protowire.BytesType:
			s.name, n = consumeString(b)
		case num == fSampleLabels && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 && !w.readLabel(v) {
				n = -1
			}
		case num == fSampleValue && typ == protowire.Fixed64Type:
			var v uint64
			v, n = protowire.ConsumeFixed64(b)
			s.value = math.Float64frombits(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	s.hi = len(w.labels)
	w.samples = append(w.samples, s)
	return true
}

// readLabel appends one Label to w.labels.
func (w *wireBatch) readLabel(b []byte) bool {
	var l metric.Label
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fLabelName && typ == protowire.BytesType:
			l.Name, n = consumeString(b)
		case num == fLabelValue && typ == protowire.BytesType:
			l.Value, n = consumeString(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	w.labels = append(w.labels, l)
	return true
}

// consumeTag is protowire.ConsumeTag refusing what proto.Unmarshal
// refuses too: field numbers past protowire.MaxValidNumber and an end of
// group outside a group.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return num, typ, n
}

// consumeString reads a string field's value as proto3 does (valid UTF-8
// only), without copying: the string aliases b.
func consumeString(b []byte) (string, int) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 || !utf8.Valid(v) {
		return "", -1
	}
	if len(v) == 0 {
		return "", n
	}
	return unsafe.String(&v[0], len(v)), n
}

// check validates a batch as ingest validates an agent's: its source and
// seq, every series name and labels under lim (labels sorted; a
// remote-written series' machine label is kept as sent and checked like
// the others), and the machine id. Values are not checked here: a
// non-finite one never passed a hub's validation and is dropped by the
// reader.
func (w *wireBatch) check(lim metric.Limits) error {
	machine := w.machine
	rw := false
	switch w.source {
	case "":
		if w.seq == 0 {
			return errors.New("batch seq 0")
		}
	case live.SourceHTTP:
	case live.SourceRemoteWrite:
		rw = true
		if machine == "" && w.machineLabel == "" {
			machine = "_" // series of no dashboard machine: valid
		} else if !metric.ValidLabelName(w.machineLabel) {
			return fmt.Errorf("remote-write batch: invalid machine label %q", w.machineLabel)
		}
	default:
		return fmt.Errorf("batch of unknown source %q", w.source)
	}
	for i := range w.samples {
		s := &w.samples[i]
		ls := w.labelsOf(s)
		if rw {
			ls = append(w.scratch[:0], ls...)
			ls = slices.DeleteFunc(ls, func(l metric.Label) bool { return l.Name == metric.MachineLabel })
			w.scratch = ls
		}
		if err := lim.ValidateSeries(s.name, ls); err != nil {
			return err // unsorted labels too: publishers send them sorted
		}
	}
	return metric.ValidateMachineID(machine)
}
