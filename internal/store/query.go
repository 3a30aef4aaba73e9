package store

import (
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Tier names, as reported in Result.Tier.
const (
	TierRaw = "raw"
	Tier1m  = "1m"
	Tier1h  = "1h"
)

// Query selects one metric's series over a time range.
type Query struct {
	Metric  string // metric name (__name__), required by Query; "" = every metric in Export
	Machine string // machine label; "" = every machine
	// MachineLabel is the label whose value Machine is; "" = machine. A
	// machine of remote-written series is the value of the hub's
	// --remote-write-machine-label (instance by default).
	MachineLabel string
	Matchers     map[string]string // further label equality matchers, optional
	From, To     time.Time         // inclusive range
	// Step is the spacing of the returned points; 0 picks one that gives
	// about 600 points. The tier is chosen from From and Step: raw when the
	// step is under a minute and From is inside raw retention, else 1m when
	// the step is under an hour and From is inside 1m retention, else 1h.
	Step time.Duration
}

// Result is what Query returns.
type Result struct {
	Tier   string        // TierRaw, Tier1m or Tier1h
	Step   time.Duration // spacing of the points
	Series []Series
}

// Series is one series' points, oldest first.
type Series struct {
	Labels metric.Labels // all labels (machine included), __name__ excluded
	Points []Point
}

// Point aggregates the samples that fall in [T, T+Step).
type Point struct {
	T     int64   // ms since epoch, start of the step
	Avg   float64 // sum/count of the underlying samples
	Min   float64
	Max   float64
	Count int64 // number of raw samples behind the point
}

// ExportFunc receives one stored point during Export: the metric name, its
// labels (machine included), ms since epoch and value.
type ExportFunc func(name string, ls metric.Labels, t int64, v float64) error
