package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang/snappy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Publish publishes batches (ingest's group commit) asynchronously, each
// with its Nats-Msg-Id (machine/instance/seq), and returns once JetStream
// acknowledged every one: stored on a quorum of its replicas. A batch
// JetStream already had (an agent's replay to another hub) is
// acknowledged as a duplicate and stored once.
func (b *Bus) Publish(ctx context.Context, batches []ingest.BusBatch) error {
	if err := b.Ready(); err != nil {
		b.m.publishErrors.Inc()
		return err // at once: nothing would be acknowledged while disconnected
	}
	futs := make([]jetstream.PubAckFuture, 0, len(batches))
	raw, _ := b.rawPool.Get().(*[]byte)
	if raw == nil {
		raw = new([]byte)
	}
	defer b.rawPool.Put(raw)
	// Compressed messages go into slabs, one allocation per 64 KiB or so:
	// JetStream keeps a message until its PubAck, to resend it.
	var slab []byte
	for i := range batches {
		x := &batches[i]
		*raw = appendBatchMessage((*raw)[:0], b.origin, x)
		need := snappy.MaxEncodedLen(len(*raw))
		if len(*raw) > MaxMessageBytes || need < 0 {
			b.m.publishErrors.Inc()
			return fmt.Errorf("batch %d of machine %q is %d bytes on the bus, limit %d", x.Seq, x.Machine, len(*raw), MaxMessageBytes)
		}
		if cap(slab)-len(slab) < need {
			slab = make([]byte, 0, max(need, 64<<10))
		}
		data := snappy.Encode(slab[len(slab):len(slab)+need], *raw)
		slab = slab[:len(slab)+len(data)]
		msg := &nats.Msg{Subject: batchSubjectOf(x), Data: data[:len(data):len(data)]}
		var opts []jetstream.PublishOpt
		if x.Source == "" {
			// HTTP and remote-write batches have no seq: no
			// de-duplication id; a sender's retry after a 503 may store
			// a sample twice, which the TSDB de-duplicates.
			opts = append(opts, jetstream.WithMsgID(msgID(x.Machine, x.Instance, x.Seq)))
		}
		f, err := b.js.PublishMsgAsync(msg, opts...)
		if err != nil {
			b.m.publishErrors.Inc()
			return fmt.Errorf("publish to NATS JetStream: %w", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.m.publishErrors.Inc()
			return fmt.Errorf("NATS JetStream did not store a batch: %w", err)
		case <-ctx.Done():
			b.m.publishErrors.Inc()
			return fmt.Errorf("NATS JetStream did not acknowledge %d batches: %w", len(futs), ctx.Err())
		}
	}
	b.m.published.Add(float64(len(futs)))
	return nil
}

// batchOf is the bus form of a batch as protobuf objects (tests; Publish
// encodes by hand, see wire.go); non-finite values never got here (ingest
// dropped them).
func batchOf(x *ingest.BusBatch) *pb.BusBatch {
	out := &pb.BusBatch{MachineId: x.Machine, Instance: x.Instance, Seq: x.Seq, TimestampMs: x.Ts,
		Samples: make([]*pb.BusSample, len(x.Series)), Source: x.Source, MachineLabel: x.MachineLabel}
	for i, s := range x.Series {
		out.Samples[i] = &pb.BusSample{Name: s.Name, Labels: wireLabels(s.Labels), Value: x.Values[i]}
	}
	return out
}

// LastSeq is the seq of the newest batch JetStream holds of a machine's
// agent instance (its subject's last message), 0 when it holds none.
func (b *Bus) LastSeq(ctx context.Context, machine string, instance uint64) (uint64, error) {
	if err := b.Ready(); err != nil {
		return 0, err
	}
	msg, err := b.samples.GetLastMsgForSubject(ctx, batchSubject(machine, instance))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the last batch of machine %q from NATS JetStream: %w", machine, err)
	}
	m, err := decode(msg.Data, b.opts.Limits)
	if err != nil {
		return 0, err
	}
	return m.GetBatch().GetSeq(), nil
}

// Sink returns the ingest.Live ingest feeds in bus mode: every call goes
// to inner (this hub's live state and alert engine) and hellos,
// disconnects and process lists are also published for the other hubs.
// Batches are not: they reach the bus through Publish.
func (b *Bus) Sink(inner ingest.Live) ingest.Live { return &sink{Live: inner, b: b} }

type sink struct {
	ingest.Live
	b *Bus
}

func (s *sink) Connect(info live.MachineInfo) {
	s.Live.Connect(info)
	s.b.noteHello(info.ID, s.b.origin)
	s.b.publishState(kindHello, info.ID, &pb.BusMessage{Msg: &pb.BusMessage_Machine{Machine: machineOf(info)}})
}

func (s *sink) Disconnect(id string) {
	s.Live.Disconnect(id)
	s.b.publishState(kindDisconnect, id, &pb.BusMessage{Msg: &pb.BusMessage_Disconnect{Disconnect: &pb.BusDisconnect{MachineId: id}}})
}

func (s *sink) SetProcesses(id string, ts int64, procs []live.Process) {
	s.Live.SetProcesses(id, ts, procs)
	snap := &pb.ProcessSnapshot{TimestampMs: ts, Processes: make([]*pb.Process, len(procs))}
	for i, p := range procs {
		snap.Processes[i] = &pb.Process{Pid: p.PID, Name: p.Name, User: p.User, Command: p.Command,
			CpuPercent: p.CPUPercent, RssBytes: p.RSSBytes, State: p.State}
	}
	s.b.publishState(kindProcesses, id, &pb.BusMessage{Msg: &pb.BusMessage_Processes{Processes: &pb.BusProcesses{MachineId: id, Snapshot: snap}}})
}

// publishState publishes a live update without waiting for its
// acknowledgement: it is news, not data; a lost one is replaced by the
// next (and a hub that missed it sees the machine's batches anyway).
func (b *Bus) publishState(kind, machine string, m *pb.BusMessage) {
	if b.Ready() != nil {
		b.m.publishErrors.Inc()
		return // disconnected: the next update replaces this one
	}
	m.Origin = b.origin
	data, err := encode(m)
	if err == nil {
		_, err = b.js.PublishMsgAsync(&nats.Msg{Subject: stateSubjectOf(kind, machine), Data: data})
	}
	if err != nil {
		b.m.publishErrors.Inc()
		b.log.Debug("bus: live update not published", "kind", kind, "machine", machine, "err", err)
	}
}

// noteHello records which hub the newest hello of machine came from.
func (b *Bus) noteHello(machine, origin string) {
	b.mu.Lock()
	b.helloFrom[machine] = origin
	b.mu.Unlock()
}

// helloFromOrigin reports whether the newest hello of machine came from origin.
func (b *Bus) helloFromOrigin(machine, origin string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.helloFrom[machine] == origin
}

// machineOf is the bus form of an agent's hello.
func machineOf(in live.MachineInfo) *pb.BusMachine {
	m := &pb.BusMachine{MachineId: in.ID, Hostname: in.Hostname, Labels: wireLabels(in.Labels),
		AgentVersion: in.AgentVersion, IntervalMs: in.IntervalMs, Source: in.Source,
		Info: &pb.HostInfo{Os: in.OS, Platform: in.Platform, KernelVersion: in.KernelVersion, Arch: in.Arch,
			CpuModel: in.CPUModel, CpuCores: in.CPUCores, CpuThreads: in.CPUThreads, MemoryTotalBytes: in.MemoryTotalBytes}}
	if !in.BootTime.IsZero() {
		m.Info.BootTimeUnix = in.BootTime.Unix()
	}
	return m
}

// infoOf is the live form of a hello read from the bus.
func infoOf(m *pb.BusMachine) live.MachineInfo {
	hi := m.GetInfo()
	info := live.MachineInfo{ID: m.GetMachineId(), Hostname: m.GetHostname(), Labels: labelsOf(m.GetLabels()),
		AgentVersion: m.GetAgentVersion(), IntervalMs: m.GetIntervalMs(), Source: m.GetSource(),
		OS: hi.GetOs(), Platform: hi.GetPlatform(), KernelVersion: hi.GetKernelVersion(), Arch: hi.GetArch(),
		CPUModel: hi.GetCpuModel(), CPUCores: hi.GetCpuCores(), CPUThreads: hi.GetCpuThreads(), MemoryTotalBytes: hi.GetMemoryTotalBytes()}
	if bt := hi.GetBootTimeUnix(); bt > 0 {
		info.BootTime = time.Unix(bt, 0).UTC()
	}
	return info
}
