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
	var r storeReader
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
		b.fetchLoop(ctx, cons, &enc, &r)
	}
}

// fetchLoop stores what cons delivers until ctx ends or the consumer is
// gone (deleted by an operator, or with its stream): then storeLoop
// creates it again.
func (b *Bus) fetchLoop(ctx context.Context, cons jetstream.Consumer, enc *remotewrite.Encoder, r *storeReader) {
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
		b.store(ctx, enc, r, msgs)
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
func (b *Bus) store(ctx context.Context, enc *remotewrite.Encoder, r *storeReader, msgs []jetstream.Msg) {
	enc.Reset()
	ok := msgs[:0:0]
	for _, msg := range msgs {
		if md, err := msg.Metadata(); err == nil {
			if md.NumDelivered > 1 {
				b.m.redelivered.Inc()
			}
			b.m.pending.Set(float64(md.NumPending))
		}
		if err := r.add(enc, msg.Data(), b.opts.Limits); err != nil {
			b.m.badMessages.Inc()
			b.log.Warn("bus: undecodable batch terminated; it is not stored", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
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

// storeReader is the storage consumer's scratch, reused from batch to
// batch: the uncompressed message, the batch read from it (its strings
// alias the message; the encoder copies what it takes) and the labels of
// one sample.
type storeReader struct {
	raw   []byte
	batch wireBatch
	sb    labels.ScratchBuilder
	ls    labels.Labels
}

// add reads one message's batch, checked, and adds it to enc (addBatch).
// A batch as publishers write it is read by hand; any other encoding is
// decoded by proto, and a message that holds no batch is an error.
func (r *storeReader) add(enc *remotewrite.Encoder, data []byte, lim metric.Limits) error {
	raw, err := uncompress(r.raw, data)
	if err != nil {
		return err
	}
	r.raw = raw
	ok, err := r.batch.read(raw, lim)
	if err != nil {
		return err
	}
	if !ok {
		m, err := decodeRaw(raw, lim)
		if err != nil {
			return err
		}
		if m.GetBatch() == nil {
			return errors.New("decode bus message: not a batch")
		}
		r.batch.fromProto(m.GetOrigin(), m.GetBatch())
	}
	r.addBatch(enc, &r.batch)
	return nil
}

// addBatch adds a batch's samples to enc, each with the machine label, and
// for an agent's batch the bookkeeping sample
// sysmonstm_agent_seq{machine, instance} = seq, so the TSDB shows which
// batches it holds. A remote-write batch's samples keep their labels and
// values exactly as sent (stale markers too), as the embedded store does.
func (r *storeReader) addBatch(enc *remotewrite.Encoder, bt *wireBatch) {
	rw := bt.source == live.SourceRemoteWrite
	for i := range bt.samples {
		s := &bt.samples[i]
		if !rw && metric.ValidateValue(s.value) != nil {
			continue
		}
		r.sb.Reset()
		r.sb.Add(labels.MetricName, s.name)
		if !rw {
			r.sb.Add(metric.MachineLabel, bt.machine)
		}
		for _, l := range bt.labelsOf(s) {
			r.sb.Add(l.Name, l.Value)
		}
		r.sb.Sort()
		r.sb.Overwrite(&r.ls)
		enc.Add(r.ls, bt.ts, s.value)
	}
	if bt.source != "" {
		return
	}
	enc.Add(labels.FromStrings(labels.MetricName, seqMetric, metric.MachineLabel, bt.machine,
		"instance", strconv.FormatUint(bt.instance, 16)), bt.ts, float64(bt.seq))
}

// seqMetric is ingest's bookkeeping series (docs/metrics.md).
const seqMetric = "sysmonstm_agent_seq"
