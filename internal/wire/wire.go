// Package wire is the one definition of the hub's live stream (GET /ws):
// its message types, their JSON shapes as Go structs, and golden fixtures
// (testdata/*.json) that every encoder (internal/live, internal/web,
// internal/alert) and decoder (internal/tui, internal/edge's forwarder,
// the dashboard's feed.worker.js) is tested against. A format change is an
// edit here plus a fixture update; the tests of every side then fail until
// it follows. The hub's hot paths keep their hand-written encoders; these
// types are the reference they are checked against and what decoders use.
package wire

import "time"

// Message types: the "type" member of every message. The live stream
// (hub → client) uses snapshot, metrics, machine, processes, summary, alert
// and error; the edge's publish protocol (hub → edge) and browser stream
// (edge → browser) reuse snapshot, metrics and machine with their own,
// smaller shapes (internal/edge) and add remove and status.
const (
	TypeSnapshot  = "snapshot"  // first message: every machine
	TypeMetrics   = "metrics"   // one batch of a machine's values
	TypeMachine   = "machine"   // a machine's identity or state changed, or it was forgotten
	TypeProcesses = "processes" // a machine's new top-process list
	TypeSummary   = "summary"   // a machine's headline values (summary mode)
	TypeAlert     = "alert"     // an alert changed
	TypeError     = "error"     // answer to an invalid client message
	TypeRemove    = "remove"    // edge only: a machine is gone
	TypeStatus    = "status"    // edge browser stream only: the publisher (dis)connected
)

// Stream modes: the mode query parameter of GET /ws and the "mode" member
// of a summary snapshot.
const (
	ModeFull    = "full"
	ModeSummary = "summary"
)

// Header is the part every message has: enough to dispatch on.
type Header struct {
	Type string `json:"type"`
}

// Snapshot is the first message of a connection:
// {"type":"snapshot","mode"?,"machines":[…]}. In full mode every machine
// carries Metrics; in summary mode (Mode "summary") Summary instead.
type Snapshot struct {
	Type     string    `json:"type"`
	Mode     string    `json:"mode,omitempty"`
	Machines []Machine `json:"machines"`
}

// Machine is a machine object, as in snapshots, machine events and GET
// /api/machines/{id}. Every string in it came from the monitored host and is
// untrusted.
type Machine struct {
	ID        string            `json:"id"`
	Hostname  string            `json:"hostname"`
	Labels    map[string]string `json:"labels"`
	Online    bool              `json:"online"`
	Connected bool              `json:"connected"`
	// LastSeen is when the hub last heard from the machine (hub clock),
	// RFC 3339; null when never seen.
	LastSeen *time.Time `json:"last_seen"`
	// LastTs is the newest batch's time, ms since epoch (agent clock).
	LastTs int64 `json:"last_ts,omitempty"`
	Info   Info  `json:"info"`
	// Metrics is the latest value of each series, sorted by name then
	// labels: nil (left out) in machine events and summary snapshots,
	// non-nil (possibly []) in full snapshots and GET /api/machines.
	Metrics *[]Value `json:"metrics,omitempty"`
	// MetricsTruncated: Metrics holds only the series the live state keeps.
	MetricsTruncated bool `json:"metrics_truncated,omitempty"`
	// Processes is the top-process list: left out except in GET
	// /api/machines/{id}, where it is [] when there is none.
	Processes *[]Process `json:"processes,omitempty"`
	// ProcessesTs is when the agent took Processes, ms since epoch.
	ProcessesTs int64 `json:"processes_ts,omitempty"`
	// Summary is the headline values, in summary snapshots only.
	Summary *Summary `json:"summary,omitempty"`
}

// Info is what the agent told about its machine in its hello. It is also
// the machine registry's format (machines.json).
type Info struct {
	ID               string            `json:"id"`
	Hostname         string            `json:"hostname"`
	Labels           map[string]string `json:"labels"`
	OS               string            `json:"os,omitempty"`
	Platform         string            `json:"platform,omitempty"`
	KernelVersion    string            `json:"kernel_version,omitempty"`
	Arch             string            `json:"arch,omitempty"`
	CPUModel         string            `json:"cpu_model,omitempty"`
	CPUCores         uint32            `json:"cpu_cores,omitempty"`
	CPUThreads       uint32            `json:"cpu_threads,omitempty"`
	MemoryTotalBytes uint64            `json:"memory_total_bytes,omitempty"` // bytes
	BootTime         *time.Time        `json:"boot_time,omitempty"`
	AgentVersion     string            `json:"agent_version,omitempty"`
	IntervalMs       int64             `json:"interval_ms,omitempty"` // collection interval, ms
	// Source is "agent" (gRPC stream), "http" (POST /api/v1/ingest only) or
	// "remote_write" (Prometheus remote write, POST /api/v1/write, only).
	Source string `json:"source,omitempty"`
}

// Value is the value of one series: {"name","labels","value","ts"?}.
type Value struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Value is null (nil) for NaN and ±Inf, which JSON cannot carry.
	Value *float64 `json:"value"`
	// Ts is the sample's time, ms since epoch; left out in metrics events,
	// whose ts applies to every value.
	Ts int64 `json:"ts,omitempty"`
}

// Metrics is one batch of a machine:
// {"type":"metrics","machine":ID,"ts":MS,"metrics":[…]}.
type Metrics struct {
	Type    string  `json:"type"`
	Machine string  `json:"machine"`
	Ts      int64   `json:"ts"` // ms since epoch (agent clock)
	Metrics []Value `json:"metrics"`
}

// MachineEvent says a machine connected, disconnected, came online, went
// offline or (Forgotten) was forgotten: drop it then.
// {"type":"machine","machine":{…},"forgotten"?:true}.
type MachineEvent struct {
	Type      string  `json:"type"`
	Machine   Machine `json:"machine"`
	Forgotten bool    `json:"forgotten,omitempty"`
}

// Processes is a machine's new top-process list, which replaces the
// previous one: {"type":"processes","machine":ID,"ts":MS,"processes":[…]}.
type Processes struct {
	Type      string    `json:"type"`
	Machine   string    `json:"machine"`
	Ts        int64     `json:"ts"` // ms since epoch (agent clock)
	Processes []Process `json:"processes"`
}

// Process is one entry of a top-process list. Its strings are untrusted.
type Process struct {
	PID        uint32  `json:"pid"`
	Name       string  `json:"name"`
	User       string  `json:"user"`
	Command    string  `json:"command"`
	CPUPercent float64 `json:"cpu_percent"` // % of one core
	RSSBytes   uint64  `json:"rss_bytes"`   // bytes
	State      string  `json:"state"`       // kernel state letter
}

// SummaryEvent is a machine's headline values (summary mode), which replace
// the previous ones whole: {"type":"summary","machine":ID,"ts":MS,"summary":{…}}.
type SummaryEvent struct {
	Type    string  `json:"type"`
	Machine string  `json:"machine"`
	Ts      int64   `json:"ts"` // ms since epoch (agent clock)
	Summary Summary `json:"summary"`
}

// Summary is a machine's headline; a value without data is left out (nil).
type Summary struct {
	CPU            *float64 `json:"cpu,omitempty"`      // cpu_usage_percent{cpu="total"}, %
	Mem            *float64 `json:"mem,omitempty"`      // memory_usage_percent, %
	DiskMax        *float64 `json:"disk_max,omitempty"` // fullest filesystem, %
	Load1          *float64 `json:"load1,omitempty"`
	NetRx          *float64 `json:"net_rx,omitempty"` // bytes/s
	NetTx          *float64 `json:"net_tx,omitempty"` // bytes/s
	Uptime         *float64 `json:"uptime,omitempty"` // seconds
	ServicesOK     *int64   `json:"services_ok,omitempty"`
	ServicesTotal  *int64   `json:"services_total,omitempty"`
	ServicesFailed *int64   `json:"services_failed,omitempty"`
}

// AlertEvent says an alert changed: {"type":"alert","alert":{…}}.
type AlertEvent struct {
	Type  string `json:"type"`
	Alert Alert  `json:"alert"`
}

// Alert is one episode of one (rule, machine, series): from the moment its
// condition first held (pending) through firing to resolution, as the API
// and the live stream show it (docs/api.md, Alerts); internal/alert keeps
// its alerts in this type. Machine, Labels and Description are untrusted.
type Alert struct {
	ID       string            `json:"id"`
	RuleID   string            `json:"rule_id"`
	RuleName string            `json:"rule_name"`
	Kind     string            `json:"kind"`
	Machine  string            `json:"machine"`
	Metric   string            `json:"metric"`
	Labels   map[string]string `json:"labels"`
	Severity string            `json:"severity"`
	State    string            `json:"state"` // pending, firing, resolved
	// Value is the (aggregated) value at the latest state change: when the
	// alert went pending, fired, or resolved. For offline alerts, the
	// seconds without data.
	Value float64 `json:"value"`
	// LastValue is the latest value observed while the alert is active.
	LastValue   *float64   `json:"last_value,omitempty"`
	Threshold   float64    `json:"threshold"`
	Clear       *float64   `json:"clear,omitempty"`
	Op          string     `json:"op"`
	Description string     `json:"description"`
	StartedAt   time.Time  `json:"started_at"` // when it went pending
	FiredAt     *time.Time `json:"fired_at"`
	ResolvedAt  *time.Time `json:"resolved_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	// ResolvedReason says why a resolved alert resolved when it was not
	// its value: "stale" (no samples), "rule changed", "rule deleted",
	// "machine forgotten".
	ResolvedReason string `json:"resolved_reason,omitempty"`
	Acknowledged   bool   `json:"acknowledged"`
	Ack            *Ack   `json:"ack"`
	Silenced       bool   `json:"silenced"`
	// SilencedBy is the id of the silence that matches it.
	SilencedBy *string `json:"silenced_by"`
}

// Ack is who acknowledged an alert, when, and why.
type Ack struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment"`
}

// Error answers an invalid client message: {"type":"error","error":"…"}.
type Error struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

// Subscribe is the one client → hub message: {"subscribe":[ids]} limits
// metrics and processes events to those machines; [] or null restores all
// (in summary mode: none).
type Subscribe struct {
	Subscribe []string `json:"subscribe"`
}
