package agent

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// collector is the state of the collection goroutine; only it touches it.
type collector struct {
	ids     map[string]uint32 // series key → id; 0 marks an invalid series
	keyOf   []string          // keyOf[id]: the key id was first seen under
	hint    []uint32          // hint[i]: the id of the last tick's i-th sample
	seen    []uint32          // seen[id] == gen: id already in this tick's batch
	gen     uint32
	keyBuf  []byte
	seq     uint64 // last batch seq
	lastTs  int64  // last tick, ms since epoch
	full    bool   // series table overflow logged
	invalid int    // invalid series logged so far
}

const maxInvalidLogs = 10

func (c *collector) init() {
	c.ids = make(map[string]uint32)
	c.keyOf = make([]string, 1)
	c.seen = make([]uint32, 1)
}

// collectLoop calls the source on wall-clock boundaries: every tick is a
// multiple of the interval since the Unix epoch, plus Options.Phase.
func (a *Agent) collectLoop(ctx context.Context) {
	for {
		iv := a.intervalMs.Load()
		nowMs := a.now().UnixMilli()
		next := nextTick(nowMs, iv, a.opts.Phase.Milliseconds())
		if next <= a.col.lastTs { // the clock went back: never repeat a tick
			next = a.col.lastTs + iv
		}
		if !a.waitTick(ctx, time.Duration(next-nowMs)*time.Millisecond) {
			if ctx.Err() != nil {
				return
			}
			continue // the interval changed
		}
		a.tick(ctx, next, time.Duration(iv)*time.Millisecond)
	}
}

// nextTick returns the first tick after nowMs (ms since epoch) of an
// interval of ivMs ms offset by phaseMs (taken modulo the interval).
func nextTick(nowMs, ivMs, phaseMs int64) int64 {
	phaseMs %= ivMs
	off := (nowMs - phaseMs) % ivMs
	if off < 0 {
		off += ivMs
	}
	return nowMs - off + ivMs
}

// waitTick waits d for the next tick, meanwhile buffering the groups from
// Submit (the tick stays due however long they take); false when ctx ended
// or the interval changed.
func (a *Agent) waitTick(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-a.intervalCh:
			return false
		case g := <-a.submitted:
			a.stamp(g.ts, g.samples)
		case <-t.C:
			return true
		}
	}
}

// stamped is a group of samples with their own timestamp, from Submit.
type stamped struct {
	ts      int64 // ms since epoch
	samples []metric.Sample
}

// Submit streams samples stamped ts (ms since epoch) as a batch of their
// own, through the same series table, buffer, acknowledgements and replay
// as the collected ticks; the scrapes of Prometheus exporters come this
// way, stamped on their own ticks. It blocks until the collection goroutine
// takes the samples (it buffers a few groups) or ctx ends; the agent owns
// samples from then on. Groups are only taken while Run runs.
func (a *Agent) Submit(ctx context.Context, ts int64, samples []metric.Sample) {
	select {
	case a.submitted <- stamped{ts: ts, samples: samples}:
	case <-ctx.Done():
	}
}

// tick collects one batch stamped ts (ms since epoch) and buffers it.
func (a *Agent) tick(ctx context.Context, ts int64, iv time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, iv)
	samples := a.src(sctx)
	cancel()
	a.col.lastTs = ts
	a.stamp(ts, samples)
}

// stamp buffers samples as one batch stamped ts (ms since epoch).
func (a *Agent) stamp(ts int64, samples []metric.Sample) {
	b, skipped := a.buildBatch(samples)
	if len(b.SeriesIds) == 0 {
		if skipped > 0 {
			a.mu.Lock()
			a.stats.SkippedSamples += int64(skipped)
			a.mu.Unlock()
		}
		return
	}
	a.col.seq++
	b.Seq = a.col.seq
	b.TimestampMs = ts
	a.push(b, skipped)
}

// buildBatch maps samples to series ids; it leaves Seq and TimestampMs
// unset. Non-finite values, invalid series, series over MaxSeries and
// repeats of a series within the tick are skipped and counted.
func (a *Agent) buildBatch(samples []metric.Sample) (*sysmonstmv1.Batch, int) {
	c := &a.col
	c.gen++
	if c.gen == 0 { // wrapped: reset marks
		clear(c.seen)
		c.gen = 1
	}
	b := &sysmonstmv1.Batch{
		SeriesIds: make([]uint32, 0, len(samples)),
		Values:    make([]float64, 0, len(samples)),
	}
	if n := min(len(samples), MaxSeries); len(c.hint) < n {
		c.hint = append(c.hint, make([]uint32, n-len(c.hint))...)
	}
	skipped := 0
	for i := range samples {
		s := &samples[i]
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			skipped++
			continue
		}
		id := a.seriesID(s, i)
		if id == 0 || c.seen[id] == c.gen {
			skipped++
			continue
		}
		c.seen[id] = c.gen
		b.SeriesIds = append(b.SeriesIds, id)
		b.Values = append(b.Values, s.Value)
	}
	return b, skipped
}

// seriesID returns the id of s, the i-th sample of the tick, adding its
// series to the table when new; 0 when the series is invalid or the table
// is full. A source yields its series in the same order tick after tick,
// so the id of the last tick's i-th sample is tried first: one compare
// with its key instead of a lookup in a map that, for loadgen's thousands
// of agents, is a cache miss per sample.
func (a *Agent) seriesID(s *metric.Sample, i int) uint32 {
	c := &a.col
	c.keyBuf = appendKey(c.keyBuf[:0], s.Name, s.Labels)
	if i < len(c.hint) {
		if id := c.hint[i]; id != 0 && c.keyOf[id] == string(c.keyBuf) {
			return id
		}
	}
	id, ok := c.ids[string(c.keyBuf)]
	if !ok {
		id = a.newSeries(s)
	}
	if i < len(c.hint) {
		c.hint[i] = id
	}
	return id
}

// newSeries adds the series of s, whose key is in c.keyBuf, to the table
// and returns its id (0: invalid, or the table is full).
func (a *Agent) newSeries(s *metric.Sample) uint32 {
	c := &a.col
	if len(c.ids) >= MaxSeries {
		if !c.full {
			c.full = true
			a.log.Warn("series table full: dropping samples of new series", "limit", MaxSeries, "metric", s.Name)
		}
		return 0
	}
	keys := []string{string(c.keyBuf)}
	ls := s.Labels
	if !slices.IsSortedFunc(ls, func(x, y metric.Label) int { return strings.Compare(x.Name, y.Name) }) {
		ls = slices.Clone(ls).Sort()
		canon := string(appendKey(nil, s.Name, ls))
		if id, ok := c.ids[canon]; ok { // the same series, labels in another order
			c.ids[keys[0]] = id
			return id
		}
		keys = append(keys, canon)
	}
	var id uint32
	if err := metric.DefaultLimits.ValidateSeries(s.Name, ls); err != nil {
		if c.invalid < maxInvalidLogs {
			c.invalid++
			a.log.Warn("skipping invalid series", "err", err)
		}
	} else {
		def := &sysmonstmv1.SeriesDef{Name: s.Name, Labels: protoLabels(ls)}
		a.mu.Lock()
		a.defs = append(a.defs, def)
		def.Id = uint32(len(a.defs))
		a.mu.Unlock()
		id = def.Id
		c.seen = append(c.seen, 0)
		c.keyOf = append(c.keyOf, keys[0])
	}
	for _, k := range keys {
		c.ids[k] = id
	}
	return id
}

// appendKey appends the series key of name and ls to dst, in the format of
// metric.SeriesKey.
func appendKey(dst []byte, name string, ls metric.Labels) []byte {
	dst = append(dst, name...)
	for _, l := range ls {
		dst = append(dst, 0xff)
		dst = append(dst, l.Name...)
		dst = append(dst, 0xfe)
		dst = append(dst, l.Value...)
	}
	return dst
}

func protoLabels(ls metric.Labels) []*sysmonstmv1.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]*sysmonstmv1.Label, len(ls))
	for i, l := range ls {
		out[i] = &sysmonstmv1.Label{Name: l.Name, Value: l.Value}
	}
	return out
}

// push appends b to the buffer, dropping the oldest batches on overflow.
func (a *Agent) push(b *sysmonstmv1.Batch, skipped int) {
	size := proto.Size(b)
	n := len(b.SeriesIds)
	a.mu.Lock()
	a.stats.Collected++
	a.stats.CollectedSamples += int64(n)
	a.stats.SkippedSamples += int64(skipped)
	dropped, droppedSamples := a.buf.push(b, size)
	a.lastPushed = b.Seq
	var logDrop bool
	if dropped > 0 {
		a.stats.Dropped += int64(dropped)
		a.stats.DroppedSamples += int64(droppedSamples)
		if now := time.Now(); now.Sub(a.lastDropAt) >= time.Minute {
			a.lastDropAt = now
			logDrop = true
		}
	}
	total := a.stats.Dropped
	a.mu.Unlock()
	if logDrop {
		a.log.Warn("buffer full: dropping oldest unacknowledged batches", "limit_bytes", a.opts.BufferBytes, "dropped_total", total)
	}
	a.signal()
}
