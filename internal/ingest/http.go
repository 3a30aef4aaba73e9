package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
}

// decodeIngest parses and validates a request body. It returns the valid
// samples and a description of each rejected one; err is set only when the
// body as a whole is unusable.
func (s *Server) decodeIngest(body io.Reader) (machine string, ok []sample, rejected []string, err error) {
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
		var problem error
		switch {
		case m.Value == nil:
			problem = errors.New("value missing")
		default:
			problem = s.opts.Limits.ValidateSeries(m.Name, ls)
		}
		if problem == nil {
			problem = metric.ValidateValue(*m.Value)
		}
		ts := now
		if problem == nil && m.TS != nil {
			ts = *m.TS
			switch {
			case ts > now+s.opts.MaxFuture.Milliseconds():
				problem = fmt.Errorf("ts %d is more than %s in the future (ts is unix milliseconds)", ts, s.opts.MaxFuture)
			case ts < now-s.opts.MaxAge.Milliseconds():
				problem = fmt.Errorf("ts %d is older than %s (ts is unix milliseconds)", ts, s.opts.MaxAge)
			}
		}
		if problem != nil {
			rejected = append(rejected, fmt.Sprintf("metrics[%d]: %v", i, problem))
			continue
		}
		b := labels.NewScratchBuilder(len(ls) + 2)
		b.Add(labels.MetricName, m.Name)
		b.Add(metric.MachineLabel, req.Machine)
		for _, l := range ls {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		ok = append(ok, sample{lset: b.Labels(), ls: ls, name: m.Name, ts: ts, v: *m.Value})
	}
	return req.Machine, ok, rejected, nil
}

// HTTPHandler serves POST /api/v1/ingest: JSON samples for scripts and
// devices, authenticated with "Authorization: Bearer TOKEN".
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
		if s.opts.Auth != nil && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			// No token at all: refuse before reading the body.
			s.m.rejected.WithLabelValues(rejectUnauthenticated).Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm ingest"`)
			writeJSONError(w, http.StatusUnauthorized, "no token: send Authorization: Bearer <token from `sysmonstm token create`>")
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
			token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if err := s.opts.Auth(r.Context(), strings.TrimSpace(token), machine); err != nil {
				remote := hostOf(r.RemoteAddr)
				if errors.Is(err, ErrPermissionDenied) {
					s.m.rejected.WithLabelValues(rejectPermission).Inc()
					s.authLog.warn("httpauth:"+remote, "ingest token not allowed for this machine", "machine", machine, "remote", remote, "err", err)
					writeJSONError(w, http.StatusForbidden, fmt.Sprintf("token not allowed for machine %q: %v", machine, err))
					return
				}
				s.m.rejected.WithLabelValues(rejectUnauthenticated).Inc()
				s.authLog.warn("httpauth:"+remote, "ingest token rejected", "machine", machine, "remote", remote, "err", err)
				w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm ingest"`)
				writeJSONError(w, http.StatusUnauthorized, "token rejected: "+err.Error()+"; send Authorization: Bearer <token from `sysmonstm token create`>")
				return
			}
		}
		s.m.dropped.WithLabelValues(reasonInvalidSeries).Add(float64(len(rejected)))
		resp := IngestResponse{Rejected: len(rejected)}
		if len(rejected) > maxReportedErrors {
			resp.Errors = rejected[:maxReportedErrors]
		} else {
			resp.Errors = rejected
		}
		if len(samples) == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(struct {
				Error string `json:"error"`
				IngestResponse
			}{Error: "no valid sample: " + rejected[0], IngestResponse: resp})
			return
		}
		accepted, err := s.storeHTTP(r, machine, samples)
		if err != nil {
			s.log.Error("http ingest commit failed", "machine", machine, "err", err)
			writeJSONError(w, http.StatusServiceUnavailable, "storage unavailable; retry")
			return
		}
		resp.Accepted = accepted
		resp.Rejected += len(samples) - accepted
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// storeHTTP writes samples in one commit and updates the live state.
func (s *Server) storeHTTP(r *http.Request, machine string, samples []sample) (int, error) {
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

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
