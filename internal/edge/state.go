package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
)

// State is the edge's copy of the public view: per machine its identity,
// online state, the latest value of each public series and a window of
// recent values. Memory is bounded: at most maxMachines machines, each with
// at most MaxSeriesPerMachine series of one window (points × 4 bytes) each.
// All methods are safe for concurrent use.
type State struct {
	step     int64 // ms per window bucket
	points   int   // buckets per window
	maxMach  int
	mu       sync.Mutex // protects everything below
	machines map[string]*edgeMachine
	// publisher is whether a hub is connected; without one nothing is
	// known to be online.
	publisher bool
	gen       uint64 // snapshot generation
	nextPart  int    // next expected snapshot part; -1 when none is open
	// version counts changes of the machine set, identities, online states
	// and the publisher flag (not values): browser snapshots are cached
	// while it stays the same.
	version uint64
	// droppedSeries counts series left out because a machine had
	// MaxSeriesPerMachine already.
	droppedSeries uint64
}

// edgeMachine is one machine's state; the State's mutex protects it.
type edgeMachine struct {
	id       string
	labels   map[string]string
	online   bool
	lastSeen *time.Time
	lastTs   int64 // ms since epoch of the newest values
	series   map[string]*edgeSeries
	gen      uint64 // snapshot generation that last listed it
}

// edgeSeries is one public series of a machine.
type edgeSeries struct {
	name   string
	labels map[string]string
	value  float64
	ts     int64 // ms since epoch of value
	win    window
}

// newState returns an empty State whose windows span window in points
// buckets.
func newState(win time.Duration, points, maxMachines int) *State {
	step := win.Milliseconds() / int64(points)
	if step < 1 {
		step = 1
	}
	return &State{step: step, points: points, maxMach: maxMachines, machines: map[string]*edgeMachine{}, nextPart: -1}
}

// errFull is returned when a message would add a machine past the limit.
var errFull = errors.New("machine limit (--max-machines) reached")

// apply validates one publish message and applies it whole or not at all.
// It returns the browser events that describe the change.
func (s *State) apply(msg *pubMessage) ([]live.Event, error) {
	switch msg.Type {
	case typeSnapshot:
		return s.applySnapshot(msg)
	case typeMetrics:
		return s.applyMetrics(msg)
	case typeMachine:
		var m wireMachine
		if err := json.Unmarshal(msg.Machine, &m); err != nil {
			return nil, fmt.Errorf("machine message: %w", err)
		}
		if err := checkMachine(&m, false); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		em, err := s.getLocked(m.ID)
		if err != nil {
			return nil, err
		}
		em.labels, em.online, em.lastSeen = nonNilMap(m.Labels), m.Online, m.LastSeen
		s.version++
		return []live.Event{s.machineEventLocked(em)}, nil
	case typeRemove:
		return s.applyRemove(msg)
	case "":
		return nil, errors.New(`message without "type"`)
	}
	return nil, fmt.Errorf("unknown message type %q", clip(msg.Type))
}

func (s *State) applySnapshot(msg *pubMessage) ([]live.Event, error) {
	if msg.Part < 0 || msg.Part >= maxSnapshotParts {
		return nil, fmt.Errorf("snapshot part %d out of range", msg.Part)
	}
	seen := make(map[string]bool, len(msg.Machines))
	for i := range msg.Machines {
		m := &msg.Machines[i]
		if err := checkMachine(m, true); err != nil {
			return nil, err
		}
		if seen[m.ID] {
			return nil, fmt.Errorf("snapshot lists machine %q twice", clip(m.ID))
		}
		seen[m.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg.Part != 0 && msg.Part != s.nextPart {
		return nil, fmt.Errorf("snapshot part %d out of order (want %d)", msg.Part, max(s.nextPart, 0))
	}
	newOnes := 0
	for id := range seen {
		if s.machines[id] == nil {
			newOnes++
		}
	}
	if len(s.machines)+newOnes > s.maxMach {
		return nil, errFull
	}
	if msg.Part == 0 {
		s.gen++
	}
	s.nextPart = msg.Part + 1
	evs := make([]live.Event, 0, 2*len(msg.Machines))
	for i := range msg.Machines {
		m := &msg.Machines[i]
		em, _ := s.getLocked(m.ID)
		em.labels, em.online, em.lastSeen, em.gen = nonNilMap(m.Labels), m.Online, m.LastSeen, s.gen
		keep := make(map[string]bool, len(m.Metrics))
		var newest int64
		for j := range m.Metrics {
			v := &m.Metrics[j]
			key := seriesKey(v.Name, v.Labels)
			keep[key] = true
			s.setLocked(em, key, v, v.Ts)
			newest = max(newest, v.Ts)
		}
		for key := range em.series { // the public set may have changed
			if !keep[key] {
				delete(em.series, key)
			}
		}
		em.lastTs = max(em.lastTs, newest)
		evs = append(evs, s.machineEventLocked(em))
		if len(m.Metrics) > 0 {
			evs = append(evs, metricsEvent(em.id, newest, m.Metrics))
		}
	}
	if msg.Last {
		s.nextPart = -1
		for id, em := range s.machines {
			if em.gen != s.gen {
				delete(s.machines, id)
				evs = append(evs, removeEvent(id))
			}
		}
	}
	s.version++
	return evs, nil
}

func (s *State) applyMetrics(msg *pubMessage) ([]live.Event, error) {
	var id string
	if err := json.Unmarshal(msg.Machine, &id); err != nil {
		return nil, errors.New(`metrics message: "machine" must be a machine id string`)
	}
	m := wireMachine{ID: id}
	if err := checkMachine(&m, false); err != nil {
		return nil, err
	}
	if err := checkTs(msg.Ts); err != nil {
		return nil, err
	}
	if err := checkValues(msg.Metrics, msg.Ts); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	em, err := s.getLocked(id)
	if err != nil {
		return nil, err
	}
	accepted := msg.Metrics[:0]
	for i := range msg.Metrics {
		v := &msg.Metrics[i]
		if s.setLocked(em, seriesKey(v.Name, v.Labels), v, msg.Ts) {
			accepted = append(accepted, *v)
		}
	}
	em.lastTs = max(em.lastTs, msg.Ts)
	if len(accepted) == 0 {
		return nil, nil
	}
	return []live.Event{metricsEvent(id, msg.Ts, accepted)}, nil
}

// applyRemove drops a machine the hub forgot, with its values and windows.
// A machine the edge does not hold (never public, or refused at
// --max-machines) is no error: there is nothing to drop.
func (s *State) applyRemove(msg *pubMessage) ([]live.Event, error) {
	var id string
	if err := json.Unmarshal(msg.Machine, &id); err != nil {
		return nil, errors.New(`remove message: "machine" must be a machine id string`)
	}
	m := wireMachine{ID: id}
	if err := checkMachine(&m, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.machines[id] == nil {
		return nil, nil
	}
	delete(s.machines, id)
	s.version++
	return []live.Event{removeEvent(id)}, nil
}

// getLocked returns the machine, creating it unless the limit is reached.
func (s *State) getLocked(id string) (*edgeMachine, error) {
	if em := s.machines[id]; em != nil {
		return em, nil
	}
	if len(s.machines) >= s.maxMach {
		return nil, errFull
	}
	em := &edgeMachine{id: id, labels: map[string]string{}, series: map[string]*edgeSeries{}, gen: s.gen}
	s.machines[id] = em
	s.version++
	return em, nil
}

// setLocked records a value; it reports false when the series is new and
// the machine has MaxSeriesPerMachine already.
func (s *State) setLocked(em *edgeMachine, key string, v *wireValue, ts int64) bool {
	es := em.series[key]
	if es == nil {
		if len(em.series) >= MaxSeriesPerMachine {
			s.droppedSeries++
			return false
		}
		es = &edgeSeries{name: v.Name, labels: nonNilMap(v.Labels)}
		em.series[key] = es
	}
	if ts >= es.ts {
		es.value, es.ts = *v.Value, ts
	}
	es.win.add(ts, *v.Value, s.step, s.points)
	return true
}

// setPublisher records whether a hub is connected and returns the browser
// event that says so.
func (s *State) setPublisher(on bool) live.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publisher = on
	s.nextPart = -1
	s.version++
	return statusEvent(on)
}

// Publisher reports whether a hub is connected.
func (s *State) Publisher() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publisher
}

// Len returns the number of machines.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.machines)
}

// apiValue is a series in the HTTP API: the latest value, and with a window
// its recent points [[ts, value]…] (ms since epoch, oldest first).
type apiValue struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
	Ts     int64             `json:"ts"`
	Points [][2]float64      `json:"points,omitempty"`
}

// apiMachine is a machine in the HTTP API and the browser snapshot.
type apiMachine struct {
	ID       string            `json:"id"`
	Labels   map[string]string `json:"labels"`
	Online   bool              `json:"online"`
	LastSeen *time.Time        `json:"last_seen"`
	LastTs   int64             `json:"last_ts,omitempty"`
	Metrics  []apiValue        `json:"metrics"`
	// Spark holds the windows the page draws as sparklines: "cpu"
	// (cpu_usage_percent{cpu="total"}) and "memory" (memory_usage_percent).
	Spark map[string][][2]float64 `json:"spark,omitempty"`
}

// sparkSeries maps the series keys of the page's sparklines to their names.
var sparkSeries = map[string]string{
	seriesKey("cpu_usage_percent", map[string]string{"cpu": "total"}): "cpu",
	seriesKey("memory_usage_percent", nil):                            "memory",
}

// machineLocked copies em for the API; windows: with all series' points,
// spark: with the sparkline windows only.
func (s *State) machineLocked(em *edgeMachine, windows, spark bool) apiMachine {
	out := apiMachine{ID: em.id, Labels: em.labels, Online: em.online && s.publisher, LastSeen: em.lastSeen, LastTs: em.lastTs, Metrics: make([]apiValue, 0, len(em.series))}
	for _, key := range sortedKeys(em.series) {
		es := em.series[key]
		v := apiValue{Name: es.name, Labels: es.labels, Value: es.value, Ts: es.ts}
		if windows {
			v.Points = es.win.points(s.step)
		}
		if name, ok := sparkSeries[key]; ok && spark {
			if out.Spark == nil {
				out.Spark = map[string][][2]float64{}
			}
			out.Spark[name] = es.win.points(s.step)
		}
		out.Metrics = append(out.Metrics, v)
	}
	return out
}

// list returns every machine sorted by id with its latest values; spark
// adds the sparkline windows.
func (s *State) list(spark bool) []apiMachine {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]apiMachine, 0, len(s.machines))
	for _, id := range sortedKeys(s.machines) {
		out = append(out, s.machineLocked(s.machines[id], false, spark))
	}
	return out
}

// machine returns one machine with the windows of all its series.
func (s *State) machine(id string) (apiMachine, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	em := s.machines[id]
	if em == nil {
		return apiMachine{}, false
	}
	return s.machineLocked(em, true, false), true
}

// browserSnapshot is the first message of the browser stream.
type browserSnapshot struct {
	Type      string       `json:"type"`
	Publisher bool         `json:"publisher"`
	WindowMs  int64        `json:"window_ms"`
	StepMs    int64        `json:"step_ms"`
	Machines  []apiMachine `json:"machines"`
}

// snapshot encodes the browser snapshot and returns it with the version it
// reflects.
func (s *State) snapshot() ([]byte, uint64, error) {
	s.mu.Lock()
	snap := browserSnapshot{Type: typeSnapshot, Publisher: s.publisher, WindowMs: s.step * int64(s.points), StepMs: s.step, Machines: make([]apiMachine, 0, len(s.machines))}
	for _, id := range sortedKeys(s.machines) {
		snap.Machines = append(snap.Machines, s.machineLocked(s.machines[id], false, true))
	}
	version := s.version
	s.mu.Unlock()
	b, err := json.Marshal(snap)
	return b, version, err
}

// Version returns the structural version (see State.version).
func (s *State) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// stats returns counters for /health.
func (s *State) stats() (machines int, publisher bool, droppedSeries uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.machines), s.publisher, s.droppedSeries
}

// machineEventLocked is {"type":"machine","machine":{id,labels,online,last_seen}}.
func (s *State) machineEventLocked(em *edgeMachine) live.Event {
	b, _ := json.Marshal(struct {
		Type    string      `json:"type"`
		Machine wireMachine `json:"machine"`
	}{typeMachine, wireMachine{ID: em.id, Labels: em.labels, Online: em.online && s.publisher, LastSeen: em.lastSeen}})
	return live.Event{Type: live.EventMachine, Machine: em.id, JSON: b}
}

// metricsEvent is {"type":"metrics","machine":ID,"ts":MS,"metrics":[{name,labels,value}…]}.
func metricsEvent(id string, ts int64, vs []wireValue) live.Event {
	out := make([]wireValue, len(vs))
	for i, v := range vs {
		out[i] = wireValue{Name: v.Name, Labels: nonNilMap(v.Labels), Value: v.Value}
	}
	b, _ := json.Marshal(struct {
		Type    string      `json:"type"`
		Machine string      `json:"machine"`
		Ts      int64       `json:"ts"`
		Metrics []wireValue `json:"metrics"`
	}{typeMetrics, id, ts, out})
	return live.Event{Type: live.EventMetrics, Machine: id, JSON: b}
}

// removeEvent is {"type":"remove","machine":ID}.
func removeEvent(id string) live.Event {
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Machine string `json:"machine"`
	}{typeRemove, id})
	return live.Event{Type: typeRemove, Machine: id, JSON: b}
}

// statusEvent is {"type":"status","publisher":bool}.
func statusEvent(on bool) live.Event {
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		Publisher bool   `json:"publisher"`
	}{typeStatus, on})
	return live.Event{Type: typeStatus, JSON: b}
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
