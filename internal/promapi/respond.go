package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/annotations"
)

// errorType is the errorType of a Prometheus API error.
type errorType string

const (
	errBadData  errorType = "bad_data"
	errExec     errorType = "execution"
	errTimeout  errorType = "timeout"
	errCanceled errorType = "canceled"
	errInternal errorType = "internal"
)

// status is the HTTP status Prometheus answers each errorType with.
func (t errorType) status() int {
	switch t {
	case errBadData:
		return http.StatusBadRequest
	case errExec:
		return http.StatusUnprocessableEntity
	case errTimeout, errCanceled:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// apiError is an error answered in Prometheus' error shape.
type apiError struct {
	typ errorType
	err error
}

// result is what an endpoint returns: data, or an error, plus warnings.
type result struct {
	data     any
	err      *apiError
	warnings annotations.Annotations
	query    string // for the positions in warnings
}

func badData(err error) result { return result{err: &apiError{errBadData, err}} }

// execError classifies a query's failure as Prometheus does.
func execError(err error) *apiError {
	var canceled promql.ErrQueryCanceled
	var timeout promql.ErrQueryTimeout
	var storageErr promql.ErrStorage
	var tooMany tooManySeries
	switch {
	case errors.As(err, &tooMany):
		return &apiError{errExec, err}
	case errors.As(err, &canceled):
		return &apiError{errCanceled, err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{errTimeout, err}
	case errors.As(err, &storageErr):
		return &apiError{errInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errCanceled, err}
	}
	return &apiError{errExec, err}
}

// response is Prometheus' response envelope.
type response struct {
	Status    string    `json:"status"`
	Data      any       `json:"data,omitempty"`
	ErrorType errorType `json:"errorType,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	Infos     []string  `json:"infos,omitempty"`
}

// maxAnnotations is how many warnings and infos a response lists at most
// (Prometheus' default).
const maxAnnotations = 10

// serve parses the request's form (query string and a POST body) and
// answers h's result in Prometheus' envelope.
func (a *API) serve(h func(*http.Request) result) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
		var res result
		if err := r.ParseForm(); err != nil {
			res = badData(errors.New("error parsing form values: " + err.Error()))
		} else {
			res = h(r)
		}
		resp := response{Status: "success", Data: res.data}
		status := http.StatusOK
		if res.err != nil {
			resp = response{Status: "error", ErrorType: res.err.typ, Error: res.err.err.Error()}
			status = res.err.typ.status()
		}
		if len(res.warnings) > 0 {
			resp.Warnings, resp.Infos = res.warnings.AsStrings(res.query, maxAnnotations, maxAnnotations)
		}
		parts, err := marshalResponse(resp)
		if err != nil {
			a.opts.Logger.Error("encode prometheus api response", "path", r.URL.Path, "err", err)
			b, _ := json.Marshal(response{Status: "error", ErrorType: errInternal, Error: "encode response: " + err.Error()})
			parts, status = [][]byte{b}, http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return // the client went away
			}
		}
	})
}

// marshalResponse encodes resp in parts to write one after the other;
// data already encoded (json.RawMessage) is written as it is, not
// re-validated, compacted and copied by encoding/json (which took a third
// of a large range query's time).
func marshalResponse(resp response) ([][]byte, error) {
	const head = `{"status":"success"`
	raw, ok := resp.Data.(json.RawMessage)
	if !ok || resp.Status != "success" {
		b, err := json.Marshal(resp)
		return [][]byte{b}, err
	}
	resp.Data = nil
	rest, err := json.Marshal(resp) // {"status":"success"[,"warnings":…]}
	if err != nil {
		return nil, err
	}
	return [][]byte{[]byte(head + `,"data":`), raw, rest[len(head):]}, nil
}
