package remotewrite

import (
	"encoding/binary"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// Tee puts every sample committed through its appenders into its queues:
// the hook on the store's group commit. It encodes as samples are appended
// (into a reused buffer, no allocation per sample) and, after the store's
// Commit succeeds, compresses the commit once and appends it to each queue
// with one write: no network, no waiting for a sender.
type Tee struct {
	queues []*Queue
	log    *slog.Logger
	onErr  func(q int, samples int) // counts a failed enqueue
	pool   sync.Pool                // *Encoder

	// mu protects lastLog.
	mu      sync.Mutex
	lastLog time.Time
}

// NewTee returns a Tee writing to queues. onErr, if not nil, is called with
// the index of a queue and the samples it could not take.
func NewTee(queues []*Queue, log *slog.Logger, onErr func(q int, samples int)) *Tee {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tee{queues: queues, log: log, onErr: onErr}
}

// Wrap returns an appender that appends to app and, when app's Commit
// succeeds, queues the samples app took (store's internal series, which
// PromQL does not show, excepted).
func (t *Tee) Wrap(app store.Appender) store.Appender {
	e, _ := t.pool.Get().(*Encoder)
	if e == nil {
		e = &Encoder{}
	}
	e.Reset()
	return &teeAppender{app: app, t: t, e: e}
}

type teeAppender struct {
	app store.Appender
	t   *Tee
	e   *Encoder // nil once spent
}

func (a *teeAppender) Append(ref store.SeriesRef, ls labels.Labels, t int64, v float64) (store.SeriesRef, error) {
	r, err := a.app.Append(ref, ls, t, v)
	if err == nil && a.e != nil && !store.Internal(ls) {
		a.e.Add(ls, t, v)
	}
	return r, err
}

func (a *teeAppender) Commit() error {
	err := a.app.Commit()
	if e := a.e; e != nil {
		a.e = nil
		if err == nil && e.samples > 0 {
			a.t.enqueue(e)
		}
		a.t.release(e)
	}
	return err
}

func (a *teeAppender) Rollback() error {
	if a.e != nil {
		a.t.release(a.e)
		a.e = nil
	}
	return a.app.Rollback()
}

// enqueue compresses e's WriteRequest and appends it to every queue.
func (t *Tee) enqueue(e *Encoder) {
	e.Compressed()
	for i, q := range t.queues {
		if err := q.Append(e.snap, e.samples, e.minTs); err != nil {
			if t.onErr != nil {
				t.onErr(i, e.samples)
			}
			t.logOnce("remote write: samples not queued; they are not forwarded to this target (logged once a minute)",
				"dir", q.dir, "samples", e.samples, "err", err)
		}
	}
}

func (t *Tee) release(e *Encoder) {
	if cap(e.buf) > 64<<20 {
		return // a huge commit: do not keep its buffers
	}
	t.pool.Put(e)
}

func (t *Tee) logOnce(msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	ok := now.Sub(t.lastLog) >= time.Minute
	if ok {
		t.lastLog = now
	}
	t.mu.Unlock()
	if ok {
		t.log.Error(msg, args...)
	}
}

// Encoder builds one prompb.WriteRequest, one TimeSeries of one Sample per
// added sample, in the protobuf wire format prompb's codec reads: the Tee's
// per-commit request, and the NATS bus's storage consumer's requests
// (internal/bus). Its buffers are reused after Reset.
type Encoder struct {
	buf     []byte
	snap    []byte
	samples int
	minTs   int64
}

// Reset empties e, keeping its buffers.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.samples = 0
	e.minTs = math.MaxInt64
}

// Field numbers of prompb (remote.proto, types.proto).
const (
	fieldWriteRequestTimeseries = 1
	fieldTimeSeriesLabels       = 1
	fieldTimeSeriesSamples      = 2
	fieldLabelName              = 1
	fieldLabelValue             = 2
	fieldSampleValue            = 1
	fieldSampleTimestamp        = 2
)

// Single-byte tags (field number << 3 | wire type) of the fields above.
const (
	tagTimeseries = fieldWriteRequestTimeseries<<3 | 2
	tagLabels     = fieldTimeSeriesLabels<<3 | 2
	tagSamples    = fieldTimeSeriesSamples<<3 | 2
	tagName       = fieldLabelName<<3 | 2
	tagValue      = fieldLabelValue<<3 | 2
	tagSampleV    = fieldSampleValue<<3 | 1
	tagSampleT    = fieldSampleTimestamp<<3 | 0
)

// tsLenRoom is the room left for a TimeSeries' length before its bytes are
// written: a 3-byte varint, up to 2 MiB (far above any series the limits
// let through); a longer series is moved.
const tsLenRoom = 3

// Add appends one TimeSeries of one sample (t in ms), in one pass over the
// labels: the series' length goes into room left before it, and the bytes
// move back when the length takes fewer bytes.
func (e *Encoder) Add(ls labels.Labels, t int64, v float64) {
	b := append(e.buf, tagTimeseries, 0, 0, 0)
	start := len(b)
	ls.Range(func(l labels.Label) {
		n := 1 + varintLen(uint64(len(l.Name))) + len(l.Name) + 1 + varintLen(uint64(len(l.Value))) + len(l.Value)
		b = append(b, tagLabels)
		b = appendVarint(b, uint64(n))
		b = append(b, tagName)
		b = appendVarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = append(b, tagValue)
		b = appendVarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	})
	sampleLen := 9
	if t != 0 {
		sampleLen += 1 + varintLen(uint64(t))
	}
	b = append(b, tagSamples, byte(sampleLen), tagSampleV)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	if t != 0 {
		b = append(b, tagSampleT)
		b = appendVarint(b, uint64(t))
	}
	size := len(b) - start
	n := varintLen(uint64(size))
	switch {
	case n < tsLenRoom:
		copy(b[start-tsLenRoom+n:], b[start:])
		b = b[:len(b)-(tsLenRoom-n)]
	case n > tsLenRoom:
		b = append(b, make([]byte, n-tsLenRoom)...)
		copy(b[start-tsLenRoom+n:], b[start:start+size])
	}
	protowire.AppendVarint(b[start-tsLenRoom:start-tsLenRoom], uint64(size))
	e.buf = b
	e.samples++
	e.minTs = min(e.minTs, t)
}

// Samples is the number of samples added since the last Reset.
func (e *Encoder) Samples() int { return e.samples }

// Compressed returns the snappy-compressed WriteRequest, a request body;
// valid until e's next use.
func (e *Encoder) Compressed() []byte {
	e.snap = snappy.Encode(e.snap[:cap(e.snap)], e.buf)
	return e.snap
}

func varintLen(x uint64) int {
	if x < 1<<7 {
		return 1
	}
	return protowire.SizeVarint(x)
}

func appendVarint(b []byte, x uint64) []byte {
	if x < 1<<7 {
		return append(b, byte(x))
	}
	return protowire.AppendVarint(b, x)
}
