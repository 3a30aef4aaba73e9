package promapi

import (
	"errors"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// timeRange reads start and end (default: all time).
func timeRange(r *http.Request) (mint, maxt int64, res *result) {
	start, err := parseTimeParam(r.FormValue, "start", minTime)
	if err != nil {
		e := invalidParam(err, "start")
		return 0, 0, &e
	}
	end, err := parseTimeParam(r.FormValue, "end", maxTime)
	if err != nil {
		e := invalidParam(err, "end")
		return 0, 0, &e
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

// hintLimit is the limit passed to the storage: one more than asked, to
// tell whether the answer was truncated.
func hintLimit(limit int) int {
	if limit > 0 {
		return limit + 1
	}
	return 0
}

var errTruncated = errors.New("results truncated due to limit")

// series is GET/POST /api/v1/series: the label sets of the series matching
// any match[] between start and end.
func (a *API) series(r *http.Request) result {
	if len(r.Form["match[]"]) == 0 {
		return badData(errors.New("no match[] parameter provided"))
	}
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return invalidParam(err, "limit")
	}
	mint, maxt, bad := timeRange(r)
	if bad != nil {
		return *bad
	}
	sets, err := parseMatchers(r.Form["match[]"])
	if err != nil {
		return badData(err)
	}
	q, err := a.opts.Queryable.Querier(mint, maxt)
	if err != nil {
		return result{err: execError(err)}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series", Limit: hintLimit(limit)}
	var ss storage.SeriesSet
	if len(sets) == 1 {
		ss = q.Select(r.Context(), false, hints, sets[0]...)
	} else {
		all := make([]storage.SeriesSet, 0, len(sets))
		for _, ms := range sets {
			all = append(all, q.Select(r.Context(), true, hints, ms...))
		}
		ss = storage.NewMergeSeriesSet(all, 0, storage.ChainedSeriesMerge)
	}
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for ss.Next() {
		if limit > 0 && len(out) == limit {
			warnings.Add(errTruncated)
			break
		}
		if len(out) == a.opts.MaxSeries {
			return result{err: &apiError{errExec, tooManySeries{a.opts.MaxSeries}}, warnings: warnings}
		}
		out = append(out, ss.At().Labels())
	}
	warnings.Merge(ss.Warnings())
	if err := ss.Err(); err != nil {
		return result{err: execError(err), warnings: warnings}
	}
	return result{data: out, warnings: warnings}
}

// labelNames is GET/POST /api/v1/labels: the label names of the series
// matching any match[] (every series without one).
func (a *API) labelNames(r *http.Request) result {
	return a.labelQuery(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(r.Context(), hints, ms...)
	})
}

// labelValues is GET/POST /api/v1/label/{name}/values.
func (a *API) labelValues(r *http.Request) result {
	name := r.PathValue("name")
	if !model.LabelName(name).IsValid() {
		return badData(errors.New("invalid label name: \"" + name + "\""))
	}
	return a.labelQuery(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(r.Context(), name, hints, ms...)
	})
}

// labelQuery answers the sorted union of get over every match[] set.
func (a *API) labelQuery(r *http.Request, get func(storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return invalidParam(err, "limit")
	}
	mint, maxt, bad := timeRange(r)
	if bad != nil {
		return *bad
	}
	sets, err := parseMatchers(r.Form["match[]"])
	if err != nil {
		return badData(err)
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	q, err := a.opts.Queryable.Querier(mint, maxt)
	if err != nil {
		return result{err: execError(err)}
	}
	defer q.Close()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	seen := map[string]struct{}{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		vals, w, err := get(q, hints, ms)
		warnings.Merge(w)
		if err != nil {
			return result{err: execError(err), warnings: warnings}
		}
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings.Add(errTruncated)
	}
	return result{data: out, warnings: warnings}
}

// metadataEntry is one family's metadata in Prometheus' shape.
type metadataEntry struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// metadata is GET /api/v1/metadata: type, help and unit of every family
// of the metric catalogue (metric.Catalogue), or of the one named by
// metric. As in Prometheus 2.42, limit bounds the families listed: a
// negative one (or none) lists all, 0 none.
func (a *API) metadata(r *http.Request) result {
	limit := -1
	if s := r.FormValue("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil {
			return badData(errors.New("limit must be a number"))
		}
	}
	name := r.FormValue("metric")
	out := map[string][]metadataEntry{}
	for _, f := range metric.Catalogue {
		if limit >= 0 && len(out) >= limit {
			break
		}
		if name == "" || f.Name == name {
			out[f.Name] = []metadataEntry{{Type: f.Type, Help: f.Help, Unit: f.Unit}}
		}
	}
	return result{data: out}
}

// buildInfo is GET/POST /api/v1/status/buildinfo: this binary's version
// in Prometheus' shape.
func (a *API) buildInfo(*http.Request) result {
	bi := map[string]string{"version": "dev", "revision": "", "branch": "", "buildUser": "", "buildDate": "", "goVersion": runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			bi["version"] = v
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi["revision"] = s.Value
			case "vcs.time":
				bi["buildDate"] = s.Value
			}
		}
	}
	return result{data: bi}
}
