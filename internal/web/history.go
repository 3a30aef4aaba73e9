package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// defaultRange is the history and export range when "from" is not given.
const defaultRange = time.Hour

// timeRange reads the "from" and "to" parameters (default: the last hour).
func (s *Server) timeRange(q url.Values) (from, to time.Time, err error) {
	now := s.now()
	to = now
	if v := q.Get("to"); v != "" {
		if to, err = parseTime(v, now); err != nil {
			return from, to, fmt.Errorf("invalid parameter to: %w", err)
		}
	}
	from = to.Add(-defaultRange)
	if v := q.Get("from"); v != "" {
		if from, err = parseTime(v, now); err != nil {
			return from, to, fmt.Errorf("invalid parameter from: %w", err)
		}
	}
	if from.After(to) {
		return from, to, fmt.Errorf("from (%s) is after to (%s)", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return from, to, nil
}

// historyResponse is the JSON of GET /api/machines/{id}/history.
type historyResponse struct {
	Metric  string          `json:"metric"`
	Machine string          `json:"machine"`
	Tier    string          `json:"tier"`
	Step    float64         `json:"step"` // seconds
	From    int64           `json:"from"` // ms since epoch
	To      int64           `json:"to"`   // ms since epoch
	Series  []historySeries `json:"series"`
}

type historySeries struct {
	Labels map[string]string `json:"labels"`
	Points pointList         `json:"points"`
	Min    pointList         `json:"min,omitzero"`
	Max    pointList         `json:"max,omitzero"`
}

// pointList encodes one field of the points as [[unix_ms, value]…].
type pointList struct {
	points []store.Point
	field  func(store.Point) float64
}

func avgOf(p store.Point) float64 { return p.Avg }
func minOf(p store.Point) float64 { return p.Min }
func maxOf(p store.Point) float64 { return p.Max }

// IsZero lets omitempty drop an absent band.
func (pl pointList) IsZero() bool { return pl.field == nil }

// MarshalJSON writes [[ms,v],…]; NaN and ±Inf become null.
func (pl pointList) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(pl.points)*24)
	b = append(b, '[')
	for i, p := range pl.points {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, p.T, 10)
		b = append(b, ',')
		b = appendFloat(b, pl.field(p))
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

// handleHistory answers GET /api/machines/{id}/history. A machine unknown
// to the live state (never seen, or forgotten) is answered from storage
// when it has points in the range, else 404.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	known := s.opts.Live.Known(id)
	q := r.URL.Query()
	name := q.Get("metric")
	if name == "" {
		writeError(w, http.StatusBadRequest, "missing parameter metric")
		return
	}
	from, to, err := s.timeRange(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var step time.Duration
	if v := q.Get("step"); v != "" {
		if step, err = parseStep(v); err != nil {
			writeError(w, http.StatusBadRequest, "invalid parameter "+err.Error())
			return
		}
		if step > 0 && int64(to.Sub(from)/step)+1 > int64(s.opts.MaxQueryPoints) {
			n := int64(to.Sub(from)/step) + 1
			writeError(w, http.StatusBadRequest, fmt.Sprintf(
				"step %s over %s gives %d points per series, limit %d: use a larger step or a shorter range",
				step, to.Sub(from), n, s.opts.MaxQueryPoints))
			return
		}
	}
	res, err := s.opts.History.Query(r.Context(), store.Query{Metric: name, Machine: id, MachineLabel: s.machineLabel(id), From: from, To: to, Step: step})
	if err != nil {
		s.historyError(w, r, err)
		return
	}
	if res == nil {
		res = &store.Result{}
	}
	if !known && len(res.Series) == 0 {
		// Neither live nor stored: most likely a typo. A forgotten machine
		// with history in the range is answered as usual.
		writeError(w, http.StatusNotFound, "unknown machine")
		return
	}
	out := historyResponse{
		Metric: name, Machine: id, Tier: res.Tier, Step: res.Step.Seconds(),
		From: from.UnixMilli(), To: to.UnixMilli(), Series: make([]historySeries, 0, len(res.Series)),
	}
	for _, ser := range res.Series {
		hs := historySeries{Labels: ser.Labels.Map(), Points: pointList{ser.Points, avgOf}}
		if res.Tier != store.TierRaw || aggregates(ser.Points) {
			hs.Min = pointList{ser.Points, minOf}
			hs.Max = pointList{ser.Points, maxOf}
		}
		out.Series = append(out.Series, hs)
	}
	writeJSON(w, http.StatusOK, out)
}

// aggregates reports whether any point stands for more than one sample.
func aggregates(ps []store.Point) bool {
	for _, p := range ps {
		if p.Count > 1 {
			return true
		}
	}
	return false
}

// historyError answers a failed History call: 400 for the caller's mistakes,
// nothing when the client went away, 503 on timeout or when the history
// backend is Unavailable (its message), else 500 (details only
// in the log).
func (s *Server) historyError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ce ClientError
		ue Unavailable
	)
	switch {
	case errors.As(err, &ce) && ce.ClientError():
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client is gone; nobody reads the answer.
	case errors.As(err, &ue) && ue.Unavailable():
		s.log.Warn("history unavailable", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "query timed out")
	default:
		s.log.Error("history query failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "query failed")
	}
}

// machineLabel is the label whose value is machine id in storage: the
// machine label, or for a machine of remote-written series (labels stored
// as sent) the remote-write grouping label.
func (s *Server) machineLabel(id string) string {
	if m, ok := s.opts.Live.Info(id); ok && m.Info.Source == live.SourceRemoteWrite {
		if s.opts.RemoteWriteMachineLabel == "" {
			return "instance"
		}
		return s.opts.RemoteWriteMachineLabel
	}
	return ""
}
