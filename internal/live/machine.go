package live

import (
	"encoding/json"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/wire"
)

// MachineInfo is what an agent tells about its machine in its hello. Every
// string in it came from the agent and is untrusted.
type MachineInfo struct {
	ID               string
	Hostname         string
	Labels           metric.Labels // the agent's --labels, sorted
	OS               string
	Platform         string
	KernelVersion    string
	Arch             string
	CPUModel         string
	CPUCores         uint32
	CPUThreads       uint32
	MemoryTotalBytes uint64
	BootTime         time.Time
	AgentVersion     string
	IntervalMs       int64 // collection interval, ms
	// Source is how the machine reports: SourceAgent (a hello on the gRPC
	// stream), SourceHTTP (only POST /api/v1/ingest) or SourceRemoteWrite
	// (only Prometheus remote write, POST /api/v1/write); "" when unknown
	// (registries written before the field existed).
	Source string
}

// MachineInfo.Source values.
const (
	SourceAgent       = "agent"
	SourceHTTP        = "http"
	SourceRemoteWrite = "remote_write"
)

// Pushed reports whether a machine of this source only pushes samples when
// it has some (HTTP ingest, remote write): it has no connection whose end
// means it is down, so offline rules for every machine skip it.
func Pushed(source string) bool { return source == SourceHTTP || source == SourceRemoteWrite }

// MarshalJSON encodes the info as wire.Info: snake_case keys, labels as an
// object.
func (in MachineInfo) MarshalJSON() ([]byte, error) {
	j := wire.Info{
		ID: in.ID, Hostname: in.Hostname, Labels: in.Labels.Map(),
		OS: in.OS, Platform: in.Platform, KernelVersion: in.KernelVersion,
		Arch: in.Arch, CPUModel: in.CPUModel, CPUCores: in.CPUCores,
		CPUThreads: in.CPUThreads, MemoryTotalBytes: in.MemoryTotalBytes,
		AgentVersion: in.AgentVersion, IntervalMs: in.IntervalMs, Source: in.Source,
	}
	if !in.BootTime.IsZero() {
		bt := in.BootTime.UTC()
		j.BootTime = &bt
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (in *MachineInfo) UnmarshalJSON(b []byte) error {
	var j wire.Info
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*in = MachineInfo{
		ID: j.ID, Hostname: j.Hostname, OS: j.OS, Platform: j.Platform,
		KernelVersion: j.KernelVersion, Arch: j.Arch, CPUModel: j.CPUModel,
		CPUCores: j.CPUCores, CPUThreads: j.CPUThreads,
		MemoryTotalBytes: j.MemoryTotalBytes, AgentVersion: j.AgentVersion,
		IntervalMs: j.IntervalMs, Source: j.Source,
	}
	if len(j.Labels) > 0 {
		in.Labels = metric.FromMap(j.Labels)
	}
	if j.BootTime != nil {
		in.BootTime = *j.BootTime
	}
	return nil
}

// Machine is a copy of one machine's live state.
type Machine struct {
	Info      MachineInfo
	Online    bool      // data arrived within the offline timeout
	Connected bool      // an agent stream is open right now
	LastSeen  time.Time // when the hub last heard from the machine (hub clock)
	LastTs    int64     // ms since epoch of the newest batch (agent clock)
	// Metrics holds the latest value of every series, sorted by name then
	// labels. Nil when the caller asked for no metrics; JSON omits it then.
	Metrics []Value
	// MetricsTruncated is set when the machine has more series than the
	// live state keeps (Options.MaxSeriesPerMachine): Metrics holds the
	// first ones only; all are stored.
	MetricsTruncated bool
	// Processes is the latest top-process list (State.Machine only; nil from
	// State.Machines, and JSON omits it then). ProcessesTs is when the agent
	// took it, ms since epoch; 0 when there is none.
	Processes   []Process
	ProcessesTs int64
}

// Value is the latest value of one series.
type Value struct {
	Name   string
	Labels metric.Labels
	Value  float64
	Ts     int64 // ms since epoch of the sample
}

// MarshalJSON encodes {"name","labels":{…},"value","ts"}; NaN and ±Inf
// become null.
func (v Value) MarshalJSON() ([]byte, error) {
	b := appendValuePrefix(make([]byte, 0, 64), v.Name, v.Labels)
	b = appendJSONFloat(b, v.Value)
	b = append(b, `,"ts":`...)
	b = appendInt(b, v.Ts)
	return append(b, '}'), nil
}

// machineJSON is wire.Machine with Metrics encoded by Value's fast
// MarshalJSON; the wire fixtures test the two against each other.
type machineJSON struct {
	ID        string            `json:"id"`
	Hostname  string            `json:"hostname"`
	Labels    map[string]string `json:"labels"`
	Online    bool              `json:"online"`
	Connected bool              `json:"connected"`
	LastSeen  *time.Time        `json:"last_seen"`
	LastTs    int64             `json:"last_ts,omitempty"`
	Info      MachineInfo       `json:"info"`
	Metrics   []Value           `json:"metrics,omitempty"`
	// MetricsTruncated: "metrics" holds only the first series the live
	// state keeps per machine.
	MetricsTruncated bool `json:"metrics_truncated,omitempty"`
	// Processes is a pointer so that an empty list encodes as [] while a
	// nil one is left out.
	Processes   *[]Process `json:"processes,omitempty"`
	ProcessesTs int64      `json:"processes_ts,omitempty"`
}

// MarshalJSON encodes {"id","hostname","labels","online","connected",
// "last_seen" (RFC 3339, null when never seen),"last_ts","info":{…}} plus
// "metrics" when m.Metrics is not nil and "processes" (and "processes_ts")
// when m.Processes is not nil.
func (m Machine) MarshalJSON() ([]byte, error) {
	j := machineJSON{
		ID: m.Info.ID, Hostname: m.Info.Hostname, Labels: m.Info.Labels.Map(),
		Online: m.Online, Connected: m.Connected, LastTs: m.LastTs, Info: m.Info,
		Metrics: m.Metrics, MetricsTruncated: m.MetricsTruncated, ProcessesTs: m.ProcessesTs,
	}
	if m.Processes != nil {
		j.Processes = &m.Processes
	}
	if !m.LastSeen.IsZero() {
		ls := m.LastSeen.UTC()
		j.LastSeen = &ls
	}
	if m.Metrics != nil && len(m.Metrics) == 0 {
		// omitempty would drop an empty slice; keep "metrics":[] instead.
		type withEmpty struct {
			machineJSON
			Metrics []Value `json:"metrics"`
		}
		return json.Marshal(withEmpty{machineJSON: j, Metrics: []Value{}})
	}
	return json.Marshal(j)
}
