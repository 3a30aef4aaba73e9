package live

import (
	"math"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/wire"
)

// EventSummary is the event type of a machine's headline values. Only
// summary subscribers (SubscribeSummary) receive it.
const EventSummary = wire.TypeSummary

// SummaryEvery is the least time between two summary events of one machine:
// a machine that sends faster has its newer values held back and sent once
// the time has passed.
const SummaryEvery = time.Second

// Summary is the headline of one machine, what a fleet overview shows. Every
// float is NaN when the machine has not reported it.
type Summary struct {
	CPU     float64 // cpu_usage_percent{cpu="total"}, %
	Mem     float64 // memory_usage_percent, %
	DiskMax float64 // fullest filesystem_usage_percent of the newest batch with filesystems, %
	Load1   float64 // load1
	Uptime  float64 // uptime_seconds
	// NetRx and NetTx are network_{receive,transmit}_bytes_per_second of
	// the newest batch with interfaces, summed over every interface but
	// loopback (lo) and veth pairs, bytes/s.
	NetRx, NetTx float64
	// ServicesTotal counts the units of systemd_unit_active in the newest
	// batch that had any, ServicesOK those active (value > 0); both -1 when
	// the machine reports no services.
	ServicesOK, ServicesTotal int
	// ServicesFailed counts the units with systemd_unit_failed = 1 in the
	// newest batch that had any; -1 when the machine reports none.
	ServicesFailed int
}

// MachineSummary is a machine's identity and status (Machine without
// metrics or processes) with its headline values: one entry of the summary
// snapshot.
type MachineSummary struct {
	Machine Machine
	Summary Summary
}

// MarshalJSON encodes the machine object of Machine.MarshalJSON with a
// "summary" member: {"id",…,"info":{…},"summary":{"cpu",…}}.
func (ms MachineSummary) MarshalJSON() ([]byte, error) {
	ms.Machine.Metrics, ms.Machine.Processes = nil, nil
	b, err := ms.Machine.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"summary":`...)
	b = appendSummary(b, &ms.Summary)
	return append(b, '}'), nil
}

// Series roles: what a series contributes to the summary. A role is worked
// out once, when a machine first reports the series.
const (
	roleNone uint8 = iota
	roleCPU
	roleMem
	roleLoad1
	roleUptime
	roleDisk
	roleRx
	roleTx
	roleSvcActive
	roleSvcFailed
)

// Groups of series whose values are summed or compared over the newest
// batch that reported any of them: a filesystem, interface or unit missing
// from that batch (unmounted, removed) no longer counts.
const (
	groupNone = iota
	groupDisk
	groupNet
	groupSvcActive
	groupSvcFailed
	numGroups
)

var roleGroup = [roleSvcFailed + 1]uint8{
	roleDisk: groupDisk, roleRx: groupNet, roleTx: groupNet,
	roleSvcActive: groupSvcActive, roleSvcFailed: groupSvcFailed,
}

// seriesRole classifies a series for the summary.
func seriesRole(sr *Series) uint8 {
	switch sr.Name {
	case "cpu_usage_percent":
		if sr.Labels.Get("cpu") == "total" {
			return roleCPU
		}
	case "memory_usage_percent":
		return roleMem
	case "load1":
		return roleLoad1
	case "uptime_seconds":
		return roleUptime
	case "filesystem_usage_percent":
		return roleDisk
	case "network_receive_bytes_per_second", "network_transmit_bytes_per_second":
		// The agent leaves loopback and veth pairs out already
		// (collect/network.go); other sources may not.
		if nic := sr.Labels.Get("interface"); nic == "lo" || strings.HasPrefix(nic, "veth") {
			return roleNone
		}
		if sr.Name == "network_receive_bytes_per_second" {
			return roleRx
		}
		return roleTx
	case "systemd_unit_active":
		return roleSvcActive
	case "systemd_unit_failed":
		return roleSvcFailed
	}
	return roleNone
}

// summaryState is a machine's bookkeeping for the summary events. It lives
// in machine and is protected by machine.mu.
type summaryState struct {
	sentAt  time.Time // hub clock of the last summary event
	pending bool      // a held-back summary event is scheduled on timer
	timer   *time.Timer
}

// summary works the headline out of m's latest values: the single-valued
// series as they are, the groups (filesystems, interfaces, units) over the
// series updated by the newest batch that had any of the group. Update does
// no bookkeeping for it beyond the role of a new series, so ingest pays
// nothing unless a summary is asked for. Caller holds m.mu.
func (m *machine) summary() Summary {
	var newest [numGroups]int64
	for i := range m.values {
		if e := &m.values[i]; e.role != roleNone {
			if g := roleGroup[e.role]; e.ts > newest[g] {
				newest[g] = e.ts
			}
		}
	}
	nan := math.NaN()
	s := Summary{CPU: nan, Mem: nan, DiskMax: nan, Load1: nan, Uptime: nan, NetRx: nan, NetTx: nan,
		ServicesOK: -1, ServicesTotal: -1, ServicesFailed: -1}
	for i := range m.values {
		e := &m.values[i]
		if e.role == roleNone {
			continue
		}
		if g := roleGroup[e.role]; g != groupNone && e.ts != newest[g] {
			continue // not in the newest batch of its group: gone
		}
		v := e.value
		switch e.role {
		case roleCPU:
			s.CPU = v
		case roleMem:
			s.Mem = v
		case roleLoad1:
			s.Load1 = v
		case roleUptime:
			s.Uptime = v
		case roleDisk:
			if !math.IsNaN(v) && (math.IsNaN(s.DiskMax) || v > s.DiskMax) {
				s.DiskMax = v
			}
		case roleRx:
			s.NetRx = addKnown(s.NetRx, v)
		case roleTx:
			s.NetTx = addKnown(s.NetTx, v)
		case roleSvcActive:
			if s.ServicesTotal < 0 {
				s.ServicesOK, s.ServicesTotal = 0, 0
			}
			s.ServicesTotal++
			if v > 0 {
				s.ServicesOK++
			}
		case roleSvcFailed:
			s.ServicesFailed = max(s.ServicesFailed, 0)
			if v > 0 {
				s.ServicesFailed++
			}
		}
	}
	return s
}

// addKnown adds v to sum, ignoring NaN; a NaN sum is "nothing yet".
func addKnown(sum, v float64) float64 {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return sum
	case math.IsNaN(sum):
		return v
	}
	return sum + v
}

// appendSummary appends s as a JSON object; unknown values are left out.
func appendSummary(b []byte, s *Summary) []byte {
	b = append(b, '{')
	n := len(b)
	b = appendSummaryFloat(b, n, "cpu", s.CPU)
	b = appendSummaryFloat(b, n, "mem", s.Mem)
	b = appendSummaryFloat(b, n, "disk_max", s.DiskMax)
	b = appendSummaryFloat(b, n, "load1", s.Load1)
	b = appendSummaryFloat(b, n, "net_rx", s.NetRx)
	b = appendSummaryFloat(b, n, "net_tx", s.NetTx)
	b = appendSummaryFloat(b, n, "uptime", s.Uptime)
	if s.ServicesTotal >= 0 {
		b = appendSummaryFloat(b, n, "services_ok", float64(s.ServicesOK))
		b = appendSummaryFloat(b, n, "services_total", float64(s.ServicesTotal))
	}
	if s.ServicesFailed >= 0 {
		b = appendSummaryFloat(b, n, "services_failed", float64(s.ServicesFailed))
	}
	return append(b, '}')
}

// appendSummaryFloat appends "name":v, with a comma unless it is the first
// member (the object's members start at b[start]); NaN and ±Inf are left out.
func appendSummaryFloat(b []byte, start int, name string, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b
	}
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendJSONFloat(b, v)
}

// encodeSummary builds {"type":"summary","machine":ID,"ts":MS,"summary":{…}}.
func encodeSummary(idJSON []byte, ts int64, s *Summary) []byte {
	b := make([]byte, 0, 200+len(idJSON))
	b = append(b, `{"type":"summary","machine":`...)
	b = append(b, idJSON...)
	b = append(b, `,"ts":`...)
	b = appendInt(b, ts)
	b = append(b, `,"summary":`...)
	b = appendSummary(b, s)
	return append(b, '}')
}

// publishSummary sends m's summary to the summary subscribers, at most once
// per SummaryEvery: sooner than that, the event is held back and sent when
// the time has passed, with the values as they are then. Caller holds m.mu.
func (s *State) publishSummary(m *machine) {
	if m.sum.pending {
		return // the held-back event will carry these values
	}
	now := s.now()
	if wait := s.summaryEvery - now.Sub(m.sum.sentAt); wait > 0 && !m.sum.sentAt.IsZero() {
		m.sum.pending = true
		if m.sum.timer == nil {
			m.sum.timer = time.AfterFunc(wait, func() { s.flushSummary(m) })
		} else {
			m.sum.timer.Reset(wait)
		}
		return
	}
	s.sendSummary(m, now)
}

// flushSummary sends a held-back summary event.
func (s *State) flushSummary(m *machine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.sum.pending {
		return
	}
	m.sum.pending = false
	if s.subs.summaries() {
		s.sendSummary(m, s.now())
	}
}

// sendSummary encodes and publishes m's summary now. Caller holds m.mu.
func (s *State) sendSummary(m *machine, now time.Time) {
	m.sum.sentAt = now
	sum := m.summary()
	s.Publish(Event{Type: EventSummary, Machine: m.id, JSON: encodeSummary(m.idJSON, m.lastTs, &sum)})
}

// Summary returns one machine's headline values.
func (s *State) Summary(id string) (Summary, bool) {
	m := s.get(id, false)
	if m == nil {
		return Summary{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.summary(), true
}

// Summaries returns every machine, sorted by id, with its identity, status
// and headline values but without its latest values or process list: the
// compact snapshot of a fleet overview.
func (s *State) Summaries() []MachineSummary {
	ms := s.list()
	out := make([]MachineSummary, len(ms))
	for i, m := range ms {
		m.mu.Lock()
		out[i] = MachineSummary{Machine: m.snapshot(false, false), Summary: m.summary()}
		m.mu.Unlock()
	}
	return out
}

// SubscribeSummary starts a summary subscription: like Subscribe, but
// instead of every machine's metrics it receives one summary event per
// machine at most every SummaryEvery, machine events and other published
// events (alerts) as usual, and metrics and processes events only of the
// machines named with SetMachines (none until then; an empty list means
// none again). The caller must Close it.
//
// Subscribe first, then read Summaries: events that race with the snapshot
// are delivered, never lost.
func (s *State) SubscribeSummary(queue int) *Subscription {
	return s.subscribe(queue, true)
}
