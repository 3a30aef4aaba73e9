package tui

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fleet is the live state the dashboard shows: every machine, the alerts and
// the state of the connection. A source (the hub client or the local
// collector) writes it; the model reads it when it sorts and renders.
type Fleet struct {
	mu       sync.RWMutex // guards every field below and every *Machine and *Alert reachable from them
	byID     map[string]*Machine
	machines []*Machine // in arrival order
	alerts   []*Alert   // newest first
	alertsOK AlertsState
	alertMsg string // why alerts are unavailable
	conn     ConnState
	version  uint64 // bumped on every change
	// summary is set when the hub streams summaries (its snapshot said
	// "mode":"summary"): full metrics then come only for the focus.
	summary bool
	focus   string // id (as sent) of the machine in the detail view; "" on the overview

	changed      chan struct{} // capacity 1: a pending "something changed"
	urgent       chan struct{} // capacity 1: a pending change to show at once
	focusChanged chan struct{} // capacity 1: a pending "the focus changed"
	now          func() time.Time
}

// AlertsState says whether the source has alert data.
type AlertsState int

// Alert availability.
const (
	AlertsUnknown     AlertsState = iota // not asked yet
	AlertsUnavailable                    // the hub has no alert engine (404) or this is --local
	AlertsAvailable
)

// ConnState describes the link to the data source.
type ConnState struct {
	Connected bool
	Err       string    // the last error, sanitised
	RetryAt   time.Time // when the next attempt starts, while disconnected
}

// NewFleet returns an empty fleet.
func NewFleet() *Fleet {
	return &Fleet{byID: map[string]*Machine{}, changed: make(chan struct{}, 1), urgent: make(chan struct{}, 1), focusChanged: make(chan struct{}, 1), now: time.Now}
}

// SetFocus names the machine whose detail the dashboard shows ("" for
// none): a source that streams summaries asks the hub for that machine's
// full metrics only.
func (f *Fleet) SetFocus(id string) {
	f.mu.Lock()
	changed := f.focus != id
	f.focus = id
	f.mu.Unlock()
	if changed {
		select {
		case f.focusChanged <- struct{}{}:
		default:
		}
	}
}

// Focus returns the machine in the detail view, "" for none.
func (f *Fleet) Focus() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.focus
}

// FocusChanged is signalled (coalesced) when SetFocus changes the focus.
func (f *Fleet) FocusChanged() <-chan struct{} { return f.focusChanged }

// SummaryMode reports whether the last snapshot was a summary snapshot.
func (f *Fleet) SummaryMode() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.summary
}

// Changed is signalled (coalesced) whenever the fleet changes.
func (f *Fleet) Changed() <-chan struct{} { return f.changed }

// Urgent is signalled (coalesced) by changes worth a frame at once rather
// than at the next data refresh: a snapshot, the connection state, a
// machine's details fetched for the detail view.
func (f *Fleet) Urgent() <-chan struct{} { return f.urgent }

// touchUrgent records a change to show at once. Caller holds f.mu.
func (f *Fleet) touchUrgent() {
	f.touch()
	select {
	case f.urgent <- struct{}{}:
	default:
	}
}

// touch records a change. Caller holds f.mu.
func (f *Fleet) touch() {
	f.version++
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// SetConn records the connection state.
func (f *Fleet) SetConn(c ConnState) {
	f.mu.Lock()
	c.Err = Clean(c.Err)
	changed := c.Connected != f.conn.Connected || c.Err != f.conn.Err
	f.conn = c
	if changed {
		f.touchUrgent()
	} else {
		f.touch()
	}
	f.mu.Unlock()
}

// Conn returns the connection state.
func (f *Fleet) Conn() ConnState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.conn
}

// SetAlertsUnavailable records that the source has no alert data and why.
func (f *Fleet) SetAlertsUnavailable(why string) {
	f.mu.Lock()
	f.alertsOK, f.alertMsg = AlertsUnavailable, Clean(why)
	f.alerts = nil
	f.recountAlerts()
	f.touch()
	f.mu.Unlock()
}

// SetAlerts replaces the alert list.
func (f *Fleet) SetAlerts(as []Alert) {
	f.mu.Lock()
	f.alertsOK, f.alertMsg = AlertsAvailable, ""
	f.alerts = f.alerts[:0]
	for i := range as {
		a := as[i].clean()
		if a.State != "inactive" {
			f.alerts = append(f.alerts, &a)
		}
	}
	f.sortAlerts()
	f.recountAlerts()
	f.touch()
	f.mu.Unlock()
}

// UpsertAlert adds or updates one alert (a WebSocket alert event). An
// alert in state "inactive" (pending, then its condition broke before it
// fired) is gone: it is removed.
func (f *Fleet) UpsertAlert(a Alert) {
	a = a.clean()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alertsOK = AlertsAvailable
	for i, old := range f.alerts {
		if old.ID == a.ID {
			if a.State == "inactive" {
				f.alerts = append(f.alerts[:i], f.alerts[i+1:]...)
			} else {
				*old = a
			}
			f.sortAlerts()
			f.recountAlerts()
			f.touch()
			return
		}
	}
	if a.State == "inactive" {
		return
	}
	f.alerts = append(f.alerts, &a)
	if len(f.alerts) > 500 { // recent alerts only
		f.sortAlerts()
		f.alerts = f.alerts[:500]
	}
	f.sortAlerts()
	f.recountAlerts()
	f.touch()
}

// sortAlerts orders firing first, then pending, then the rest, newest first
// within each. Caller holds f.mu.
func (f *Fleet) sortAlerts() {
	rank := func(s string) int {
		switch s {
		case "firing":
			return 0
		case "pending":
			return 1
		}
		return 2
	}
	sort.SliceStable(f.alerts, func(i, j int) bool {
		a, b := f.alerts[i], f.alerts[j]
		if ra, rb := rank(a.State), rank(b.State); ra != rb {
			return ra < rb
		}
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.After(b.StartedAt)
		}
		return a.ID < b.ID
	})
}

// recountAlerts sets each machine's firing-alert count. Caller holds f.mu.
func (f *Fleet) recountAlerts() {
	for _, m := range f.machines {
		m.FiringAlerts = 0
		if f.alertsOK != AlertsAvailable {
			m.FiringAlerts = -1
		}
	}
	for _, a := range f.alerts {
		if a.State != "firing" {
			continue
		}
		if m := f.byID[a.Machine]; m != nil {
			m.FiringAlerts++
		}
	}
}

// machine returns the machine with id, creating it. Caller holds f.mu.
func (f *Fleet) machine(id string) *Machine {
	if m := f.byID[id]; m != nil {
		return m
	}
	m := newMachine(id)
	if f.alertsOK != AlertsAvailable {
		m.FiringAlerts = -1
	}
	f.byID[m.key] = m
	f.machines = append(f.machines, m)
	return m
}

// remove drops the machine with id (the hub forgot it), if known. Caller
// holds f.mu.
func (f *Fleet) remove(id string) {
	m := f.byID[id]
	if m == nil {
		return
	}
	delete(f.byID, id)
	f.machines = slices.DeleteFunc(f.machines, func(x *Machine) bool { return x == m })
}

// reset forgets every machine (a fresh snapshot follows). Caller holds f.mu.
func (f *Fleet) reset() {
	clear(f.byID)
	f.machines = f.machines[:0]
}

// Lookup returns the machine with id; the caller must hold the read lock
// (see Read) while it uses the result.
func (f *Fleet) Lookup(id string) *Machine { return f.byID[id] }

// Read runs fn with the read lock held; fn sees a consistent fleet.
func (f *Fleet) Read(fn func(v FleetView)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(FleetView{f})
}

// Update runs fn with the write lock held and records a change.
func (f *Fleet) Update(fn func(w FleetWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(FleetWriter{f})
	f.touch()
}

// FleetView is read access to a locked fleet.
type FleetView struct{ f *Fleet }

// Machines returns every machine in arrival order (do not modify).
func (v FleetView) Machines() []*Machine { return v.f.machines }

// Machine returns the machine with id, or nil.
func (v FleetView) Machine(id string) *Machine { return v.f.byID[id] }

// Alerts returns the alerts, firing first (do not modify).
func (v FleetView) Alerts() []*Alert { return v.f.alerts }

// AlertsState returns whether alerts are available, and why not.
func (v FleetView) AlertsState() (AlertsState, string) { return v.f.alertsOK, v.f.alertMsg }

// Conn returns the connection state.
func (v FleetView) Conn() ConnState { return v.f.conn }

// Version changes whenever the fleet does.
func (v FleetView) Version() uint64 { return v.f.version }

// FleetWriter is write access to a locked fleet (sources and tests).
type FleetWriter struct{ f *Fleet }

// Machine returns the machine with id, creating it.
func (w FleetWriter) Machine(id string) *Machine { return w.f.machine(id) }

// Alert is one alert as the hub reports it (GET /api/alerts, WebSocket).
type Alert struct {
	ID     string `json:"id"`
	RuleID string `json:"rule_id"`
	Rule   string `json:"rule"`      // rule name (older field name)
	Name   string `json:"rule_name"` // rule name, as the alert engine sends it
	// Machine is the alert's machine id.
	Machine      string    `json:"machine"`
	State        string    `json:"state"` // pending, firing, resolved
	Severity     string    `json:"severity"`
	Value        float64   `json:"value"`
	StartedAt    time.Time `json:"started_at"`
	Acknowledged bool      `json:"acknowledged"`
}

func (a Alert) clean() Alert {
	if a.Rule == "" {
		a.Rule = a.Name
	}
	a.Name = ""
	a.ID, a.RuleID, a.Rule = Clean(a.ID), Clean(a.RuleID), Clean(a.Rule)
	a.Machine, a.State, a.Severity = Clean(a.Machine), Clean(a.State), Clean(a.Severity)
	return a
}

// histLen is the number of samples kept for each sparkline.
const histLen = 60

// Machine is the dashboard's state of one machine: the latest core values,
// short histories for sparklines and the host description. Strings are
// sanitised (Clean) when stored. Unknown numbers are NaN.
type Machine struct {
	key          string // id as sent (lookup key)
	ID, Hostname string
	Labels       string // "k=v k2=v2", sorted
	Online       bool
	Connected    bool
	Known        bool // status came from the source (machine object)
	LastSeen     time.Time
	Info         Info

	CPU                  float64   // % busy of all CPUs
	Cores                []float64 // % busy per logical CPU
	Load1, Load5, Load15 float64
	MemPct               float64 // %
	MemUsed, MemTotal    float64 // bytes
	SwapUsed, SwapTotal  float64 // bytes
	Procs                float64 // processes
	Uptime               float64 // seconds
	FS                   []Filesystem
	Disks                []IOPair // read, write bytes/s per device
	NICs                 []IOPair // receive, transmit bytes/s per interface
	Extras               []Extra  // deep collectors: services, SMART, temperatures
	Processes            []Process
	FiringAlerts         int // -1: no alert data

	// The hub's summary (summary mode): the overview's aggregates of
	// series the dashboard does not receive for every machine. summarised
	// is set once a summary arrived; the aggregates then come from it.
	summarised           bool
	sumDisk, sumRx       float64
	sumTx                float64
	sumSvcOK, sumSvcTotl int // sumSvcTotl -1: no services

	cpuHist, memHist ring8
	rxHist, txHist   ringF
	coreHist         []ring8
	batches          int
}

// Info is the host description from the agent's hello.
type Info struct {
	OS           string            `json:"os"`
	Platform     string            `json:"platform"`
	Kernel       string            `json:"kernel_version"`
	Arch         string            `json:"arch"`
	CPUModel     string            `json:"cpu_model"`
	CPUCores     uint32            `json:"cpu_cores"`
	CPUThreads   uint32            `json:"cpu_threads"`
	MemoryTotal  uint64            `json:"memory_total_bytes"`
	BootTime     time.Time         `json:"boot_time"`
	AgentVersion string            `json:"agent_version"`
	IntervalMs   int64             `json:"interval_ms"`
	RawLabels    map[string]string `json:"labels"`
	RawHostname  string            `json:"hostname"`
}

func (i Info) clean() Info {
	i.OS, i.Platform, i.Kernel, i.Arch = Clean(i.OS), Clean(i.Platform), Clean(i.Kernel), Clean(i.Arch)
	i.CPUModel, i.AgentVersion = Clean(i.CPUModel), Clean(i.AgentVersion)
	i.RawLabels, i.RawHostname = nil, ""
	return i
}

// Filesystem is one mounted filesystem.
type Filesystem struct {
	key                   string // mountpoint as sent
	Mount, Device, FSType string
	Size, Used, Pct       float64 // bytes, bytes, %
}

// IOPair is a pair of rates of one device or interface, bytes/s.
type IOPair struct {
	key  string // name as sent
	Name string
	A, B float64
}

// Extra is one value of a deep collector.
type Extra struct {
	key    string // name as sent
	Kind   string // "service", "smart", "temperature"
	Metric string
	Name   string // the unit, device or sensor
	Value  float64
}

// Process is one entry of a machine's top-process list (hub REST API).
type Process struct {
	PID     int     `json:"pid"`
	Name    string  `json:"name"`
	User    string  `json:"user"`
	CPU     float64 `json:"cpu_percent"`
	Mem     float64 `json:"rss_bytes"`
	Command string  `json:"command"`
}

func newMachine(id string) *Machine {
	nan := math.NaN()
	return &Machine{
		key: id, ID: Clean(id), Hostname: "",
		CPU: nan, Load1: nan, Load5: nan, Load15: nan, MemPct: nan, MemUsed: nan, MemTotal: nan,
		SwapUsed: nan, SwapTotal: nan, Procs: nan, Uptime: nan,
	}
}

// SetMeta records the machine's identity and status.
func (m *Machine) SetMeta(hostname string, labels map[string]string, online, connected bool, lastSeen time.Time) {
	m.Hostname = Clean(hostname)
	m.Labels = joinLabels(labels)
	m.Online, m.Connected, m.Known, m.LastSeen = online, connected, true, lastSeen
}

func joinLabels(ls map[string]string) string {
	if len(ls) == 0 {
		return ""
	}
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Clean(k))
		b.WriteByte('=')
		b.WriteString(Clean(ls[k]))
	}
	return b.String()
}

// DiskPct is the usage of the fullest filesystem, or NaN.
func (m *Machine) DiskPct() float64 {
	if m.summarised {
		return m.sumDisk
	}
	v := math.NaN()
	for i := range m.FS {
		if p := m.FS[i].Pct; math.IsNaN(v) || p > v {
			v = p
		}
	}
	return v
}

// NetRx and NetTx are the summed rates of every interface but loopback,
// bytes/s, or NaN.
func (m *Machine) NetRx() float64 {
	if m.summarised {
		return m.sumRx
	}
	return sumIO(m.NICs, true)
}

// NetTx: see NetRx.
func (m *Machine) NetTx() float64 {
	if m.summarised {
		return m.sumTx
	}
	return sumIO(m.NICs, false)
}

func sumIO(ps []IOPair, a bool) float64 {
	if len(ps) == 0 {
		return math.NaN()
	}
	var s float64
	for _, p := range ps {
		if p.key == "lo" {
			continue
		}
		if a {
			s += p.A
		} else {
			s += p.B
		}
	}
	return s
}

// Services returns ok and total service counts; total is 0 without data.
func (m *Machine) Services() (ok, total int) {
	if m.summarised {
		return max(m.sumSvcOK, 0), max(m.sumSvcTotl, 0)
	}
	return m.extraServices()
}

// extraServices counts the services among the deep-collector values.
func (m *Machine) extraServices() (ok, total int) {
	for _, e := range m.Extras {
		if e.Kind == "service" {
			total++
			if e.Value > 0 {
				ok++
			}
		}
	}
	return ok, total
}

// CPUHist returns the CPU history, oldest first, % (quantised to 0.5).
func (m *Machine) CPUHist() []float64 { return m.cpuHist.values() }

// MemHist returns the memory-usage history, %.
func (m *Machine) MemHist() []float64 { return m.memHist.values() }

// RxHist and TxHist return the network histories, bytes/s.
func (m *Machine) RxHist() []float64 { return m.rxHist.values() }

// TxHist: see RxHist.
func (m *Machine) TxHist() []float64 { return m.txHist.values() }

// CoreHist returns core i's history, %.
func (m *Machine) CoreHist(i int) []float64 {
	if i >= len(m.coreHist) {
		return nil
	}
	return m.coreHist[i].values()
}

// EndBatch closes one batch of values: the histories advance. Once the
// machine gets summaries, those advance the CPU, memory and network
// histories (endSummary) and a batch only the per-core ones.
func (m *Machine) EndBatch() {
	m.batches++
	if !m.summarised {
		m.pushHeadline()
	}
	m.pushCores()
}

// pushHeadline advances the CPU, memory and network histories.
func (m *Machine) pushHeadline() {
	m.cpuHist.push(m.CPU)
	m.memHist.push(m.MemPct)
	m.rxHist.push(m.NetRx())
	m.txHist.push(m.NetTx())
}

// pushCores advances the per-core histories.
func (m *Machine) pushCores() {
	for len(m.coreHist) < len(m.Cores) {
		m.coreHist = append(m.coreHist, ring8{})
	}
	for i, v := range m.Cores {
		m.coreHist[i].push(v)
	}
}

// ring8 is a fixed ring of percentages quantised to half a percent
// (0..200 in a byte; 255 = unknown).
type ring8 struct {
	v    [histLen]uint8
	n, i uint8
}

func (r *ring8) push(p float64) {
	q := uint8(255)
	if !math.IsNaN(p) {
		q = uint8(math.Round(min(max(p, 0), 100) * 2))
	}
	r.v[r.i] = q
	r.i = (r.i + 1) % histLen
	if r.n < histLen {
		r.n++
	}
}

func (r *ring8) values() []float64 {
	out := make([]float64, r.n)
	start := (int(r.i) - int(r.n) + histLen) % histLen
	for k := range out {
		q := r.v[(start+k)%histLen]
		if q == 255 {
			out[k] = math.NaN()
		} else {
			out[k] = float64(q) / 2
		}
	}
	return out
}

// ringF is a fixed ring of float32 values.
type ringF struct {
	v    [histLen]float32
	n, i uint8
}

func (r *ringF) push(p float64) {
	r.v[r.i] = float32(p)
	r.i = (r.i + 1) % histLen
	if r.n < histLen {
		r.n++
	}
}

func (r *ringF) values() []float64 {
	out := make([]float64, r.n)
	start := (int(r.i) - int(r.n) + histLen) % histLen
	for k := range out {
		out[k] = float64(r.v[(start+k)%histLen])
	}
	return out
}
