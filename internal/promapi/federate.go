package promapi

import (
	"cmp"
	"errors"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Latest is the live state /federate reads; *live.State satisfies it.
type Latest interface {
	// Machines returns every machine with its latest values.
	Machines() []live.Machine
}

// federate is GET /federate: the latest value of every series matching any
// match[], newer than the lookback delta, in the Prometheus exposition
// format the scraper asks for (text by default), untyped, with the
// sample's own timestamp and every label as stored (machine included), so
// a Prometheus scraping it with honor_labels stores the hub's series as
// they are.
func (a *API) federate(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "error parsing form values: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(r.Form["match[]"]) == 0 {
		http.Error(w, errNoMatch.Error()+" (e.g. match[]={machine=~\".+\"} for every series)", http.StatusBadRequest)
		return
	}
	sets, err := parseMatchers(r.Form["match[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	families := federation(a.opts.Live.Machines(), sets, a.now().Add(-a.opts.LookbackDelta).UnixMilli())
	format := expfmt.Negotiate(r.Header)
	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			a.opts.Logger.Warn("federate: write answer", "err", err)
			return
		}
	}
}

var errNoMatch = errors.New("no match[] parameter provided")

// federation returns the metric families, sorted by name, of the values
// at or after mint (ms since epoch) that match any of sets.
func federation(machines []live.Machine, sets [][]*labels.Matcher, mint int64) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	untyped := dto.MetricType_UNTYPED
	for _, m := range machines {
		id := m.Info.ID
		for _, v := range m.Metrics {
			if v.Ts < mint || !matchesAny(sets, id, v) {
				continue
			}
			mf := byName[v.Name]
			if mf == nil {
				mf = &dto.MetricFamily{Name: &v.Name, Type: &untyped}
				byName[v.Name] = mf
			}
			mf.Metric = append(mf.Metric, &dto.Metric{
				Label:       labelPairs(id, v.Labels),
				Untyped:     &dto.Untyped{Value: &v.Value},
				TimestampMs: &v.Ts,
			})
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// labelPairs returns machine and ls (sorted, without machine) as sorted
// label pairs.
func labelPairs(machine string, ls metric.Labels) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(ls)+1)
	name := metric.MachineLabel
	done := false
	for i := range ls {
		if !done && ls[i].Name > metric.MachineLabel {
			out = append(out, &dto.LabelPair{Name: &name, Value: &machine})
			done = true
		}
		out = append(out, &dto.LabelPair{Name: &ls[i].Name, Value: &ls[i].Value})
	}
	if !done {
		out = append(out, &dto.LabelPair{Name: &name, Value: &machine})
	}
	return out
}

// matchesAny reports whether the series v of machine matches every matcher
// of one of sets.
func matchesAny(sets [][]*labels.Matcher, machine string, v live.Value) bool {
outer:
	for _, ms := range sets {
		for _, m := range ms {
			var val string
			switch m.Name {
			case labels.MetricName:
				val = v.Name
			case metric.MachineLabel:
				val = machine
			default:
				val = v.Labels.Get(m.Name)
			}
			if !m.Matches(val) {
				continue outer
			}
		}
		return true
	}
	return false
}
