package collect

import (
	"context"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Collector produces samples for one source. Implementations keep their own
// previous counters (no package-level state), so two Sets never share them.
// Collect is never called concurrently with itself by a Set. It should
// return when ctx ends; samples it added before returning an error are kept.
type Collector interface {
	Name() string
	Collect(ctx context.Context, b *Batch) error
}

// Batch accumulates one tick's samples.
type Batch struct {
	Samples []metric.Sample
}

// Add appends a sample. labelPairs are name, value, name, value, …; the
// labels are sorted by name. An odd trailing name is ignored.
func (b *Batch) Add(name string, value float64, labelPairs ...string) {
	var ls metric.Labels
	if n := len(labelPairs) / 2; n > 0 {
		ls = make(metric.Labels, n)
		for i := range ls {
			ls[i] = metric.Label{Name: labelPairs[2*i], Value: labelPairs[2*i+1]}
		}
		if n > 1 {
			ls.Sort()
		}
	}
	b.Samples = append(b.Samples, metric.Sample{Name: name, Labels: ls, Value: value})
}

// addShared appends a sample whose labels (sorted, unique) the collector
// built once and keeps between ticks: no allocation. Consumers must not
// modify a sample's labels.
func (b *Batch) addShared(name string, value float64, ls metric.Labels) {
	b.Samples = append(b.Samples, metric.Sample{Name: name, Labels: ls, Value: value})
}

// sortedLabels builds labels from name, value pairs, sorted.
func sortedLabels(pairs ...string) metric.Labels {
	var b Batch
	b.Add("", 0, pairs...)
	return b.Samples[0].Labels
}

// Options configure where collectors read from and how long they may take.
type Options struct {
	ProcPath string        // default "/proc"
	SysPath  string        // default "/sys"; for sysfs collectors (none of the core set reads it yet)
	RootFS   string        // default "/": prefix for statfs of mountpoints and for /etc/os-release (e.g. "/host" in a container)
	Timeout  time.Duration // hard per-collector timeout per tick; default 500ms
	Logger   *slog.Logger  // nil discards

	// Deeper collectors (NewDefault registers each when its source exists).
	TextfileDir     string        // directory of *.prom files; "" disables the textfile collector
	SmartInterval   time.Duration // how often smartctl runs; default 10m
	GPUInterval     time.Duration // how often nvidia-smi runs; default 5s
	ServiceInterval time.Duration // how often systemctl runs and service cgroups are listed; default 10s
	Disable         []string      // collector names NewDefault leaves out (see CollectorNames)
	// DirSizes are directories whose disk usage is measured (opt-in: the
	// dirsize collector runs only when this is set), every DirSizeInterval
	// (default 30m).
	DirSizes        []DirSpec
	DirSizeInterval time.Duration
}

// DefaultTimeout is the per-collector timeout when Options.Timeout is zero.
const DefaultTimeout = 500 * time.Millisecond

func (o Options) withDefaults() Options {
	if o.ProcPath == "" {
		o.ProcPath = "/proc"
	}
	if o.SysPath == "" {
		o.SysPath = "/sys"
	}
	if o.RootFS == "" {
		o.RootFS = "/"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SmartInterval <= 0 {
		o.SmartInterval = DefaultSmartInterval
	}
	if o.GPUInterval <= 0 {
		o.GPUInterval = DefaultGPUInterval
	}
	if o.ServiceInterval <= 0 {
		o.ServiceInterval = DefaultServiceInterval
	}
	if o.DirSizeInterval <= 0 {
		o.DirSizeInterval = DefaultDirSizeInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// round2 rounds a percentage to two decimals.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// clampPercent keeps v within [0, 100].
func clampPercent(v float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v > 100:
		return 100
	}
	return v
}
