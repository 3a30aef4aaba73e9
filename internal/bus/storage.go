package bus

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Storage consumer bounds: a fetch takes up to fetchMessages batches (or
// what arrived within fetchWait) into one remote-write request per target.
const (
	fetchMessages = 256
	fetchWait     = time.Second
	// storageAckWait is Options.AckWait's default. A hub retrying a slow
	// TSDB says "in progress" every AckWait/3.
	storageAckWait = 30 * time.Second
	maxAckPending  = 20_000
)

// storeLoop fetches batches from the shared durable consumer, writes them
// to every target and acknowledges them once each target answered 2xx.
func (b *Bus) storeLoop(ctx context.Context) {
	var backoff remotewrite.Backoff
	var enc remotewrite.Encoder
	for ctx.Err() == nil {
		cons, err := b.js.CreateOrUpdateConsumer(ctx, SamplesStream, jetstream.ConsumerConfig{
			Durable:       storageConsumer,
			Description:   "sysmonstm: hubs writing batches to the TSDB",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       b.opts.AckWait,
			MaxAckPending: maxAckPending,
			MaxDeliver:    -1,
			FilterSubject: samplesSubject + ".>",
		})
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("bus: cannot create the storage consumer; retrying", "err", err)
				sleep(ctx, backoff.Next())
			}
			continue
		}
		b.fetchLoop(ctx, cons, &enc)
	}
}

// fetchLoop stores what cons delivers until ctx ends or the consumer is
// gone (deleted by an operator, or with its stream): then storeLoop
// creates it again.
func (b *Bus) fetchLoop(ctx context.Context, cons jetstream.Consumer, enc *remotewrite.Encoder) {
	var backoff remotewrite.Backoff
	for ctx.Err() == nil {
		batch, err := cons.Fetch(fetchMessages, jetstream.FetchMaxWait(fetchWait))
		if gone(err) {
			return
		}
		if err != nil {
			b.log.Debug("bus: fetch", "err", err)
			sleep(ctx, backoff.Next())
			continue
		}
		var msgs []jetstream.Msg
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		if len(msgs) == 0 {
			if err := batch.Error(); err != nil && ctx.Err() == nil {
				if gone(err) {
					return
				}
				b.log.Debug("bus: fetch", "err", err)
				sleep(ctx, backoff.Next())
			}
			continue
		}
		backoff = remotewrite.Backoff{}
		b.store(ctx, enc, msgs)
	}
}

// gone reports whether a fetch failed because the consumer or its stream
// no longer exists.
func gone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// store writes msgs in one request to every target and acknowledges them,
// or leaves them unacknowledged when ctx ends (JetStream redelivers them
// to a hub after storageAckWait). An undecodable message is terminated.
func (b *Bus) store(ctx context.Context, enc *remotewrite.Encoder, msgs []jetstream.Msg) {
	enc.Reset()
	ok := msgs[:0:0]
	for _, msg := range msgs {
		if md, err := msg.Metadata(); err == nil {
			if md.NumDelivered > 1 {
				b.m.redelivered.Inc()
			}
			b.m.pending.Set(float64(md.NumPending))
		}
		m, err := decode(msg.Data(), b.opts.Limits)
		if err != nil || m.GetBatch() == nil {
			b.m.badMessages.Inc()
			b.log.Warn("bus: undecodable batch terminated; it is not stored", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		addBatch(enc, m.GetBatch())
		ok = append(ok, msg)
	}
	if len(ok) == 0 {
		return
	}
	samples := enc.Samples()
	body := enc.Compressed()
	for _, t := range b.opts.Targets {
		if !b.post(ctx, t, body, samples, ok) {
			return
		}
	}
	for _, msg := range ok {
		_ = msg.Ack()
	}
}

// post sends body to t until it is accepted (true) or refused for good
// (true, the samples counted as failed), or ctx ends (false). While it
// retries, msgs are kept in progress so JetStream does not give them to
// another hub.
func (b *Bus) post(ctx context.Context, t remotewrite.Target, body []byte, samples int, msgs []jetstream.Msg) bool {
	var backoff remotewrite.Backoff
	last := time.Now()
	for attempt := 0; ; attempt++ {
		err := t.Post(ctx, b.opts.Client, body)
		switch {
		case err == nil:
			b.m.stored.Add(float64(samples))
			return true
		case remotewrite.IsPermanent(err):
			b.m.storeFailed.Add(float64(samples))
			b.log.Error("bus: TSDB refused a request; its samples are not stored (not retried)", "url", t.Redacted(), "samples", samples, "err", err)
			return true
		case ctx.Err() != nil:
			return false
		}
		if attempt%20 == 0 {
			b.log.Warn("bus: TSDB write failed; retrying with backoff (JetStream keeps the batches)", "url", t.Redacted(), "samples", samples, "attempt", attempt+1, "err", err)
		}
		sleep(ctx, backoff.Next())
		if time.Since(last) > b.opts.AckWait/3 {
			for _, m := range msgs {
				_ = m.InProgress()
			}
			last = time.Now()
		}
	}
}

// addBatch adds a batch's samples to enc, each with the machine label, and
// for an agent's batch the bookkeeping sample
// sysmonstm_agent_seq{machine, instance} = seq, so the TSDB shows which
// batches it holds. A remote-write batch's samples keep their labels and
// values exactly as sent (stale markers too), as the embedded store does.
func addBatch(enc *remotewrite.Encoder, bt *pb.BusBatch) {
	machine, ts := bt.GetMachineId(), bt.GetTimestampMs()
	rw := bt.GetSource() == live.SourceRemoteWrite
	var sb labels.ScratchBuilder
	for _, s := range bt.GetSamples() {
		if !rw && metric.ValidateValue(s.GetValue()) != nil {
			continue
		}
		sb.Reset()
		sb.Add(labels.MetricName, s.GetName())
		if !rw {
			sb.Add(metric.MachineLabel, machine)
		}
		for _, l := range s.GetLabels() {
			sb.Add(l.GetName(), l.GetValue())
		}
		sb.Sort()
		enc.Add(sb.Labels(), ts, s.GetValue())
	}
	if bt.GetSource() != "" {
		return
	}
	enc.Add(labels.FromStrings(labels.MetricName, seqMetric, metric.MachineLabel, machine,
		"instance", strconv.FormatUint(bt.GetInstance(), 16)), ts, float64(bt.GetSeq()))
}

// seqMetric is ingest's bookkeeping series (docs/metrics.md).
const seqMetric = "sysmonstm_agent_seq"
