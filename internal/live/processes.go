package live

import "github.com/sysmonstm/sysmonstm/internal/wire"

// EventProcesses is the event type of a machine's new top-process list.
const EventProcesses = wire.TypeProcesses

// MaxProcesses bounds one machine's top-process list.
const MaxProcesses = 100

// Process is one entry of a machine's top-process list: a live snapshot,
// never stored as series. Every string came from the agent and is untrusted.
type Process struct {
	PID        uint32
	Name       string
	User       string
	Command    string
	CPUPercent float64 // % of one core
	RSSBytes   uint64
	State      string // kernel state letter
}

// MarshalJSON encodes {"pid","name","user","command","cpu_percent",
// "rss_bytes","state"} with the escaping of encoding/json.
func (p Process) MarshalJSON() ([]byte, error) {
	return appendProcess(make([]byte, 0, 128+len(p.Command)), &p), nil
}

func appendProcess(b []byte, p *Process) []byte {
	b = append(b, `{"pid":`...)
	b = appendInt(b, int64(p.PID))
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, p.User)
	b = append(b, `,"command":`...)
	b = appendJSONString(b, p.Command)
	b = append(b, `,"cpu_percent":`...)
	b = appendJSONFloat(b, p.CPUPercent)
	b = append(b, `,"rss_bytes":`...)
	b = appendUint(b, p.RSSBytes)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, p.State)
	return append(b, '}')
}

// SetProcesses replaces the top-process list of a known machine with the
// one taken at ts (ms since epoch, agent clock) unless the stored one is
// newer, and publishes a processes event
// {"type":"processes","machine":ID,"ts":MS,"processes":[…]}. The State keeps
// procs; the caller must not modify it afterwards. Lists of unknown machines
// are ignored; a machine's list is dropped when it goes offline.
func (s *State) SetProcesses(id string, ts int64, procs []Process) {
	m := s.get(id, false)
	if m == nil {
		return
	}
	if len(procs) > MaxProcesses {
		procs = procs[:MaxProcesses]
	}
	if procs == nil {
		procs = []Process{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ts < m.procsTs {
		return
	}
	m.procs, m.procsTs = procs, ts
	if s.subs.wantMetrics(m.id) {
		s.Publish(Event{Type: EventProcesses, Machine: m.id, JSON: encodeProcesses(m.idJSON, ts, procs)})
	}
}

// encodeProcesses builds {"type":"processes","machine":ID,"ts":MS,"processes":[…]}.
func encodeProcesses(idJSON []byte, ts int64, procs []Process) []byte {
	size := 64 + len(idJSON)
	for i := range procs {
		size += 128 + len(procs[i].Command)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"type":"processes","machine":`...)
	b = append(b, idJSON...)
	b = append(b, `,"ts":`...)
	b = appendInt(b, ts)
	b = append(b, `,"processes":[`...)
	for i := range procs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProcess(b, &procs[i])
	}
	return append(b, "]}"...)
}
