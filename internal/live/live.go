// Package live owns the current state of every machine (identity, online
// status, latest value of each series) and fans its changes out to
// subscribers such as WebSocket clients.
package live

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a State. The zero value works: 15 s offline timeout, no
// persistence, no metrics, a discarding logger.
type Options struct {
	// OfflineAfter is how long a machine stays online without data; default
	// 15s. A machine whose collection interval is long gets at least three
	// intervals.
	OfflineAfter time.Duration
	// StalenessAfter drops a series from the latest values when the machine
	// has sent no value for it for this long (agent clock), e.g. an unmounted
	// filesystem; default 5m.
	StalenessAfter time.Duration
	// MaxSeriesPerMachine bounds the series whose latest value is kept for
	// one machine (and so its share of every snapshot, machine object and
	// metrics event); values of further series are not kept, the machine
	// is marked MetricsTruncated. Default 10,000.
	MaxSeriesPerMachine int
	// StatePath is the machine registry file (JSON); "" disables persistence.
	StatePath string
	// ForgetAfter forgets an offline machine (as Forget does) once it has
	// sent no data for this long (since last_seen); 0 never forgets on its
	// own.
	ForgetAfter time.Duration
	// OnForget, when not nil, is called with the id of every machine
	// forgotten (by Forget or by ForgetAfter), after it left the state.
	OnForget func(id string)
	// PersistEvery bounds how often the registry is written while it changes;
	// default 10s. It is always written when Run returns.
	PersistEvery time.Duration
	Logger       *slog.Logger
	// Registerer receives sysmonstm_connected_agents and
	// sysmonstm_websocket_dropped_clients_total; nil registers nothing.
	Registerer prometheus.Registerer
	Now        func() time.Time // clock, for tests; default time.Now
}

// State is the hub's live view of all machines. All methods are safe for
// concurrent use.
type State struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu       sync.RWMutex // protects machines (the map, not the entries)
	machines map[string]*machine

	subs         subscribers
	persistMu    sync.Mutex    // serialises registry writes, so the last snapshot taken is the last written
	dirty        atomic.Bool   // the registry changed since it was last written
	summaryEvery time.Duration // SummaryEvery; shorter in tests
	metrics      stateMetrics
}

type stateMetrics struct {
	connected      prometheus.Gauge
	droppedClients prometheus.Counter
	coalesced      prometheus.Counter
}

// machine is one machine's state.
type machine struct {
	id     string
	idJSON []byte // id as a JSON string, for event encoding

	mu        sync.Mutex // protects every field below
	info      MachineInfo
	online    bool
	connected bool
	lastSeen  time.Time
	lastTs    int64        // ms since epoch of the newest batch
	index     seriesIndex  // series → position in values
	values    []entry      // latest value per series, in arrival order
	hint      int          // position after the last series updated: the likely next one
	truncated bool         // a series was left out for MaxSeriesPerMachine
	procs     []Process    // latest top-process list; nil when none or offline
	procsTs   int64        // ms since epoch (agent clock) of procs
	sum       summaryState // summary bookkeeping (summary.go)
}

// entry is the latest value of one series.
type entry struct {
	series *Series
	ts     int64 // ms since epoch
	value  float64
	role   uint8 // what the series contributes to the summary (seriesRole)
}

// New returns a State and loads the registry from opts.StatePath: machines
// known before a restart appear offline with their last_seen.
func New(opts Options) (*State, error) {
	if opts.OfflineAfter <= 0 {
		opts.OfflineAfter = 15 * time.Second
	}
	if opts.StalenessAfter <= 0 {
		opts.StalenessAfter = 5 * time.Minute
	}
	if opts.MaxSeriesPerMachine <= 0 {
		opts.MaxSeriesPerMachine = 10_000
	}
	if opts.PersistEvery <= 0 {
		opts.PersistEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &State{
		opts:         opts,
		log:          opts.Logger,
		now:          opts.Now,
		machines:     make(map[string]*machine),
		summaryEvery: SummaryEvery,
		metrics: stateMetrics{
			connected: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "sysmonstm_connected_agents",
				Help: "Machines that are online (sent data within the offline timeout).",
			}),
			droppedClients: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "sysmonstm_websocket_dropped_clients_total",
				Help: "Live-stream subscribers (WebSocket clients) dropped: stuck on a write, or too far behind on events that cannot be coalesced.",
			}),
			coalesced: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "sysmonstm_websocket_coalesced_events_total",
				Help: "Live events replaced by a newer one of the same machine before a slow subscriber took them.",
			}),
		},
	}
	if r := opts.Registerer; r != nil {
		for _, c := range []prometheus.Collector{s.metrics.connected, s.metrics.droppedClients, s.metrics.coalesced} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("register live metrics: %w", err)
			}
		}
	}
	if opts.StatePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func newMachine(id string) *machine {
	return &machine{
		id:     id,
		idJSON: appendJSONString(nil, id),
		info:   MachineInfo{ID: id, Hostname: id},
		index:  seriesIndex{byHash: make(map[uint64]int)},
	}
}

// get returns the machine id, creating it when create is set.
func (s *State) get(id string, create bool) *machine {
	s.mu.RLock()
	m := s.machines[id]
	s.mu.RUnlock()
	if m != nil || !create {
		return m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m = s.machines[id]; m == nil {
		m = newMachine(id)
		s.machines[id] = m
		s.dirty.Store(true)
	}
	return m
}

// Connect records an agent's hello: the machine's info is replaced, it is
// online and connected, and a machine event goes out.
func (s *State) Connect(info MachineInfo) {
	if info.ID == "" {
		s.log.Warn("live: connect without machine id ignored")
		return
	}
	m := s.get(info.ID, true)
	now := s.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.info = info
	m.connected = true
	m.lastSeen = now
	s.setOnline(m, true)
	s.dirty.Store(true)
	s.publishMachine(m)
}

// Disconnect records that the machine's stream closed. The machine stays
// online until OfflineAfter passes without data, so a quick reconnect does
// not flap.
func (s *State) Disconnect(id string) {
	m := s.get(id, false)
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.connected {
		return
	}
	m.connected = false
	s.publishMachine(m)
}

// Update records one batch of a machine: values[i] is the value of
// series[i] at ts (ms since epoch). Each series' latest value is replaced
// unless the stored one is newer (a replayed batch); the machine is online
// and last_seen is now. A metrics event goes out unless the batch is older
// than the newest one (to full subscribers and to summary subscribers that
// asked for this machine), and summary subscribers get the machine's summary
// (at most once per SummaryEvery). Unknown machines are created. No
// allocation happens for known series when nobody is subscribed. A new
// series beyond MaxSeriesPerMachine is left out of the state and the event.
func (s *State) Update(id string, ts int64, series []*Series, values []float64) {
	m := s.get(id, true)
	now := s.now()
	n := min(len(series), len(values))

	m.mu.Lock()
	defer m.mu.Unlock()
	var left []int // positions in series left out for the cap
	for i := 0; i < n; i++ {
		sr := series[i]
		if sr == nil {
			continue
		}
		j := m.hint
		if j >= len(m.values) || m.values[j].series != sr {
			var ok bool
			if j, ok = m.index.find(m.values, sr); !ok {
				if len(m.values) >= s.opts.MaxSeriesPerMachine {
					if !m.truncated {
						m.truncated = true
						s.log.Warn("machine has more series than the live state keeps; the others are stored but not shown live",
							"machine", m.id, "limit", s.opts.MaxSeriesPerMachine)
					}
					left = append(left, i)
					continue
				}
				j = len(m.values)
				m.index.add(sr, j)
				m.values = append(m.values, entry{series: sr, ts: ts, value: values[i], role: seriesRole(sr)})
				m.hint = j + 1
				continue
			}
		}
		e := &m.values[j]
		if ts >= e.ts {
			e.series, e.ts, e.value = sr, ts, values[i]
		}
		m.hint = j + 1
	}
	m.lastSeen = now
	if !s.dirty.Load() {
		s.dirty.Store(true)
	}
	if !m.online {
		s.setOnline(m, true)
		s.publishMachine(m)
	}
	if ts < m.lastTs {
		return // replayed batch: history for the store, not news
	}
	m.lastTs = ts
	if s.subs.wantMetrics(m.id) {
		series, values := series[:n], values[:n]
		if left != nil {
			series, values = without(series, values, left)
		}
		eb := newEventBuf(metricsSize(m.idJSON, series))
		eb.b = appendMetrics(eb.b, m.idJSON, ts, series, values)
		ev := Event{Type: EventMetrics, Machine: m.id, JSON: eb.b, At: now, buf: eb}
		s.Publish(ev)
		ev.Release() // the publisher's hold: subscribers now hold what they queued
	}
	if s.subs.summaries() {
		s.publishSummary(m)
	}
}

// without returns copies of series and values without the positions in
// left (ascending).
func without(series []*Series, values []float64, left []int) ([]*Series, []float64) {
	ss := make([]*Series, 0, len(series)-len(left))
	vs := make([]float64, 0, len(series)-len(left))
	for i := range series {
		if len(left) > 0 && left[0] == i {
			left = left[1:]
			continue
		}
		ss = append(ss, series[i])
		vs = append(vs, values[i])
	}
	return ss, vs
}

// metricsSize is about the length of the metrics event of series (enough
// for most values without growing).
func metricsSize(idJSON []byte, series []*Series) int {
	size := 64 + len(idJSON)
	for _, sr := range series {
		if sr != nil {
			size += len(sr.jsonPrefix()) + 26
		}
	}
	return size
}

// appendMetrics appends the metrics event
// {"type":"metrics","machine":ID,"ts":MS,"metrics":[{"name","labels","value"}…]}
// to b.
func appendMetrics(b, idJSON []byte, ts int64, series []*Series, values []float64) []byte {
	b = append(b, `{"type":"metrics","machine":`...)
	b = append(b, idJSON...)
	b = append(b, `,"ts":`...)
	b = appendInt(b, ts)
	b = append(b, `,"metrics":[`...)
	first := true
	for i, sr := range series {
		if sr == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, sr.jsonPrefix()...)
		b = appendJSONFloat(b, values[i])
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func appendUint(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }

// setOnline flips m's online flag and the connected-agents gauge. Caller
// holds m.mu.
func (s *State) setOnline(m *machine, online bool) {
	if m.online == online {
		return
	}
	m.online = online
	if online {
		s.metrics.connected.Inc()
	} else {
		s.metrics.connected.Dec()
	}
}

// publishMachine sends a machine event for m. Caller holds m.mu.
func (s *State) publishMachine(m *machine) {
	if !s.subs.any() {
		return
	}
	b, err := json.Marshal(struct {
		Type    string  `json:"type"`
		Machine Machine `json:"machine"`
	}{EventMachine, m.snapshot(false, false)})
	if err != nil {
		s.log.Error("live: encode machine event", "machine", m.id, "err", err)
		return
	}
	s.Publish(Event{Type: EventMachine, Machine: m.id, JSON: b})
}

// snapshot copies m; with metrics, Metrics is non-nil and sorted by series
// key; with procs, Processes is non-nil. Caller holds m.mu.
func (m *machine) snapshot(metrics, procs bool) Machine {
	out := Machine{Info: m.info, Online: m.online, Connected: m.connected, LastSeen: m.lastSeen, LastTs: m.lastTs, MetricsTruncated: m.truncated}
	if procs {
		out.Processes = append([]Process{}, m.procs...)
		out.ProcessesTs = m.procsTs
	}
	if !metrics {
		return out
	}
	es := slices.Clone(m.values)
	slices.SortFunc(es, func(a, b entry) int { return compareSeries(a.series, b.series) })
	out.Metrics = make([]Value, len(es))
	for i, e := range es {
		out.Metrics[i] = Value{Name: e.series.Name, Labels: e.series.Labels, Value: e.value, Ts: e.ts}
	}
	return out
}

// Machines returns every machine, sorted by id, with its latest values but
// without its top-process list (Processes is nil).
func (s *State) Machines() []Machine {
	ms := s.list()
	out := make([]Machine, len(ms))
	for i, m := range ms {
		m.mu.Lock()
		out[i] = m.snapshot(true, false)
		m.mu.Unlock()
	}
	return out
}

// Machine returns one machine with its latest values and its top-process
// list (Processes non-nil, empty when there is none).
func (s *State) Machine(id string) (Machine, bool) {
	m := s.get(id, false)
	if m == nil {
		return Machine{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot(true, true), true
}

// Known reports whether the machine is registered, without copying its state.
func (s *State) Known(id string) bool {
	return s.get(id, false) != nil
}

// list returns the machines sorted by id.
func (s *State) list() []*machine {
	s.mu.RLock()
	ms := make([]*machine, 0, len(s.machines))
	for _, m := range s.machines {
		ms = append(ms, m)
	}
	s.mu.RUnlock()
	slices.SortFunc(ms, func(a, b *machine) int { return cmp.Compare(a.id, b.id) })
	return ms
}
