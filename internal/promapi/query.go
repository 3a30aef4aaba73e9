package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

func invalidParam(err error, name string) result {
	return badData(fmt.Errorf("invalid parameter %q: %w", name, err))
}

// withTimeout applies a request's timeout parameter to ctx.
func withTimeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := r.Context()
	to := r.FormValue("timeout")
	if to == "" {
		return ctx, func() {}, nil
	}
	d, err := parseDuration(to)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, nil
}

// query is GET/POST /api/v1/query: query at time (default now).
func (a *API) query(r *http.Request) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return invalidParam(err, "limit")
	}
	ts, err := parseTimeParam(r.FormValue, "time", a.now())
	if err != nil {
		return invalidParam(err, "time")
	}
	ctx, cancel, err := withTimeout(r)
	if err != nil {
		return invalidParam(err, "timeout")
	}
	defer cancel()
	qs := r.FormValue("query")
	q, err := a.engine.NewInstantQuery(ctx, a.queryable, promql.NewPrometheusQueryOpts(false, 0), qs, ts)
	if err != nil {
		return invalidParam(err, "query")
	}
	return a.exec(ctx, q, qs, limit)
}

// queryRange is GET/POST /api/v1/query_range: query at every step from
// start to end.
func (a *API) queryRange(r *http.Request) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return invalidParam(err, "limit")
	}
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return invalidParam(err, "start")
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return invalidParam(err, "end")
	}
	if end.Before(start) {
		return invalidParam(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return invalidParam(err, "step")
	}
	if step <= 0 {
		return invalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	if end.Sub(start)/step > MaxPointsPerSeries {
		return badData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
	}
	ctx, cancel, err := withTimeout(r)
	if err != nil {
		return invalidParam(err, "timeout")
	}
	defer cancel()
	qs := r.FormValue("query")
	q, err := a.engine.NewRangeQuery(ctx, a.queryable, promql.NewPrometheusQueryOpts(false, 0), qs, start, end, step)
	if err != nil {
		return invalidParam(err, "query")
	}
	return a.exec(ctx, q, qs, limit)
}

// exec runs q and answers its value, at most limit series (0: all).
func (a *API) exec(ctx context.Context, q promql.Query, qs string, limit int) result {
	defer q.Close()
	// Wait for a slot no longer than the query may run at all.
	wait, cancel := context.WithTimeout(ctx, a.opts.Timeout)
	defer cancel()
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-wait.Done():
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return result{err: &apiError{errCanceled, fmt.Errorf("query canceled while waiting for one of %d query slots", cap(a.slots))}}
		}
		return result{err: &apiError{errTimeout, fmt.Errorf("query timed out waiting for one of %d query slots: every slot is busy", cap(a.slots))}}
	}
	res := q.Exec(ctx)
	if res.Err != nil {
		return result{err: execError(res.Err), warnings: res.Warnings, query: qs}
	}
	if n := seriesCount(res.Value); n > a.opts.MaxSeries {
		return result{err: &apiError{errExec, tooManySeries{a.opts.MaxSeries}}, warnings: res.Warnings, query: qs}
	}
	warnings := res.Warnings
	if truncate(res, limit) {
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	// The value's memory is the engine's until Close: encode it now.
	b, err := appendValue(make([]byte, 0, encodedSize(res.Value)), res.Value)
	if err != nil {
		return result{err: &apiError{errInternal, err}}
	}
	return result{data: json.RawMessage(b), warnings: warnings, query: qs}
}

// seriesCount is the number of series of a vector or matrix (0 for others).
func seriesCount(v parser.Value) int {
	switch x := v.(type) {
	case promql.Vector:
		return len(x)
	case promql.Matrix:
		return len(x)
	}
	return 0
}

// truncate keeps the first limit series of a vector or matrix result.
func truncate(res *promql.Result, limit int) bool {
	if limit <= 0 {
		return false
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	case promql.Matrix:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	}
	return false
}
