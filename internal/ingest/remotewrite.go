package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// Remote-write bounds.
const (
	// rwDecodedFactor: a snappy body may decode to at most this many times
	// MaxBodyBytes (Prometheus' requests compress about 5–10×).
	rwDecodedFactor = 8
	// rwSlotWait is how long a request waits for a free slot
	// (RemoteWriteConcurrency) before it is answered 429.
	rwSlotWait = 5 * time.Second
	// rwRetryAfter is the Retry-After, in seconds, of a 429.
	rwRetryAfter = "5"
	// DefaultRemoteWriteMachineLabel groups remote-written series into
	// machines on the dashboard.
	DefaultRemoteWriteMachineLabel = "instance"
)

// reasonUnsupported (label of sysmonstm_dropped_samples_total): a native
// histogram sample of a remote-write request; the hub stores float samples.
const reasonUnsupported = "unsupported"

// rwBuffers are one request's reusable buffers, pooled.
type rwBuffers struct {
	body    []byte
	decoded []byte
	req     prompb.WriteRequest
	b       labels.ScratchBuilder
	series  []rwSeries
}

// rwSeries is one validated series of a remote-write request.
type rwSeries struct {
	*rwEntry
	samples []prompb.Sample
	refused bool // by a series cap
}

// rwEntry is what the hub keeps of a valid remote-written series between
// requests, so that a series sent again is neither validated nor built
// again: its labels as sent (to confirm a hash match), as stored, its
// store ref and its live identity.
type rwEntry struct {
	sent    []prompb.Label // as sent, copied
	lset    labels.Labels
	hash    uint64 // lset.Hash()
	group   string // dashboard machine: value of the machine label, "" = none
	machine string // value of the stored `machine` label (rollup key), "" = none
	live    *live.Series
	bus     *live.Series  // with a Bus: every label as sent but __name__
	ref     atomic.Uint64 // store.SeriesRef of the last append; 0 = none
}

// matches reports whether ls are the labels e was built from.
func (e *rwEntry) matches(ls []prompb.Label) bool {
	if len(ls) != len(e.sent) {
		return false
	}
	for i := range ls {
		if ls[i].Name != e.sent[i].Name || ls[i].Value != e.sent[i].Value {
			return false
		}
	}
	return true
}

// hashSent hashes labels as sent, the key of the series cache.
func hashSent(h *maphash.Hash, ls []prompb.Label) uint64 {
	h.Reset()
	for _, l := range ls {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// rwLookup returns the cached entry of the series sent as ls, or nil.
func (s *Server) rwLookup(h uint64, ls []prompb.Label) *rwEntry {
	s.rwCacheMu.RLock()
	e := s.rwCache[h]
	s.rwCacheMu.RUnlock()
	if e != nil && e.matches(ls) {
		return e
	}
	return nil
}

// rwRemember builds and caches the entry of a valid series sent as ls and
// stored as lset. The cache holds at most MaxActiveSeries entries; when
// full it starts over.
func (s *Server) rwRemember(h uint64, ls []prompb.Label, lset labels.Labels) *rwEntry {
	e := &rwEntry{lset: lset, hash: lset.Hash(), machine: lset.Get(metric.MachineLabel)}
	e.sent = make([]prompb.Label, len(ls))
	for i, l := range ls {
		e.sent[i] = prompb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	if g := lset.Get(s.opts.RemoteWriteMachineLabel); metric.ValidateMachineID(g) == nil {
		e.group = g // else stored and queryable, on no dashboard machine
		lv := make(metric.Labels, 0, lset.Len())
		lset.Range(func(l labels.Label) {
			if l.Name != labels.MetricName && l.Name != s.opts.RemoteWriteMachineLabel {
				lv = append(lv, metric.Label{Name: l.Name, Value: l.Value})
			}
		})
		e.live = live.NewSeries(lset.Get(labels.MetricName), lv)
	}
	if s.opts.Bus != nil {
		all := make(metric.Labels, 0, lset.Len())
		lset.Range(func(l labels.Label) {
			if l.Name != labels.MetricName {
				all = append(all, metric.Label{Name: l.Name, Value: l.Value})
			}
		})
		e.bus = live.NewSeries(lset.Get(labels.MetricName), all)
	}
	s.rwCacheMu.Lock()
	defer s.rwCacheMu.Unlock()
	if len(s.rwCache) >= s.opts.MaxActiveSeries {
		clear(s.rwCache)
	}
	s.rwCache[h] = e
	return e
}

// rwResult is what a remote-write request came to.
type rwResult struct {
	rejected []rejection
	limited  error // first series-cap refusal
}

// RemoteWriteHandler serves POST /api/v1/write: Prometheus remote write 1.0
// (snappy-compressed protobuf prometheus.WriteRequest), authenticated with
// an agent token as "Authorization: Bearer". Series are stored with their
// labels exactly as sent. It answers 204 when every sample is stored; 400
// when some sample can never be stored (the others are); 429 with
// Retry-After while a series cap or the request slots are full, and 503
// with Retry-After while storage refuses writes, so senders retry.
func (s *Server) RemoteWriteHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		s.remoteWrite(rw, r)
		s.m.rwRequests.WithLabelValues(strconv.Itoa(rw.code)).Inc()
	})
}

// codeWriter remembers the status code written.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (s *Server) remoteWrite(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if msg := checkRWHeaders(r.Header); msg != "" {
		s.m.rejected.WithLabelValues(rejectMalformed).Inc()
		writeJSONError(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	token, ok := s.checkToken(w, r)
	if !ok {
		return
	}
	release, ok := s.rwSlot(r.Context())
	if !ok {
		s.m.rejected.WithLabelValues(rejectBusy).Inc()
		w.Header().Set("Retry-After", rwRetryAfter)
		writeJSONError(w, http.StatusTooManyRequests, fmt.Sprintf("%d remote-write requests are already being stored; retry later", cap(s.rwSlots)))
		return
	}
	defer release()

	buf := s.rwPool.Get().(*rwBuffers)
	defer s.rwPool.Put(buf)
	if code, err := s.readRemoteWrite(buf, w, r.Body); err != nil {
		s.m.dropped.WithLabelValues(reasonInvalidBatch).Inc()
		if code == http.StatusRequestEntityTooLarge {
			s.m.rejected.WithLabelValues(rejectTooLarge).Inc()
		} else {
			s.m.rejected.WithLabelValues(rejectMalformed).Inc()
		}
		writeJSONError(w, code, err.Error())
		return
	}
	now := s.opts.Now().UnixMilli()
	var res rwResult
	buf.series, res.rejected = s.parseRemoteWrite(buf, now, buf.series[:0])
	s.m.rwSamples.Add(float64(countRWSamples(&buf.req)))
	if s.opts.Auth != nil && !s.rwAuthorize(w, r, token, buf.series) {
		return
	}
	res.limited = s.admitRW(buf.series, now)
	if err := s.writable(); err != nil {
		s.storageUnavailable(w, "", rwSampleCount(buf.series), &refusedError{err})
		return
	}
	if err := s.storeRW(r.Context(), buf.series, &res); err != nil {
		n := 0
		if errors.As(err, new(*busError)) {
			n = rwSampleCount(buf.series) // none published for sure
		}
		s.storageUnavailable(w, "", n, err)
		return
	}
	for _, rj := range res.rejected {
		s.m.dropped.WithLabelValues(rj.reason).Inc()
	}
	switch {
	case res.limited != nil:
		s.m.rejected.WithLabelValues(rejectTooManySeries).Inc()
		w.Header().Set("Retry-After", rwRetryAfter)
		writeJSONError(w, http.StatusTooManyRequests, res.limited.Error()+"; the other series are stored; retry when series have been idle for "+s.opts.SeriesIdle.String()+", or ask the hub's operator to raise the limit")
	case len(res.rejected) > 0:
		writeJSONError(w, http.StatusBadRequest, rejectedSummary(res.rejected))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// rwSampleCount is the number of samples of series.
func rwSampleCount(series []rwSeries) int {
	n := 0
	for _, sr := range series {
		n += len(sr.samples)
	}
	return n
}

// checkRWHeaders returns why the request's headers are not remote write
// 1.0, or "".
func checkRWHeaders(h http.Header) string {
	if enc := h.Get("Content-Encoding"); !strings.EqualFold(enc, "snappy") {
		return fmt.Sprintf("Content-Encoding %q: remote write bodies are snappy-compressed protobuf (Content-Encoding: snappy)", enc)
	}
	ct := h.Get("Content-Type")
	if strings.Contains(ct, "io.prometheus.write.v2") {
		return "remote write 2.0 is not supported; configure the sender for remote write 1.0 (protobuf_message: prometheus.WriteRequest)"
	}
	if ct != "" && !strings.HasPrefix(ct, "application/x-protobuf") {
		return fmt.Sprintf("Content-Type %q: remote write bodies are application/x-protobuf", ct)
	}
	if v := h.Get("X-Prometheus-Remote-Write-Version"); v != "" && !strings.HasPrefix(v, "0.") && !strings.HasPrefix(v, "1.") {
		return fmt.Sprintf("X-Prometheus-Remote-Write-Version %q is not supported; the hub takes remote write 1.0 (0.1.0)", v)
	}
	return ""
}

// rwSlot takes one of the RemoteWriteConcurrency request slots, waiting up
// to rwSlotWait; ok is false when none came free.
func (s *Server) rwSlot(ctx context.Context) (release func(), ok bool) {
	select {
	case s.rwSlots <- struct{}{}:
	default:
		t := time.NewTimer(rwSlotWait)
		defer t.Stop()
		select {
		case s.rwSlots <- struct{}{}:
		case <-t.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
	return func() { <-s.rwSlots }, true
}

// readRemoteWrite reads, decompresses and decodes a body into buf.req. On
// error it returns the HTTP status to answer with.
func (s *Server) readRemoteWrite(buf *rwBuffers, w http.ResponseWriter, body io.ReadCloser) (int, error) {
	var err error
	buf.body, err = readAll(http.MaxBytesReader(w, body, s.opts.MaxBodyBytes), buf.body[:0])
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes; lower the sender's max_samples_per_send", s.opts.MaxBodyBytes)
		}
		return http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	buf.decoded, err = decodeSnappy(buf.decoded, buf.body, s.opts.MaxBodyBytes*rwDecodedFactor)
	if err != nil {
		if errors.Is(err, errDecodedTooLarge) {
			return http.StatusRequestEntityTooLarge, err
		}
		return http.StatusBadRequest, err
	}
	if err := unmarshalWriteRequest(&buf.req, buf.decoded); err != nil {
		return http.StatusBadRequest, err
	}
	return 0, nil
}

// readAll appends r's bytes to b, growing it as needed.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

var errDecodedTooLarge = errors.New("decompressed body too large")

// decodeSnappy decompresses src (snappy block format) into dst's memory;
// the result may be at most limit bytes.
func decodeSnappy(dst, src []byte, limit int64) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("body is not snappy-compressed (block format): %w", err)
	}
	if int64(n) > limit {
		return dst, fmt.Errorf("%w: %d bytes decompressed, limit %d; lower the sender's max_samples_per_send", errDecodedTooLarge, n, limit)
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out, err := snappy.Decode(dst[:cap(dst)], src)
	if err != nil {
		return dst, fmt.Errorf("body is not snappy-compressed (block format): %w", err)
	}
	return out, nil
}

// unmarshalWriteRequest decodes b into req, reusing req's slices; req's
// strings point into b.
func unmarshalWriteRequest(req *prompb.WriteRequest, b []byte) error {
	if err := decodeWriteRequest(req, b); err != nil {
		return fmt.Errorf("body is not a protobuf prometheus.WriteRequest: %w", err)
	}
	return nil
}

func countRWSamples(req *prompb.WriteRequest) int {
	n := 0
	for i := range req.Timeseries {
		n += len(req.Timeseries[i].Samples) + len(req.Timeseries[i].Histograms)
	}
	return n
}

// parseRemoteWrite validates buf.req's series and samples. It appends the
// valid series, with their valid samples, to out; each refused sample is a
// rejection.
func (s *Server) parseRemoteWrite(buf *rwBuffers, now int64, out []rwSeries) ([]rwSeries, []rejection) {
	var rejected []rejection
	reject := func(i int, reason string, n int, err error) {
		for range n {
			rejected = append(rejected, rejection{reason: reason, msg: fmt.Sprintf("timeseries[%d]: %v", i, err)})
		}
	}
	maxFuture, maxAge := now+s.opts.MaxFuture.Milliseconds(), now-s.opts.MaxAge.Milliseconds()
	var mh maphash.Hash
	mh.SetSeed(s.rwSeed)
	for i := range buf.req.Timeseries {
		ts := &buf.req.Timeseries[i]
		if n := len(ts.Histograms); n > 0 {
			reject(i, reasonUnsupported, n, errors.New("native histograms are not supported; the hub stores float samples (classic histograms work)"))
		}
		if len(ts.Samples) == 0 {
			continue
		}
		h := hashSent(&mh, ts.Labels)
		e := s.rwLookup(h, ts.Labels)
		if e == nil {
			lset, err := s.rwLabels(&buf.b, ts.Labels)
			if err != nil {
				reason := reasonInvalidSeries
				if errors.Is(err, metric.ErrReservedName) {
					reason = reasonReservedName
				}
				reject(i, reason, len(ts.Samples), err)
				continue
			}
			e = s.rwRemember(h, ts.Labels, lset)
		}
		name := func() string { return e.lset.Get(labels.MetricName) }
		keep := ts.Samples[:0]
		for _, sm := range ts.Samples {
			switch {
			case sm.Timestamp > maxFuture:
				reject(i, reasonTooNew, 1, fmt.Errorf("%s: sample at %d is more than %s in the future (check the sender's clock)", name(), sm.Timestamp, s.opts.MaxFuture))
			case sm.Timestamp < maxAge:
				reject(i, reasonTooOld, 1, fmt.Errorf("%s: sample at %d is older than %s", name(), sm.Timestamp, s.opts.MaxAge))
			default:
				keep = append(keep, sm)
			}
		}
		if len(keep) == 0 {
			continue
		}
		out = append(out, rwSeries{rwEntry: e, samples: keep})
	}
	return out, rejected
}

// rwLabels validates a remote-write label set and returns it as stored:
// every label as sent, sorted; labels with an empty value are left out
// (in Prometheus an empty value is no label).
func (s *Server) rwLabels(b *labels.ScratchBuilder, ls []prompb.Label) (labels.Labels, error) {
	lim := s.opts.Limits
	b.Reset()
	name := ""
	n := 0
	for _, l := range ls {
		if l.Value == "" {
			continue
		}
		if l.Name == labels.MetricName {
			if name != "" {
				return labels.EmptyLabels(), errors.New("label __name__ repeated")
			}
			name = l.Value
			b.Add(l.Name, l.Value)
			continue
		}
		n++
		switch {
		case len(l.Name) > lim.MaxLabelNameLength:
			return labels.EmptyLabels(), fmt.Errorf("label name is %d bytes, limit %d", len(l.Name), lim.MaxLabelNameLength)
		case !metric.ValidLabelName(l.Name):
			return labels.EmptyLabels(), fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", clip(l.Name))
		case len(l.Value) > lim.MaxLabelValueLength:
			return labels.EmptyLabels(), fmt.Errorf("value of label %s is %d bytes, limit %d", l.Name, len(l.Value), lim.MaxLabelValueLength)
		case !utf8.ValidString(l.Value):
			return labels.EmptyLabels(), fmt.Errorf("value of label %s is not valid UTF-8", l.Name)
		}
		b.Add(l.Name, l.Value)
	}
	switch {
	case name == "":
		return labels.EmptyLabels(), errors.New("no __name__ label")
	case len(name) > lim.MaxNameLength:
		return labels.EmptyLabels(), fmt.Errorf("metric name is %d bytes, limit %d", len(name), lim.MaxNameLength)
	case !metric.ValidMetricName(name):
		return labels.EmptyLabels(), fmt.Errorf("invalid metric name %q: must match [a-zA-Z_:][a-zA-Z0-9_:]*", clip(name))
	case strings.HasPrefix(name, metric.ReservedPrefix):
		return labels.EmptyLabels(), fmt.Errorf("metric %s: %w (names starting with %q are the hub's own); drop or rename it with write_relabel_configs", name, metric.ErrReservedName, metric.ReservedPrefix)
	case n > lim.MaxLabels:
		return labels.EmptyLabels(), fmt.Errorf("metric %s has %d labels, limit %d", name, n, lim.MaxLabels)
	}
	b.Sort()
	lset := b.Labels()
	if dup, has := lset.HasDuplicateLabelNames(); has {
		return labels.EmptyLabels(), fmt.Errorf("metric %s: label %q repeated", name, dup)
	}
	return lset, nil
}

// rwAuthorize checks the token for every dashboard machine of the
// request: a token bound to a machine may only write series grouped under
// it. On a refusal it answers 403 (or 401) and returns false; nothing of
// the request is stored.
func (s *Server) rwAuthorize(w http.ResponseWriter, r *http.Request, token string, series []rwSeries) bool {
	checked := map[string]bool{}
	for _, sr := range series {
		if checked[sr.group] {
			continue
		}
		checked[sr.group] = true
		err := s.opts.Auth(r.Context(), token, sr.group)
		if err == nil {
			continue
		}
		if errors.Is(err, ErrPermissionDenied) {
			remote := hostOf(r.RemoteAddr)
			s.m.rejected.WithLabelValues(rejectPermission).Inc()
			s.authLog.warn("httpauth:"+remote, "remote-write token not allowed for this machine", "machine", sr.group, "label", s.opts.RemoteWriteMachineLabel, "remote", remote, "err", err)
			writeJSONError(w, http.StatusForbidden, fmt.Sprintf("token not allowed for machine %q (label %s): %v; a token bound to a machine may only write series whose %s label is that machine", sr.group, s.opts.RemoteWriteMachineLabel, err, s.opts.RemoteWriteMachineLabel))
			return false
		}
		s.httpUnauthenticated(w, r, sr.group, err)
		return false
	}
	return true
}

// admitRW counts the request's series against the series caps, by
// dashboard machine; a refused series is marked and the first refusal
// returned.
func (s *Server) admitRW(series []rwSeries, now int64) error {
	var limited error
	for i := range series {
		sr := &series[i]
		err := s.series.admit(sr.group, sr.hash, now, admission{})
		if err == nil {
			continue
		}
		s.countRefused(err)
		sr.refused = true
		if limited == nil {
			limited = err
			s.once.warn("serieslimit:rw:"+sr.group, "new remote-write series refused: series limit reached", "machine", sr.group, "err", err)
		}
	}
	return limited
}

// rejectRefused adds the samples of a series refused by a series cap to
// res's rejections and leaves it none.
func (res *rwResult) rejectRefused(sr *rwSeries) {
	for range sr.samples {
		res.rejected = append(res.rejected, rejection{reason: reasonSeriesLimit, msg: fmt.Sprintf("%s: %v", sr.lset.Get(labels.MetricName), res.limited)})
	}
	sr.samples = sr.samples[:0]
}

// storeRW appends the admitted series' samples in one commit, then tells
// the store and the live state. Refused samples are added to res. With a
// Bus the samples are published instead (publishRW).
func (s *Server) storeRW(ctx context.Context, series []rwSeries, res *rwResult) error {
	if s.opts.Bus != nil {
		return s.publishRW(ctx, series, res)
	}
	app := s.opts.Storage.Appender(ctx)
	stored := 0
	maxTs := map[string]int64{} // by stored machine label: the store's rollup key
	for i := range series {
		sr := &series[i]
		if sr.refused {
			res.rejectRefused(sr)
			continue
		}
		ref := store.SeriesRef(sr.ref.Load())
		keep := sr.samples[:0]
		for _, sm := range sr.samples {
			r, err := app.Append(ref, sr.lset, sm.Timestamp, sm.Value)
			if err != nil {
				res.rejected = append(res.rejected, rejection{reason: appendReason(err),
					msg: fmt.Sprintf("%s at %d: %v", sr.lset.Get(labels.MetricName), sm.Timestamp, err)})
				continue
			}
			ref = r
			keep = append(keep, sm)
			if t, ok := maxTs[sr.machine]; !ok || sm.Timestamp > t {
				maxTs[sr.machine] = sm.Timestamp
			}
		}
		sr.ref.Store(uint64(ref))
		sr.samples = keep
		stored += len(keep)
	}
	if err := app.Commit(); err != nil {
		return err
	}
	s.m.ingested.Add(float64(stored))
	for m, t := range maxTs {
		s.opts.Storage.NoteWritten(m, t)
	}
	s.rwLive(series)
	return nil
}

// rwLive shows the newest stored value of each series on its dashboard
// machine, registering a machine first seen as SourceRemoteWrite. Stale
// markers are not shown.
func (s *Server) rwLive(series []rwSeries) {
	type update struct {
		ts   int64
		ser  []*live.Series
		vals []float64
	}
	byGroup := map[string]*update{}
	for i := range series {
		sr := &series[i]
		if sr.group == "" || len(sr.samples) == 0 {
			continue
		}
		last := sr.samples[0]
		for _, sm := range sr.samples[1:] {
			if sm.Timestamp >= last.Timestamp {
				last = sm
			}
		}
		if value.IsStaleNaN(last.Value) {
			continue
		}
		u := byGroup[sr.group]
		if u == nil {
			u = &update{}
			byGroup[sr.group] = u
		}
		u.ts = max(u.ts, last.Timestamp)
		u.ser = append(u.ser, sr.live)
		u.vals = append(u.vals, last.Value)
	}
	for g, u := range byGroup {
		if !s.opts.Live.Known(g) {
			s.opts.Live.Connect(live.MachineInfo{ID: g, Hostname: g, Source: live.SourceRemoteWrite})
		}
		s.opts.Live.Update(g, u.ts, u.ser, u.vals)
	}
}

// rejectedSummary is a 400's message: how many samples were refused and
// the first few reasons.
func rejectedSummary(rejected []rejection) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples not stored (the others are): ", len(rejected))
	for i, rj := range rejected[:min(len(rejected), 3)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(rj.msg)
	}
	return b.String()
}

// clip shortens an untrusted string for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
