package scrape

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Exposition is one scrape's samples, converted to the hub's series.
type Exposition struct {
	Samples []metric.Sample
	// Times[i] is the timestamp the exposition gave Samples[i], ms since
	// the epoch, or 0 when it gave none (the sample takes the scrape's
	// tick). Times is nil when no sample had one.
	Times []int64
	// Invalid counts samples left out because the hub would refuse their
	// series (a name starting with sysmonstm_, over 30 labels, a label
	// name starting with __, a name or value over the length limits).
	Invalid int
	// NonFinite counts samples left out for a NaN or ±Inf value, which the
	// hub does not store (a summary quantile with no observations is NaN).
	NonFinite int
}

// fallbackContentType is the format assumed when an exporter sends no or
// an unknown Content-Type (Prometheus' fallback_scrape_protocol).
const fallbackContentType = "text/plain"

// Parse parses an exposition in the Prometheus text format (0.0.4) or
// OpenMetrics 1.0, chosen by contentType, with Prometheus' own parser
// (model/textparse), and converts each sample for target t: the job and
// instance labels are added (convertLabels), series the hub would refuse
// are left out and counted. Any syntax error, or more samples than
// t.SampleLimit, fails the whole exposition: no partial result. Histograms
// and summaries keep their Prometheus series (_bucket with le, _sum,
// _count, quantile), so PromQL's histogram_quantile works on them.
func Parse(body []byte, contentType string, t *Target) (Exposition, error) {
	return parse(body, contentType, t, nil)
}

// seriesCache maps a series as exposed (the bytes name{labels}) to its
// conversion, so the series an exporter serves again are not parsed into
// labels and converted on every scrape (Prometheus' scrape cache does the
// same). A scrape drops the entries it did not see, so it holds at most
// SampleLimit entries. Only the goroutine of one target uses it.
type seriesCache struct {
	m   map[string]*cachedSeries
	gen uint64 // the current scrape
}

type cachedSeries struct {
	name  string
	ls    metric.Labels // shared by the samples of every scrape: never modified
	valid bool          // the hub accepts the series
	gen   uint64        // last scrape that saw it
}

// sweep drops the entries the current scrape did not see.
func (c *seriesCache) sweep() {
	for k, e := range c.m {
		if e.gen != c.gen {
			delete(c.m, k)
		}
	}
}

// parse is Parse with an optional cache of conversions.
func parse(body []byte, contentType string, t *Target, cache *seriesCache) (exp Exposition, err error) {
	if cache != nil {
		cache.gen++
		defer cache.sweep() // also after a failure: the cache holds at most one scrape's series
	}
	defer func() { // the parser is fuzzed upstream; never let a bug in it take the agent down
		if p := recover(); p != nil {
			exp, err = Exposition{}, &Error{Reason: ReasonParse, Err: fmt.Errorf("parser panicked: %v", p)}
		}
	}()
	if mt, _, perr := mime.ParseMediaType(contentType); perr == nil && mt == "application/vnd.google.protobuf" {
		return Exposition{}, &Error{Reason: ReasonContentType, Err: errors.New("protobuf exposition is not supported; the exporter should serve text/plain or application/openmetrics-text")}
	}
	p, perr := textparse.New(body, contentType, nil, textparse.ParserOptions{FallbackContentType: fallbackContentType})
	if p == nil {
		return Exposition{}, &Error{Reason: ReasonContentType, Err: perr}
	}
	var (
		lset labels.Labels
		n    int
	)
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Exposition{}, &Error{Reason: ReasonParse, Err: err}
		}
		switch entry {
		case textparse.EntrySeries:
		case textparse.EntryHistogram: // only the protobuf format has native histograms
			return Exposition{}, &Error{Reason: ReasonParse, Err: errors.New("native histogram in a text exposition")}
		default:
			continue // TYPE, HELP, UNIT, comments
		}
		if n++; n > t.SampleLimit {
			return Exposition{}, &Error{Reason: ReasonSampleLimit, Err: fmt.Errorf("more than %d samples (sample_limit)", t.SampleLimit)}
		}
		ser, ts, v := p.Series()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			exp.NonFinite++
			continue
		}
		var e *cachedSeries
		if cache != nil {
			e = cache.m[string(ser)]
		}
		if e == nil {
			p.Labels(&lset)
			e = &cachedSeries{}
			e.name, e.ls = convertLabels(lset, t)
			e.valid = metric.DefaultLimits.ValidateSeries(e.name, e.ls) == nil
			if cache != nil {
				cache.m[string(ser)] = e
			}
		}
		if cache != nil {
			e.gen = cache.gen
		}
		if !e.valid {
			exp.Invalid++
			continue
		}
		name, ls := e.name, e.ls
		if ts != nil && exp.Times == nil {
			exp.Times = make([]int64, len(exp.Samples), cap(exp.Samples))
		}
		exp.Samples = append(exp.Samples, metric.Sample{Name: name, Labels: ls, Value: v})
		if exp.Times != nil {
			var at int64
			if ts != nil {
				at = *ts
			}
			exp.Times = append(exp.Times, at)
		}
	}
	return exp, nil
}

// Labels the agent adds or reserves.
const (
	JobLabel       = "job"
	InstanceLabel  = "instance"
	exportedPrefix = "exported_"
)

// convertLabels returns the metric name of lset and its labels for the
// hub, sorted, following Prometheus' rule for target labels: the target's
// job and instance are added; an exposed label of the same name is renamed
// exported_<name> (exported_exported_<name> if that is taken too), or with
// t.HonorLabels kept, and then the target's is not added. The machine
// label is the hub's, so an exposed one is always renamed
// exported_machine. Labels with empty values are dropped, as Prometheus
// drops them.
func convertLabels(lset labels.Labels, t *Target) (string, metric.Labels) {
	var name string
	ls := make(metric.Labels, 0, lset.Len()+1)
	lset.Range(func(l labels.Label) {
		switch {
		case l.Name == labels.MetricName:
			name = l.Value
		case l.Value != "":
			ls = append(ls, metric.Label{Name: l.Name, Value: l.Value})
		}
	})
	addJob, addInstance := true, true
	for i := range ls {
		switch ls[i].Name {
		case metric.MachineLabel:
			ls[i].Name = exportedName(ls, ls[i].Name)
		case JobLabel, InstanceLabel:
			if t.HonorLabels {
				if ls[i].Name == JobLabel {
					addJob = false
				} else {
					addInstance = false
				}
				continue
			}
			ls[i].Name = exportedName(ls, ls[i].Name)
		}
	}
	if addJob {
		ls = append(ls, metric.Label{Name: JobLabel, Value: t.Job})
	}
	if addInstance {
		ls = append(ls, metric.Label{Name: InstanceLabel, Value: t.Instance})
	}
	return name, ls.Sort()
}

// exportedName returns exported_<name>, prefixed again while ls has it.
func exportedName(ls metric.Labels, name string) string {
	for {
		name = exportedPrefix + name
		taken := false
		for _, l := range ls {
			if l.Name == name {
				taken = true
				break
			}
		}
		if !taken {
			return name
		}
	}
}
