package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// IngestRequest is the body of POST /api/v1/ingest.
type IngestRequest struct {
	Machine string         `json:"machine"`
	Metrics []IngestMetric `json:"metrics"`
}

// IngestMetric is one sample of an IngestRequest.
type IngestMetric struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  *float64          `json:"value"`
	TS     *int64            `json:"ts,omitempty"` // ms since epoch; default now
}

// IngestResponse answers POST /api/v1/ingest.
type IngestResponse struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Errors   []string `json:"errors,omitempty"` // the first few rejections
}

const maxReportedErrors = 10

// maxIngestMetrics bounds the samples in one HTTP request.
const maxIngestMetrics = 50_000

// sample is a validated sample of an HTTP request.
type sample struct {
	lset labels.Labels
	ls   metric.Labels
	name string
	ts   int64
	v    float64
	idx  int // position in the request's metrics
}

// rejection is one refused sample of an HTTP request.
type rejection struct {
	reason string // label of sysmonstm_dropped_samples_total
	msg    string // for the response: "metrics[i]: what is wrong"
}

// decodeIngest parses and validates a request body. It returns the valid
// samples and each rejected one with its reason; err is set only when the
// body as a whole is unusable.
func (s *Server) decodeIngest(body io.Reader) (machine string, ok []sample, rejected []rejection, err error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req IngestRequest
	if err := dec.Decode(&req); err != nil {
		return "", nil, nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return "", nil, nil, errors.New("invalid JSON body: more than one value")
	}
	if err := metric.ValidateMachineID(req.Machine); err != nil {
		return "", nil, nil, fmt.Errorf("machine: %w", err)
	}
	if len(req.Metrics) == 0 {
		return "", nil, nil, errors.New("metrics: empty; send at least one {\"name\",\"value\"}")
	}
	if len(req.Metrics) > maxIngestMetrics {
		return "", nil, nil, fmt.Errorf("metrics: %d samples, limit %d per request", len(req.Metrics), maxIngestMetrics)
	}
	now := s.opts.Now().UnixMilli()
	for i, m := range req.Metrics {
		ls := metric.FromMap(m.Labels)
		reason, problem := reasonInvalidSeries, error(nil)
		switch {
		case m.Value == nil:
			problem = errors.New("value missing")
		default:
			problem = s.opts.Limits.ValidateSeries(m.Name, ls)
			if errors.Is(problem, metric.ErrReservedName) {
				reason = reasonReservedName
			}
		}
		if problem == nil {
			reason, problem = reasonInvalidValue, metric.ValidateValue(*m.Value)
		}
		ts := now
		if problem == nil && m.TS != nil {
			ts = *m.TS
			switch {
			case ts > now+s.opts.MaxFuture.Milliseconds():
				reason, problem = reasonTooNew, fmt.Errorf("ts %d is more than %s in the future (ts is unix milliseconds)", ts, s.opts.MaxFuture)
			case ts < now-s.opts.MaxAge.Milliseconds():
				reason, problem = reasonTooOld, fmt.Errorf("ts %d is older than %s (ts is unix milliseconds)", ts, s.opts.MaxAge)
			}
		}
		if problem != nil {
			rejected = append(rejected, rejection{reason: reason, msg: fmt.Sprintf("metrics[%d]: %v", i, problem)})
			continue
		}
		b := labels.NewScratchBuilder(len(ls) + 2)
		b.Add(labels.MetricName, m.Name)
		b.Add(metric.MachineLabel, req.Machine)
		for _, l := range ls {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		ok = append(ok, sample{lset: b.Labels(), ls: ls, name: m.Name, ts: ts, v: *m.Value, idx: i})
	}
	return req.Machine, ok, rejected, nil
}

// HTTPHandler serves POST /api/v1/ingest: JSON samples for scripts and
// devices, authenticated with "Authorization: Bearer TOKEN". The token is
// checked before the body is read (with TokenAuth; the machine binding once the
// body names the machine).
func (s *Server) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			writeJSONError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		token, ok := s.checkToken(w, r)
		if !ok {
			return
		}
		body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		machine, samples, rejected, err := s.decodeIngest(body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.m.dropped.WithLabelValues(reasonInvalidBatch).Inc()
				s.m.rejected.WithLabelValues(rejectTooLarge).Inc()
				writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.opts.MaxBodyBytes))
				return
			}
			s.m.dropped.WithLabelValues(reasonInvalidBatch).Inc()
			s.m.rejected.WithLabelValues(rejectMalformed).Inc()
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		if s.opts.Auth != nil {
			if err := s.opts.Auth(r.Context(), token, machine); err != nil {
				if errors.Is(err, ErrPermissionDenied) {
					remote := hostOf(r.RemoteAddr)
					s.m.rejected.WithLabelValues(rejectPermission).Inc()
					s.authLog.warn("httpauth:"+remote, "ingest token not allowed for this machine", "machine", machine, "remote", remote, "err", err)
					writeJSONError(w, http.StatusForbidden, fmt.Sprintf("token not allowed for machine %q: %v", machine, err))
					return
				}
				s.httpUnauthenticated(w, r, machine, err)
				return
			}
		}
		samples, rejected = s.dedupe(samples, rejected)
		samples, rejected, limited := s.admitHTTP(machine, samples, rejected)
		for _, rj := range rejected {
			s.m.dropped.WithLabelValues(rj.reason).Inc()
		}
		resp := IngestResponse{Rejected: len(rejected)}
		for _, rj := range rejected[:min(len(rejected), maxReportedErrors)] {
			resp.Errors = append(resp.Errors, rj.msg)
		}
		if len(samples) == 0 {
			code, msg := http.StatusBadRequest, "no valid sample: "+rejected[0].msg
			if limited != nil {
				// Nothing stored because of a series cap: the request as a
				// whole is refused; it may succeed once series go idle.
				s.m.rejected.WithLabelValues(rejectTooManySeries).Inc()
				code, msg = http.StatusTooManyRequests, limited.Error()+"; retry when series have been idle for "+s.opts.SeriesIdle.String()+", or ask the hub's operator to raise the limit"
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(struct {
				Error string `json:"error"`
				IngestResponse
			}{Error: msg, IngestResponse: resp})
			return
		}
		accepted, err := s.storeHTTP(r, machine, samples)
		if err != nil {
			s.storageUnavailable(w, machine, len(samples), err)
			return
		}
		resp.Accepted = accepted
		resp.Rejected += len(samples) - accepted
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// checkToken reads the request's "Authorization: Bearer" token and, with
// Auth, checks it before the body is read (with TokenAuth; the machine
// binding is checked once the body names the machine). When it is missing
// or rejected it answers 401 and returns ok false.
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) (token string, ok bool) {
	token, hasToken := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if s.opts.Auth == nil {
		return token, true
	}
	if !hasToken {
		// No token at all: refuse before reading the body.
		s.m.rejected.WithLabelValues(rejectUnauthenticated).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm ingest"`)
		writeJSONError(w, http.StatusUnauthorized, "no token: send Authorization: Bearer <token from `sysmonstm token create`>")
		return "", false
	}
	if s.opts.TokenAuth != nil {
		if err := s.opts.TokenAuth(r.Context(), token); err != nil {
			s.httpUnauthenticated(w, r, "", err)
			return "", false
		}
	}
	return token, true
}

// httpUnauthenticated answers 401 for a token that is not valid; machine
// is "" when the body was not read.
func (s *Server) httpUnauthenticated(w http.ResponseWriter, r *http.Request, machine string, err error) {
	remote := hostOf(r.RemoteAddr)
	s.m.rejected.WithLabelValues(rejectUnauthenticated).Inc()
	s.authLog.warn("httpauth:"+remote, "ingest token rejected", "machine", machine, "remote", remote, "err", err)
	w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm ingest"`)
	writeJSONError(w, http.StatusUnauthorized, "token rejected: "+err.Error()+"; send Authorization: Bearer <token from `sysmonstm token create`>")
}

// dedupe keeps the first sample of each series and timestamp in a request:
// storage keeps one sample per series and ms, so a repeat is reported as
// a duplicate instead of being counted as accepted.
func (s *Server) dedupe(samples []sample, rejected []rejection) ([]sample, []rejection) {
	type key struct {
		h  uint64
		ts int64
	}
	seen := make(map[key]labels.Labels, len(samples))
	out := samples[:0]
	for _, sm := range samples {
		k := key{sm.lset.Hash(), sm.ts}
		if first, ok := seen[k]; ok && labels.Equal(first, sm.lset) {
			rejected = append(rejected, rejection{reason: reasonDuplicate,
				msg: fmt.Sprintf("metrics[%d]: duplicate of an earlier sample of the same series and ts in this request", sm.idx)})
			continue
		}
		seen[k] = sm.lset
		out = append(out, sm)
	}
	return out, rejected
}

// admitHTTP counts the request's series against the series caps; the
// samples of series a cap refuses are rejected as series_limit, and limited
// is the first cap error (nil when none).
func (s *Server) admitHTTP(machine string, samples []sample, rejected []rejection) ([]sample, []rejection, error) {
	now := s.opts.Now().UnixMilli()
	refused := map[uint64]error{}
	var limited error
	out := samples[:0]
	for _, sm := range samples {
		h := sm.lset.Hash()
		err, seen := refused[h]
		if !seen {
			err = s.series.admit(machine, h, now, admission{})
			refused[h] = err
			if err != nil {
				s.countRefused(err)
			}
		}
		if err != nil {
			if limited == nil {
				limited = err
				s.once.warn("serieslimit:"+machine, "new series refused: series limit reached", "machine", machine, "err", err)
			}
			rejected = append(rejected, rejection{reason: reasonSeriesLimit, msg: fmt.Sprintf("metrics[%d]: %v", sm.idx, err)})
			continue
		}
		out = append(out, sm)
	}
	return out, rejected, limited
}

// storeHTTP writes samples in one commit and updates the live state. While
// storage refuses writes it returns a *refusedError, writing nothing.
func (s *Server) storeHTTP(r *http.Request, machine string, samples []sample) (int, error) {
	if err := s.writable(); err != nil {
		return 0, &refusedError{err}
	}
	if s.opts.Bus != nil {
		return s.publishHTTP(r.Context(), machine, samples)
	}
	app := s.opts.Storage.Appender(r.Context())
	stored := make([]sample, 0, len(samples))
	var maxTs int64
	for _, sm := range samples {
		if _, err := app.Append(0, sm.lset, sm.ts, sm.v); err != nil {
			s.m.dropped.WithLabelValues(appendReason(err)).Inc()
			continue
		}
		stored = append(stored, sm)
		maxTs = max(maxTs, sm.ts)
	}
	if err := app.Commit(); err != nil {
		return 0, err
	}
	s.m.ingested.Add(float64(len(stored)))
	if len(stored) == 0 {
		return 0, nil
	}
	s.opts.Storage.NoteWritten(machine, maxTs)
	if !s.opts.Live.Known(machine) {
		// A machine that only reports over HTTP has no hello: register it
		// by id, marked so that offline rules for every machine skip it.
		s.opts.Live.Connect(live.MachineInfo{ID: machine, Hostname: machine, Source: live.SourceHTTP})
	}
	// The live state takes one timestamp per update: group by ts.
	sort.SliceStable(stored, func(i, j int) bool { return stored[i].ts < stored[j].ts })
	for i := 0; i < len(stored); {
		k := i
		for k < len(stored) && stored[k].ts == stored[i].ts {
			k++
		}
		ser := make([]*live.Series, 0, k-i)
		vals := make([]float64, 0, k-i)
		for _, sm := range stored[i:k] {
			ser = append(ser, live.NewSeries(sm.name, sm.ls))
			vals = append(vals, sm.v)
		}
		s.opts.Live.Update(machine, stored[i].ts, ser, vals)
		i = k
	}
	return len(stored), nil
}

// refusedError is Options.Writable's refusal, before anything was written.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// storageRetryAfter is the Retry-After, in seconds, of a 503 for a refused
// or failed write.
const storageRetryAfter = "10"

// storageUnavailable answers 503 for n samples that were not stored:
// refused while storage is short of space, or a failed commit.
func (s *Server) storageUnavailable(w http.ResponseWriter, machine string, n int, err error) {
	w.Header().Set("Retry-After", storageRetryAfter)
	var refused *refusedError
	var busErr *busError
	switch {
	case errors.As(err, &busErr):
		s.m.dropped.WithLabelValues(reasonStorage).Add(float64(n))
		s.once.log(slog.LevelError, "httpbus", "http ingest or remote write not published to the bus (logged once a minute)", "machine", machine, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "hub cannot reach its sample bus: "+err.Error()+"; nothing of this request is acknowledged, retry later")
	case errors.As(err, &refused):
		s.m.rejected.WithLabelValues(rejectDiskFull).Inc()
		s.m.dropped.WithLabelValues(reasonDiskFull).Add(float64(n))
		s.once.warn("httprefused", "http ingest refused: storage refuses writes (logged once a minute)", "machine", machine, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "hub storage refuses samples: "+err.Error()+"; retry later")
	default:
		s.m.dropped.WithLabelValues(reasonStorage).Add(float64(n))
		s.once.log(slog.LevelError, "httpcommit", "http ingest commit failed (logged once a minute)", "machine", machine, "err", err)
		msg := "hub storage error; retry later"
		if isDiskFull(err) {
			msg = "hub storage refuses samples: disk full; retry later"
		}
		writeJSONError(w, http.StatusServiceUnavailable, msg)
	}
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
