package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// follow applies a stream's messages to the live state, from the last
// message of each subject on (so a starting hub recovers every machine's
// newest batch, hello, disconnect and process list), with an ordered
// consumer of its own: nothing is acknowledged, and after a NATS failover
// the consumer resumes where it stopped.
func (b *Bus) follow(ctx context.Context, stream, subjects string) {
	f := newFollower(b)
	var backoff remotewrite.Backoff
	var applied atomic.Uint64 // stream sequence of the last message taken
	for ctx.Err() == nil {
		cfg := jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subjects},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		}
		if seq := applied.Load(); seq > 0 {
			// Recreated after a stall: resume after the last message taken.
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq+1
		}
		cons, err := b.js.OrderedConsumer(ctx, stream, cfg)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("bus: cannot follow stream; retrying", "stream", stream, "err", err)
				sleep(ctx, backoff.Next())
			}
			continue
		}
		// Short pulls with a heartbeat each second: when the NATS node
		// serving the consumer dies, the missing heartbeats (2 s) make the
		// ordered consumer recreate itself on a survivor, resuming after
		// the last message applied. With the defaults (30 s pulls, 15 s
		// heartbeats) that took up to 30 s, longer than --offline-after,
		// so other hubs' machines showed offline meanwhile.
		it, err := cons.Messages(jetstream.PullExpiry(followExpiry), jetstream.PullHeartbeat(followHeartbeat))
		if err != nil {
			b.log.Warn("bus: cannot follow stream; retrying", "stream", stream, "err", err)
			sleep(ctx, backoff.Next())
			continue
		}
		backoff = remotewrite.Backoff{}
		wctx, stopWatch := context.WithCancel(ctx)
		go b.watchFollower(wctx, stream, &applied, it.Stop)
		stop := context.AfterFunc(ctx, it.Stop)
		for {
			msg, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
					break
				}
				b.log.Debug("bus: follower", "stream", stream, "err", err)
				sleep(ctx, 100*time.Millisecond) // the ordered consumer recovers by itself
				continue
			}
			if md, err := msg.Metadata(); err == nil {
				applied.Store(md.Sequence.Stream)
			}
			f.apply(msg.Data())
		}
		stopWatch()
		stop()
		it.Stop()
	}
}

// watchFollower is the follower's safety net against a consumer that
// stalls without an error (seen when the NATS node holding it was killed
// in a 3-node cluster: the stream went on, the consumer delivered
// nothing): every followCheck it compares the last message taken with the
// stream's last sequence, and when the stream is ahead and nothing was
// taken for two checks in a row, it stops the iterator, so follow
// recreates the consumer after the last message taken.
func (b *Bus) watchFollower(ctx context.Context, stream string, applied *atomic.Uint64, stop func()) {
	t := time.NewTicker(followCheck)
	defer t.Stop()
	last, stalled := applied.Load(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := applied.Load()
		if cur != last {
			last, stalled = cur, 0
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, followCheck)
		s, err := b.js.Stream(ictx, stream)
		cancel()
		if err != nil {
			continue // NATS itself is unreachable: the client reconnects
		}
		if s.CachedInfo().State.LastSeq <= cur {
			stalled = 0
			continue
		}
		if stalled++; stalled >= 2 {
			b.m.followerRestarts.Inc()
			b.log.Warn("bus: live-view follower stalled behind its stream; recreating it", "stream", stream,
				"taken", cur, "stream_last", s.CachedInfo().State.LastSeq)
			stop()
			return
		}
	}
}

// The follower's pull expiry and heartbeat (see follow).
const (
	followExpiry    = 5 * time.Second
	followHeartbeat = time.Second
	// followCheck is the period of watchFollower's checks.
	followCheck = 2 * time.Second
)

// follower applies one stream's messages. Only its goroutine uses it.
type follower struct {
	b *Bus
	// machines holds, per machine id, the id's own copy and the cache of
	// the machine's series identities, so a machine's batches reuse them
	// as an agent's stream does.
	machines map[string]*followed
	batch    wireBatch      // the batch being applied; reused
	series   []*live.Series // scratch of samples: the batch's identities
	values   []float64      // scratch of samples: their values
	key      []byte         // scratch of samples
	raw      []byte         // scratch of apply: the uncompressed message
}

// followed is what a follower keeps of one machine.
type followed struct {
	id     string // the machine id, owned (not aliasing a message)
	series map[string]*live.Series
}

// newFollower returns a follower applying messages for b.
func newFollower(b *Bus) *follower {
	return &follower{b: b, machines: map[string]*followed{}}
}

// maxCachedSeries bounds one machine's cached series identities; past it
// the cache starts afresh.
const maxCachedSeries = 100_000

// apply decodes one message and applies it, unless this hub published it
// (it applied it when its agent sent it). A batch as publishers write it
// is read by hand (read.go); anything else is decoded by proto.
func (f *follower) apply(data []byte) {
	b := f.b
	raw, err := uncompress(f.raw, data)
	if err == nil {
		f.raw = raw
		if string(leadingOrigin(raw)) == b.origin {
			return
		}
		var ok bool
		if ok, err = f.batch.read(raw, b.opts.Limits); ok && err == nil {
			f.applyBatch()
			return
		}
	}
	var m *pb.BusMessage
	if err == nil {
		m, err = decodeRaw(raw, b.opts.Limits)
	}
	if err != nil {
		b.m.badMessages.Inc()
		b.log.Warn("bus: message dropped", "err", err)
		return
	}
	if x, ok := m.Msg.(*pb.BusMessage_Batch); ok {
		f.batch.fromProto(m.GetOrigin(), x.Batch)
		f.applyBatch()
		return
	}
	if m.GetOrigin() == b.origin {
		return
	}
	lv := b.opts.Live
	switch x := m.Msg.(type) {
	case *pb.BusMessage_Machine:
		b.noteHello(x.Machine.GetMachineId(), m.GetOrigin())
		lv.Connect(infoOf(x.Machine))
		b.m.applied.WithLabelValues("hello").Inc()
	case *pb.BusMessage_Disconnect:
		id := x.Disconnect.GetMachineId()
		// Only the hub the agent said hello to last can say it left.
		if b.helloFromOrigin(id, m.GetOrigin()) {
			lv.Disconnect(id)
			b.m.applied.WithLabelValues("disconnect").Inc()
		}
	case *pb.BusMessage_Processes:
		snap := x.Processes.GetSnapshot()
		procs := make([]live.Process, len(snap.GetProcesses()))
		for i, p := range snap.GetProcesses() {
			procs[i] = live.Process{PID: p.GetPid(), Name: p.GetName(), User: p.GetUser(), Command: p.GetCommand(),
				CPUPercent: p.GetCpuPercent(), RSSBytes: p.GetRssBytes(), State: p.GetState()}
		}
		lv.SetProcesses(x.Processes.GetMachineId(), snap.GetTimestampMs(), procs)
		b.m.applied.WithLabelValues("processes").Inc()
	}
}

// applyBatch applies f.batch, checked, unless this hub published it.
func (f *follower) applyBatch() {
	b, bt := f.b, &f.batch
	if bt.origin == b.origin {
		return
	}
	if bt.source != "" && bt.machine == "" {
		return // remote-written series of no dashboard machine
	}
	lv := b.opts.Live
	m := f.machine(bt.machine)
	if bt.source == "" {
		if b.opts.NoteSeq != nil {
			b.opts.NoteSeq(m.id, bt.instance, bt.seq)
		}
	} else if !lv.Known(m.id) {
		// As on the hub that received them: a machine known only by HTTP
		// or remote write, marked so that offline rules for every machine
		// skip it (its hello, published too, may come later on the other
		// stream).
		source := live.SourceHTTP
		if bt.source == live.SourceRemoteWrite {
			source = live.SourceRemoteWrite
		}
		lv.Connect(live.MachineInfo{ID: m.id, Hostname: m.id, Source: source})
	}
	series, values := f.samples(m)
	lv.Update(m.id, bt.ts, series, values)
	b.m.applied.WithLabelValues("batch").Inc()
}

// machine returns what f keeps of machine id, which may alias a message.
func (f *follower) machine(id string) *followed {
	m := f.machines[id]
	if m == nil || len(m.series) > maxCachedSeries {
		id = strings.Clone(id)
		m = &followed{id: id, series: map[string]*live.Series{}}
		f.machines[id] = m
	}
	return m
}

// samples returns f.batch's series identities and finite values, in
// f's scratch slices (Update keeps neither). A series is found in the
// machine's cache by its name and labels as they came (checked and
// sorted), without building them: \xff and \xfe, never in valid UTF-8,
// separate the parts; a remote-written series' key starts with its
// batch's machine label and \xfd, since the label is left out of the
// identity.
func (f *follower) samples(m *followed) ([]*live.Series, []float64) {
	bt := &f.batch
	series, values := f.series[:0], f.values[:0]
	for i := range bt.samples {
		s := &bt.samples[i]
		if metric.ValidateValue(s.value) != nil {
			continue
		}
		k := f.key[:0]
		if bt.machineLabel != "" {
			k = append(k, bt.machineLabel...)
			k = append(k, 0xfd)
		}
		k = append(k, s.name...)
		ls := bt.labelsOf(s)
		for _, l := range ls {
			k = append(k, 0xff)
			k = append(k, l.Name...)
			k = append(k, 0xfe)
			k = append(k, l.Value...)
		}
		f.key = k
		sr := m.series[string(k)]
		if sr == nil {
			// New: its strings are copied out of the message.
			var owned metric.Labels
			for _, l := range ls {
				if bt.machineLabel != "" && l.Name == bt.machineLabel {
					// A remote-written series shows on its machine without
					// the label that names the machine, as on the hub that
					// received it.
					continue
				}
				owned = append(owned, metric.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)})
			}
			sr = live.NewSeries(strings.Clone(s.name), owned)
			m.series[string(k)] = sr
		}
		series = append(series, sr)
		values = append(values, s.value)
	}
	f.series, f.values = series, values
	return series, values
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
