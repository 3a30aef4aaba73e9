package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
)

// Retry bounds: the first retry waits about minBackoff, each next one twice
// as long up to maxBackoff, each with ±50 % jitter.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 30 * time.Second
	sendTimeout = 30 * time.Second
)

// Target is one remote-write receiver.
type Target struct {
	URL string // http:// or https://
	// BearerTokenFile holds the token sent as "Authorization: Bearer"; read
	// before every request, so a rotated token is picked up.
	BearerTokenFile string
	// BasicAuthFile holds "user:password" on its first line, sent as basic
	// auth; read before every request.
	BasicAuthFile string
}

// Redacted is the target's URL without user info or query, for logs and
// metric labels.
func (t Target) Redacted() string { return RedactURL(t.URL) }

// RedactURL drops the user info and query of a URL (they may hold
// credentials).
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "invalid-url"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// SenderOptions configure NewSender.
type SenderOptions struct {
	Target  Target
	Queue   *Queue
	Client  *http.Client // nil = a client with a 30 s timeout
	Logger  *slog.Logger
	Metrics *Metrics // nil = none
	Now     func() time.Time
}

// Sender drains one queue to its target.
type Sender struct {
	opts SenderOptions
	log  *slog.Logger
	m    targetMetrics
}

// NewSender returns a sender; Run drains.
func NewSender(opts SenderOptions) *Sender {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: sendTimeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sender{opts: opts, log: opts.Logger.With("url", opts.Target.Redacted())}
	s.m = opts.Metrics.target(opts.Target.Redacted(), opts.Queue, opts.Now)
	return s
}

// Run sends queued batches until ctx ends. A batch the receiver answers
// 5xx or 429, or that a network error stops, is retried with exponential
// backoff and jitter until it goes (or the full queue drops it); one
// answered with another 4xx is dropped and counted, as Prometheus does.
func (s *Sender) Run(ctx context.Context) error {
	q := s.opts.Queue
	for ctx.Err() == nil {
		b, ok, err := q.Next()
		if err != nil {
			return err
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-q.Notify():
			case <-time.After(time.Second):
			}
			continue
		}
		reqs, err := splitBatch(b, sendShards, maxSamplesPerSend)
		if err != nil {
			// The records passed their checksums, so this is our own
			// bug; skip them rather than stall.
			s.log.Error("remote write: undecodable batch dropped", "samples", b.Samples, "err", err)
			s.m.failed.Add(float64(b.Samples))
			_ = q.Commit(b)
			continue
		}
		s.sendBatch(ctx, b, reqs)
	}
	return nil
}

// Sending: a batch is cut into requests of at most maxSamplesPerSend
// samples, each series always in the same one of sendShards shards (a fixed
// hash of its labels), so a series' samples arrive in order; the shards send
// concurrently. The cut depends only on the batch's bytes, so a restarted
// hub cuts a batch the same way: each request done (accepted, or refused
// for good) is saved with the read position (Queue.Progress), and a
// restart skips the requests already done. The batch counts as sent once
// every request went.
const (
	sendShards        = 4
	maxSamplesPerSend = 5000
	// splitVersion names splitBatch's algorithm; change it with the
	// algorithm, so saved progress of another cut is not trusted.
	splitVersion = 1
	// sendLayout identifies the cut in saved progress.
	sendLayout = splitVersion<<48 | maxSamplesPerSend<<16 | sendShards
)

// sendBatch sends every request of b not done yet, then commits b, unless
// ctx ends or the queue drops b meanwhile.
func (s *Sender) sendBatch(ctx context.Context, b Batch, shards [][]request) {
	q := s.opts.Queue
	skip := b.done
	if skip != nil && !progressFits(b, shards) {
		s.log.Warn("remote write: saved progress does not fit the batch; sending it whole (the receiver may get part of it twice)", "samples", b.Samples)
		if err := q.DiscardProgress(b); err != nil {
			s.log.Error("remote write: cannot save the read position", "err", err)
		}
		skip = nil
	}
	var wg sync.WaitGroup
	for sh, reqs := range shards {
		if skip != nil {
			reqs = reqs[skip[sh]:]
		}
		if len(reqs) == 0 {
			continue
		}
		wg.Go(func() {
			for _, r := range reqs {
				if !s.send(ctx, b, r) {
					return
				}
				if err := q.Progress(b, sendLayout, sh, len(shards), r.samples); err != nil {
					s.log.Error("remote write: cannot save the read position; samples may be sent again after a restart", "err", err)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // not committed: sent again after a restart (at least once)
	}
	if err := s.opts.Queue.Commit(b); err != nil {
		s.log.Error("remote write: cannot save the read position; samples may be sent again after a restart", "err", err)
	}
}

// progressFits reports whether b's saved progress is of this sender's cut
// and within shards.
func progressFits(b Batch, shards [][]request) bool {
	if b.layout != sendLayout || len(b.done) != len(shards) {
		return false
	}
	for sh, n := range b.done {
		if n < 0 || n > len(shards[sh]) {
			return false
		}
	}
	return true
}

// send posts r until it is accepted or refused for good (true), or ctx
// ends or the queue drops b (false).
func (s *Sender) send(ctx context.Context, b Batch, r request) bool {
	var backoff Backoff
	for attempt := 0; ; attempt++ {
		err := s.opts.Target.Post(ctx, s.opts.Client, r.body)
		switch {
		case err == nil:
			s.m.sent.Add(float64(r.samples))
			if attempt > 0 {
				s.log.Info("remote write: receiver takes samples again", "retries", attempt)
			}
			return true
		case IsPermanent(err):
			s.m.failed.Add(float64(r.samples))
			s.log.Error("remote write: receiver refused a request; its samples are dropped (not retried)", "samples", r.samples, "err", err)
			return true
		case ctx.Err() != nil:
			return false
		}
		s.m.retries.Inc()
		if attempt == 0 || attempt%20 == 0 {
			s.log.Warn("remote write: send failed; retrying with backoff (the queue keeps the samples)", "samples", r.samples, "attempt", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff.Next()):
		}
		if !s.opts.Queue.Current(b) {
			return false // dropped meanwhile: the queue was full
		}
	}
}

// Backoff is the wait before each retry of a request: about minBackoff
// first, each next one twice as long up to maxBackoff, each with ±50 %
// jitter. The zero value starts at the first wait.
type Backoff struct{ d time.Duration }

// Next returns the wait before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.d == 0 {
		b.d = minBackoff
	}
	wait := time.Duration(float64(b.d) * (0.5 + rand.Float64()))
	b.d = min(b.d*2, maxBackoff)
	return wait
}

// permanentError is a refusal not worth retrying (4xx other than 429).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// IsPermanent reports whether an error of Post is a refusal no retry can
// change (the receiver answered 4xx other than 429, or the request could
// not be built).
func IsPermanent(err error) bool {
	var perm *permanentError
	return errors.As(err, &perm)
}

// Post sends one remote-write request body (a snappy-compressed
// prompb.WriteRequest) to the target with client, with the target's
// credentials read from their files: nil when the receiver answered 2xx.
// Errors never contain the URL's user info or query; see IsPermanent for
// which are worth a retry (5xx, 429, network errors, unreadable
// credential files are).
func (t Target) Post(ctx context.Context, client *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "sysmonstm-remote-write")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if err := t.Authorize(req); err != nil {
		return err // retried: the file may be fixed
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", redactErr(err, t.URL))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return fmt.Errorf("receiver answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	default:
		return &permanentError{fmt.Errorf("receiver answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
	}
}

// redactErr replaces the URL (which url.Error quotes) by its redacted form.
func redactErr(err error, raw string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %q: %w", ue.Op, RedactURL(raw), ue.Err)
	}
	return err
}

// Authorize sets the target's credentials on req, read from their files
// (so a rotated token is picked up); the URL's user info, if any, is sent
// by net/http as basic auth.
func (t Target) Authorize(req *http.Request) error {
	if t.BearerTokenFile != "" {
		tok, err := readSecret(t.BearerTokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if t.BasicAuthFile != "" {
		s, err := readSecret(t.BasicAuthFile)
		if err != nil {
			return err
		}
		user, pass, ok := strings.Cut(s, ":")
		if !ok {
			return fmt.Errorf("basic auth file %s: want user:password on its first line", t.BasicAuthFile)
		}
		req.SetBasicAuth(user, pass)
	}
	return nil
}

// readSecret returns the first line of a credentials file, trimmed.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("credentials file %s is empty", path)
	}
	return line, nil
}

// request is one remote-write request: a snappy-compressed WriteRequest.
type request struct {
	body    []byte
	samples int
}

// splitBatch cuts the WriteRequests of b's records into requests of at
// most perSend samples per shard; a series (its label fields, hashed) is
// always in the same shard. Protobuf's repeated fields concatenate, so a
// request is the series' TimeSeries fields copied as they are.
func splitBatch(b Batch, shards, perSend int) ([][]request, error) {
	out := make([][]request, shards)
	bufs := make([][]byte, shards)
	counts := make([]int, shards)
	flush := func(sh int) {
		out[sh] = append(out[sh], request{body: snappy.Encode(nil, bufs[sh]), samples: counts[sh]})
		bufs[sh], counts[sh] = bufs[sh][:0], 0
	}
	var raw []byte
	for _, r := range b.Records {
		n, err := snappy.DecodedLen(r.Body)
		if err != nil {
			return nil, err
		}
		if cap(raw) < n {
			raw = make([]byte, n)
		}
		if raw, err = snappy.Decode(raw[:n], r.Body); err != nil {
			return nil, err
		}
		for p := raw; len(p) > 0; {
			num, typ, tn := protowire.ConsumeTag(p)
			if tn < 0 {
				return nil, protowire.ParseError(tn)
			}
			vn := protowire.ConsumeFieldValue(num, typ, p[tn:])
			if vn < 0 {
				return nil, protowire.ParseError(vn)
			}
			field := p[:tn+vn]
			p = p[tn+vn:]
			if num != fieldWriteRequestTimeseries || typ != protowire.BytesType {
				continue
			}
			ts, _ := protowire.ConsumeBytes(field[tn:])
			sh, samples, err := seriesShard(ts, shards)
			if err != nil {
				return nil, err
			}
			bufs[sh] = append(bufs[sh], field...)
			counts[sh] += samples
			if counts[sh] >= perSend {
				flush(sh)
			}
		}
	}
	for sh := range bufs {
		if len(bufs[sh]) > 0 {
			flush(sh)
		}
	}
	return out, nil
}

// FNV-1a (64 bit) constants: the shard hash is fixed, the same in every
// process, so that a restart cuts a batch as before.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// seriesShard returns the shard of a TimeSeries (by its labels, FNV-1a) and
// its number of samples.
func seriesShard(ts []byte, shards int) (shard, samples int, err error) {
	h := uint64(fnvOffset64)
	for len(ts) > 0 {
		num, typ, tn := protowire.ConsumeTag(ts)
		if tn < 0 {
			return 0, 0, protowire.ParseError(tn)
		}
		vn := protowire.ConsumeFieldValue(num, typ, ts[tn:])
		if vn < 0 {
			return 0, 0, protowire.ParseError(vn)
		}
		switch num {
		case fieldTimeSeriesLabels:
			for _, c := range ts[tn : tn+vn] {
				h ^= uint64(c)
				h *= fnvPrime64
			}
		case fieldTimeSeriesSamples:
			samples++
		}
		ts = ts[tn+vn:]
	}
	return int(h % uint64(shards)), samples, nil
}

// Metrics are the senders' metrics, sysmonstm_remote_write_*{url}.
type Metrics struct {
	reg      prometheus.Registerer
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	enqueued *prometheus.CounterVec
	notQueue *prometheus.CounterVec
}

// NewMetrics registers the remote-write metrics on reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmonstm_remote_write_sent_samples_total",
			Help: "Samples the remote-write receiver accepted."}, []string{"url"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmonstm_remote_write_failed_samples_total",
			Help: "Samples dropped because the receiver refused their batch with a 4xx other than 429 (not retried)."}, []string{"url"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmonstm_remote_write_retries_total",
			Help: "Send attempts that failed with 5xx, 429 or a network error and were retried."}, []string{"url"}),
		notQueue: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmonstm_remote_write_enqueue_failed_samples_total",
			Help: "Stored samples that could not be written to the target's queue (disk error); they are not forwarded."}, []string{"url"}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failed, m.retries, m.notQueue)
	}
	return m
}

// EnqueueFailed counts samples the target's queue could not take.
func (m *Metrics) EnqueueFailed(t Target, samples int) {
	if m != nil {
		m.notQueue.WithLabelValues(t.Redacted()).Add(float64(samples))
	}
}

type targetMetrics struct {
	sent, failed, retries prometheus.Counter
}

// target returns url's counters and registers its queue's gauges.
func (m *Metrics) target(url string, q *Queue, now func() time.Time) targetMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	if m.reg != nil {
		l := prometheus.Labels{"url": url}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sysmonstm_remote_write_pending_samples", ConstLabels: l,
				Help: "Samples in the target's queue not yet accepted by the receiver."},
				func() float64 { return float64(q.Stats().PendingSamples) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sysmonstm_remote_write_pending_bytes", ConstLabels: l,
				Help: "Bytes of the target's queue on disk not yet sent."},
				func() float64 { return float64(q.Stats().PendingBytes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sysmonstm_remote_write_dropped_samples_total", ConstLabels: l,
				Help: "Unsent samples dropped because the queue reached --remote-write-max-queue-bytes (oldest first)."},
				func() float64 { return float64(q.Stats().Dropped) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sysmonstm_remote_write_lag_seconds", ConstLabels: l,
				Help: "Age of the oldest sample not yet accepted by the receiver; 0 when the queue is empty."},
				func() float64 {
					st := q.Stats()
					if st.PendingSamples == 0 || st.OldestTs == 0 {
						return 0
					}
					return max(0, float64(now().UnixMilli()-st.OldestTs)/1000)
				}),
		)
	}
	return targetMetrics{sent: m.sent.WithLabelValues(url), failed: m.failed.WithLabelValues(url), retries: m.retries.WithLabelValues(url)}
}
