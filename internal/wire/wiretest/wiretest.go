// Package wiretest holds what the tests of the live stream's encoders and
// decoders share: the golden fixtures of internal/wire/testdata and the
// scenario that produces them. It is imported by tests only.
package wiretest

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// UpdateEnv names the environment variable that makes Check rewrite the
// fixtures instead of comparing: UPDATE_WIRE_FIXTURES=1 go test ./internal/live ./internal/web ./internal/alert
const UpdateEnv = "UPDATE_WIRE_FIXTURES"

// Fixture names, one file testdata/NAME.json each, one message per file as
// it goes over the wire (compact JSON, no trailing newline).
const (
	Snapshot         = "snapshot"          // full mode, MachineID with its metrics
	SnapshotSummary  = "snapshot_summary"  // summary mode
	Metrics          = "metrics"           // the Batch
	Machine          = "machine"           // MachineID connected
	MachineForgotten = "machine_forgotten" // MachineID forgotten
	Processes        = "processes"         // Procs
	Summary          = "summary"           // MachineID's headline after the Batch
	Alert            = "alert"             // an alert of MachineID
	Error            = "error"             // answer to an invalid client message
	Subscribe        = "subscribe"         // client → hub
	MachineDetail    = "machine_detail"    // GET /api/machines/{id}
)

// Fixtures of the edge relay's protocols, whose shapes live in
// internal/edge (docs/edge.md): the hub's forwarder writes the publish
// messages from the same scenario, and the edge turns them into the browser
// messages.
const (
	EdgePublishSnapshot = "edge_publish_snapshot" // hub → edge: the one snapshot part
	EdgePublishMetrics  = "edge_publish_metrics"  // hub → edge: the Batch's public values
	EdgePublishMachine  = "edge_publish_machine"  // hub → edge: MachineID's public identity
	EdgePublishRemove   = "edge_publish_remove"   // hub → edge: MachineID forgotten
	EdgeBrowserSnapshot = "edge_browser_snapshot" // edge → browser: after the snapshot and the batch
	EdgeBrowserMetrics  = "edge_browser_metrics"  // edge → browser: the batch
	EdgeBrowserMachine  = "edge_browser_machine"  // edge → browser: the machine message
	EdgeBrowserRemove   = "edge_browser_remove"   // edge → browser: the remove message
	EdgeBrowserStatus   = "edge_browser_status"   // edge → browser: the publisher connected
)

// EdgeNames lists the edge fixtures.
var EdgeNames = []string{
	EdgePublishSnapshot, EdgePublishMetrics, EdgePublishMachine, EdgePublishRemove,
	EdgeBrowserSnapshot, EdgeBrowserMetrics, EdgeBrowserMachine, EdgeBrowserRemove, EdgeBrowserStatus,
}

// Names lists every fixture.
var Names = []string{Snapshot, SnapshotSummary, Metrics, Machine, MachineForgotten, Processes, Summary, Alert, Error, Subscribe, MachineDetail}

// The scenario's clock and ids.
var (
	// Now is the hub clock of the scenario.
	Now = time.Date(2026, 11, 22, 12, 0, 0, 500_000_000, time.UTC)
	// BatchTs is the agent time of the Batch, ms since epoch.
	BatchTs = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixMilli()
)

// MachineID is the scenario's machine.
const MachineID = "web-1"

// Hostile is text an agent might send to break a viewer: a right-to-left
// override, quotes, backslashes, markup, control characters and a line
// separator.
const Hostile = "evil\u202e\"quoted\" \\ <b>&amp;</b>\x01\x1b[31m\n\u2028end"

// Info is the scenario's hello.
func Info() live.MachineInfo {
	return live.MachineInfo{
		ID: MachineID, Hostname: "web-1.example " + Hostile,
		Labels: metric.Labels{{Name: "env", Value: "prod"}, {Name: "team", Value: Hostile}},
		OS:     "linux", Platform: "debian 12.5", KernelVersion: "6.1.0-18-amd64", Arch: "amd64",
		CPUModel: "Intel(R) Xeon(R) \t" + Hostile, CPUCores: 8, CPUThreads: 16,
		MemoryTotalBytes: math.MaxUint64, BootTime: time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC),
		AgentVersion: "v1.4.0", IntervalMs: 1000, Source: live.SourceAgent,
	}
}

// Value is one value of the Batch.
type Value struct {
	Name   string
	Labels metric.Labels
	Value  float64
}

// Batch is the scenario's one batch: the headline series the dashboards
// read, plus values JSON cannot carry (NaN, +Inf: null) and extreme ones.
func Batch() []Value {
	l := func(kv ...string) metric.Labels {
		var ls metric.Labels
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, metric.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	return []Value{
		{"cpu_usage_percent", l("cpu", "total"), 12.5},
		{"cpu_usage_percent", l("cpu", "0"), 99.99},
		{"memory_usage_percent", nil, 41.25},
		{"filesystem_usage_percent", l("mountpoint", "/"), 31},
		{"filesystem_usage_percent", l("mountpoint", "/data "+Hostile), 77.3},
		{"load1", nil, 0.42},
		{"network_receive_bytes_per_second", l("interface", "eth0"), 10240},
		{"network_receive_bytes_per_second", l("interface", "lo"), 999},
		{"network_transmit_bytes_per_second", l("interface", "eth0"), 2048.5},
		{"uptime_seconds", nil, 86400},
		{"memory_total_bytes", nil, 1.8446744073709552e19},
		{"huge_value", nil, math.MaxFloat64},
		{"tiny_value", nil, 5e-324},
		{"negative_value", nil, -1e15},
		{"nan_value", nil, math.NaN()},
		{"inf_value", nil, math.Inf(1)},
		{"systemd_unit_active", l("unit", "a.service"), 1},
		{"systemd_unit_active", l("unit", "b "+Hostile), 0},
		{"systemd_unit_failed", l("unit", "b "+Hostile), 1},
	}
}

// Procs is the scenario's top-process list.
func Procs() []live.Process {
	return []live.Process{
		{PID: 812, Name: "postgres", User: "postgres", Command: "postgres: checkpointer", CPUPercent: 12.4, RSSBytes: 154140672, State: "S"},
		{PID: math.MaxUint32, Name: Hostile, User: "1000", Command: "sh -c '" + Hostile + "'", CPUPercent: 1e-9, RSSBytes: math.MaxUint64, State: "R"},
	}
}

// Feed plays the scenario into s (whose clock should be Now): the hello,
// the Batch at BatchTs and the top-process list.
func Feed(s *live.State) {
	s.Connect(Info())
	b := Batch()
	series := make([]*live.Series, len(b))
	values := make([]float64, len(b))
	for i, v := range b {
		series[i] = live.NewSeries(v.Name, v.Labels)
		values[i] = v.Value
	}
	s.Update(MachineID, BatchTs, series, values)
	s.SetProcesses(MachineID, BatchTs, Procs())
}

// Dir is the fixtures' directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Read returns the fixture name.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), name+".json"))
	if err != nil {
		t.Fatalf("read wire fixture: %v", err)
	}
	return b
}

// Check fails t unless got is byte for byte the fixture name; with
// UPDATE_WIRE_FIXTURES set it writes got as the fixture instead.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	if os.Getenv(UpdateEnv) != "" {
		if err := os.WriteFile(filepath.Join(Dir(), name+".json"), got, 0o644); err != nil {
			t.Fatalf("update wire fixture: %v", err)
		}
		return
	}
	if want := Read(t, name); !bytes.Equal(got, want) {
		t.Errorf("%s differs from the wire fixture testdata/%s.json (change internal/wire and the fixture together; %s=1 rewrites fixtures):\n got %s\nwant %s", name, name, UpdateEnv, got, want)
	}
}
