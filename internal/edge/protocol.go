package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// Limits of what a publisher may send. The forwarder applies the same limits
// before sending, so a hub never sends what the edge would reject.
const (
	// MaxMessageBytes is the read limit of one publish message.
	MaxMessageBytes = 4 << 20
	// MaxSeriesPerMachine bounds the public series of one machine.
	MaxSeriesPerMachine = 64
	// MaxMachineLabels bounds the labels of one machine (agent --labels).
	MaxMachineLabels = 16
	// MaxSeriesLabels bounds the labels of one series.
	MaxSeriesLabels = 8
	// MaxLabelValueBytes bounds a label value, machine or series.
	MaxLabelValueBytes = 256
	// maxLabelNameBytes bounds a label name.
	maxLabelNameBytes = 100
	// maxMetricNameBytes bounds a metric name.
	maxMetricNameBytes = 200
	// snapshotPartBytes is the size past which the forwarder starts a new
	// snapshot part; one machine is far below MaxMessageBytes - this.
	snapshotPartBytes = 1 << 20
	// maxSnapshotParts bounds one snapshot (parts of snapshotPartBytes).
	maxSnapshotParts = 4096
)

// Message types of the publish protocol (hub → edge) and of the browser
// stream (edge → browser).
const (
	typeSnapshot = "snapshot" // a part of the full public state
	typeMetrics  = "metrics"  // one batch of a machine's public values
	typeMachine  = "machine"  // a machine's identity or online state changed
	typeRemove   = "remove"   // a machine is gone: the hub forgot it, or a snapshot no longer lists it (browser stream)
	typeStatus   = "status"   // the publisher (dis)connected (browser stream only)
)

// wireValue is one series value: {"name","labels","value","ts"?}. Ts (ms
// since epoch) is set in snapshots; in a metrics message the message's ts
// applies.
type wireValue struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Value  *float64          `json:"value"`
	Ts     int64             `json:"ts,omitempty"`
}

// wireMachine is a public machine: {"id","labels","online","last_seen",
// "metrics"?}. last_seen is RFC 3339 (hub clock), null when never seen.
type wireMachine struct {
	ID       string            `json:"id"`
	Labels   map[string]string `json:"labels"`
	Online   bool              `json:"online"`
	LastSeen *time.Time        `json:"last_seen"`
	Metrics  []wireValue       `json:"metrics,omitempty"`
}

// pubMessage is any publish message:
//
//	{"type":"snapshot","part":N,"last":bool,"machines":[wireMachine…]}
//	{"type":"metrics","machine":ID,"ts":MS,"metrics":[wireValue…]}
//	{"type":"machine","machine":wireMachine (without metrics)}
//	{"type":"remove","machine":ID} (the hub forgot the machine)
type pubMessage struct {
	Type     string          `json:"type"`
	Part     int             `json:"part"`
	Last     bool            `json:"last"`
	Machines []wireMachine   `json:"machines"`
	Machine  json.RawMessage `json:"machine"`
	Ts       int64           `json:"ts"`
	Metrics  []wireValue     `json:"metrics"`
}

// Timestamps outside [minTs, maxTs] (ms since epoch) are rejected.
var (
	minTs = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxTs = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// errTooManySeries is returned for a message with more series than a
// machine may have.
var errTooManySeries = fmt.Errorf("more than %d series for one machine", MaxSeriesPerMachine)

// checkLabels validates a label set of at most max labels.
func checkLabels(what string, ls map[string]string, max int) error {
	if len(ls) > max {
		return fmt.Errorf("%s: %d labels, limit %d", what, len(ls), max)
	}
	for k, v := range ls {
		if len(k) > maxLabelNameBytes || !metric.ValidLabelName(k) {
			return fmt.Errorf("%s: invalid label name %q", what, clip(k))
		}
		if len(v) > MaxLabelValueBytes {
			return fmt.Errorf("%s: value of label %s is %d bytes, limit %d", what, k, len(v), MaxLabelValueBytes)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s: value of label %s is not valid UTF-8", what, k)
		}
	}
	return nil
}

// checkSeries validates a series identity.
func checkSeries(name string, ls map[string]string) error {
	if len(name) > maxMetricNameBytes || !metric.ValidMetricName(name) {
		return fmt.Errorf("invalid metric name %q", clip(name))
	}
	if _, ok := ls[metric.MachineLabel]; ok {
		return fmt.Errorf("metric %s: label %q is reserved", name, metric.MachineLabel)
	}
	return checkLabels("metric "+name, ls, MaxSeriesLabels)
}

// checkValue validates a value: present and finite.
func checkValue(name string, v *float64) error {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return fmt.Errorf("metric %s: value missing or not finite", name)
	}
	return nil
}

// checkTs validates a timestamp in ms since epoch.
func checkTs(ts int64) error {
	if ts < minTs || ts > maxTs {
		return fmt.Errorf("timestamp %d ms is not between the years 2000 and 2200", ts)
	}
	return nil
}

// checkMachine validates a machine's identity, and its values when
// withMetrics is set (each value with its own ts).
func checkMachine(m *wireMachine, withMetrics bool) error {
	if err := metric.ValidateMachineID(m.ID); err != nil {
		return err
	}
	if err := checkLabels("machine "+clip(m.ID), m.Labels, MaxMachineLabels); err != nil {
		return err
	}
	if !withMetrics {
		if len(m.Metrics) > 0 {
			return errors.New("machine message carries metrics")
		}
		return nil
	}
	return checkValues(m.Metrics, 0)
}

// checkValues validates the values of one machine; ts is the message's
// timestamp, 0 when each value carries its own.
func checkValues(vs []wireValue, ts int64) error {
	if len(vs) > MaxSeriesPerMachine {
		return errTooManySeries
	}
	for i := range vs {
		v := &vs[i]
		if err := checkSeries(v.Name, v.Labels); err != nil {
			return err
		}
		if err := checkValue(v.Name, v.Value); err != nil {
			return err
		}
		t := v.Ts
		if ts != 0 {
			t = ts
		}
		if err := checkTs(t); err != nil {
			return fmt.Errorf("metric %s: %w", v.Name, err)
		}
	}
	return nil
}

// seriesKey identifies a series of one machine (name and sorted labels).
func seriesKey(name string, ls map[string]string) string {
	return metric.SeriesKey(name, metric.FromMap(ls))
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	i := 64
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
