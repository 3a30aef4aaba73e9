package alert

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	metadb "github.com/sysmonstm/sysmonstm/internal/db"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// Machines is what the engine reads of the live state; *live.State
// satisfies it.
type Machines interface {
	// Infos lists every machine without values (labels, last_seen).
	Infos() []live.Machine
	// Info returns one machine without values.
	Info(id string) (live.Machine, bool)
	// Machine returns one machine with its latest values (rule preview).
	Machine(id string) (live.Machine, bool)
}

// Sender delivers notifications; *notify.Dispatcher satisfies it.
type Sender interface {
	// Send formats and delivers m to the channel c, retrying transient
	// failures; it blocks until delivered, given up, or ctx is done.
	Send(ctx context.Context, c notify.Config, m notify.Message) error
	// Status is channel id's delivery record.
	Status(id string) notify.Status
}

// Options configure an Engine.
type Options struct {
	DB       *sql.DB  // required: the metadata database (internal/db)
	Machines Machines // required
	// Publish receives an alert event on every state change, ack and
	// silence change; nil publishes nothing.
	Publish func(live.Event)
	// Sender delivers notifications; nil sends none.
	Sender Sender
	// Provisioning is a YAML file of rules and notifiers (keys rules: and
	// notifiers:), re-synced at every start; "" provisions nothing.
	Provisioning string
	// Defaults creates each built-in default rule once: on the first start
	// that ships it, never again after it was deleted.
	Defaults bool
	// GroupWait is how long state changes are collected into one message
	// per channel; default 500ms.
	GroupWait time.Duration
	// RepeatInterval re-sends unacknowledged, unsilenced firing alerts;
	// default 4h; negative disables repeats.
	RepeatInterval time.Duration
	// Retention keeps resolved alerts and expired silences this long;
	// default 720h.
	Retention time.Duration
	// StaleAfter resolves an alert whose series sent no sample for this
	// long; default 5m.
	StaleAfter time.Duration
	// Tick is the period of Run's housekeeping; default 100ms.
	Tick time.Duration
	// Elect, on PostgreSQL, makes the engines sharing the database elect
	// one leader that writes alert state and sends notifications while the
	// others only evaluate (leader.go): for hubs that all see every
	// machine. Without it (and always on SQLite) the engine writes and
	// notifies what it evaluates itself.
	Elect bool
	// LeaderPoll is how often, with Elect, a follower tries to take the
	// leadership and the leader checks its lock connection; default 1s.
	LeaderPoll time.Duration
	// QueueSize bounds the messages waiting per channel; default 64.
	QueueSize  int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time // the hub's clock; default time.Now
	// URL returns the dashboard's base URL ("http://host:8000/"), for links
	// in notifications; nil or "" leaves them out.
	URL func() string
}

// promoteGrace is how recent a pending alert's last sample must be for Run
// to promote it to firing between samples: a series that went quiet fires
// (or not) on its next sample instead.
const promoteGrace = 15 * time.Second

// Engine evaluates alert rules on the live stream. Observe is safe for
// concurrent use; the methods the API calls and Run may run at the same
// time.
//
// Locks, in the order they may be taken: lead.mu (leader.go), then
// machineState.mu, then Engine.mu;
// machinesMu and writeMu are never held while taking another lock except
// writeMu → Engine.mu; stepMu is taken before all of them.
type Engine struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	db      *sql.DB
	m       *engineMetrics
	started time.Time
	// shared: the engines on the database (PostgreSQL, Options.Elect)
	// elect a leader; leader: this engine writes alert state and notifies
	// (always when not shared); syncing: it is taking over (leader.go).
	shared  bool
	leader  atomic.Bool
	syncing atomic.Bool
	lead    leadership

	set atomic.Pointer[ruleSet] // the compiled enabled rules
	// rebuildNeeded asks Run to bring every machine up to the rules (a
	// hello reset one machine's selection).
	rebuildNeeded atomic.Bool

	machinesMu sync.RWMutex // protects machines (the map, not the entries)
	machines   map[string]*machineState

	// writeMu serialises writes of rules, notifiers and silences (database,
	// then memory).
	writeMu sync.Mutex

	stepMu    sync.Mutex // protects stepState
	stepState runState   // what Step remembers between calls (Run keeps its own)

	mu         sync.Mutex // protects every field below
	version    uint64     // rules version: bumped on every rule change
	rules      map[string]Rule
	notifiers  map[string]Notifier
	silences   map[string]*Silence
	active     map[string]*record      // id → pending or firing alert
	restored   map[string]*record      // identity → active alert loaded at start (or takeover), not yet seen again
	restoredAt time.Time               // when restored was loaded
	outboxNew  []*outboxEntry          // outbox entries to write at the next flush
	view       map[string]string       // follower: alert id → stored body of the active alerts it published (follow.go)
	dirty      map[string]*record      // id → changed since the last flush
	pending    map[*slot]*machineState // pending slots, for promotion by Run
	groups     map[string]*group       // channel id → notifications being collected
	workers    map[string]*worker      // channel id → delivery goroutine
	runCtx     context.Context
	workersWG  sync.WaitGroup
}

// New opens the engine's tables, applies provisioning and the default
// rules, and loads rules, notifiers, silences and active alerts.
func New(opts Options) (*Engine, error) {
	if opts.DB == nil || opts.Machines == nil {
		return nil, errors.New("alert: Options.DB and Options.Machines are required")
	}
	if opts.GroupWait <= 0 {
		opts.GroupWait = 500 * time.Millisecond
	}
	if opts.RepeatInterval == 0 {
		opts.RepeatInterval = 4 * time.Hour
	}
	if opts.Retention <= 0 {
		opts.Retention = 720 * time.Hour
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 5 * time.Minute
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.LeaderPoll <= 0 {
		opts.LeaderPoll = time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{
		opts: opts, log: opts.Logger, now: opts.Now, db: opts.DB,
		machines:  map[string]*machineState{},
		rules:     map[string]Rule{},
		notifiers: map[string]Notifier{},
		silences:  map[string]*Silence{},
		active:    map[string]*record{},
		restored:  map[string]*record{},
		dirty:     map[string]*record{},
		pending:   map[*slot]*machineState{},
		groups:    map[string]*group{},
		workers:   map[string]*worker{},
	}
	e.started = e.now()
	var err error
	if e.m, err = newEngineMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := migrate(ctx, e.db); err != nil {
		return nil, err
	}
	if opts.Provisioning != "" {
		p, err := loadProvisioning(opts.Provisioning)
		if err != nil {
			return nil, err
		}
		if err := e.syncProvisioning(ctx, p); err != nil {
			return nil, err
		}
	}
	if opts.Defaults {
		if err := e.createDefaults(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	e.shared = opts.Elect && metadb.IsPostgres(e.db)
	if e.shared {
		// A first hub leads at once; Run keeps campaigning.
		e.campaign(ctx)
	} else {
		e.leader.Store(true)
		e.m.leader.Set(1)
	}
	// Machines known before a restart are watched by offline rules; each
	// gets a grace of the rule's `for` from now (agents reconnect after a
	// hub restart) unless its offline alert was already firing.
	for _, m := range opts.Machines.Infos() {
		ms := e.machine(m.Info.ID)
		ms.mu.Lock()
		ms.labels = m.Info.Labels
		ms.httpOnly = live.Pushed(m.Info.Source)
		ms.mu.Unlock()
	}
	return e, nil
}

// load reads rules, notifiers, silences and active alerts into memory.
func (e *Engine) load(ctx context.Context) error {
	rules, err := loadRules(ctx, e.db)
	if err != nil {
		return err
	}
	nots, err := loadNotifiers(ctx, e.db)
	if err != nil {
		return err
	}
	sils, err := loadSilences(ctx, e.db)
	if err != nil {
		return err
	}
	recs, err := loadActiveAlerts(ctx, e.db)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range rules {
		e.rules[r.ID] = r
	}
	for _, n := range nots {
		e.notifiers[n.Config.ID] = n
	}
	for _, s := range sils {
		e.silences[s.ID] = s
	}
	for _, r := range recs {
		e.active[r.a.ID] = r
		e.restored[r.identity()] = r
	}
	e.restoredAt = e.started
	e.bumpLocked()
	e.m.setAlertGauges(e.active)
	return nil
}

// bumpLocked recompiles the enabled rules under a new version. Caller holds
// e.mu.
func (e *Engine) bumpLocked() {
	e.version++
	rules := make([]Rule, 0, len(e.rules))
	for _, r := range e.rules {
		rules = append(rules, r)
	}
	e.set.Store(newRuleSet(e.version, rules))
}

// machineState is the engine's per-machine state.
type machineState struct {
	id string

	mu      sync.Mutex // protects every field below
	version uint64     // ruleSet version byMetric, offline and the caches were built for
	labels  metric.Labels
	// httpOnly: the machine only pushes samples (HTTP ingest or remote
	// write, no agent), so offline rules for every machine leave it alone.
	httpOnly bool
	lastSeen int64 // ns since epoch (hub clock) of the last batch or hello; 0 = never
	byMetric map[string][]*compiled
	offline  []*slot
	// offlineActive counts offline slots that are pending or firing, so
	// Observe resolves them without scanning.
	offlineActive int
	// pos caches, per position in the batch, the series seen there last
	// time and its state (nil when no rule matches it): agents send their
	// series in the same order every batch.
	pos []posEntry
	// ptrs caches every series pointer seen (including those no rule
	// matches), for batches whose order changed. Bounded: cleared when it
	// outgrows maxPtrs.
	ptrs     map[*live.Series]*seriesState
	maxBatch int
	series   map[string]*seriesState // series key → state, for matched series only
}

// eachSlot calls f with every slot of m: its series' and its offline
// ones. Caller holds m.mu.
func (m *machineState) eachSlot(f func(*slot)) {
	for _, ss := range m.series {
		for _, s := range ss.slots {
			f(s)
		}
	}
	for _, s := range m.offline {
		f(s)
	}
}

type posEntry struct {
	sr *live.Series
	st *seriesState
}

// seriesState is one matched series of a machine with one slot per rule
// that selects it.
type seriesState struct {
	key        string
	name       string
	labels     metric.Labels
	lastSample int64 // ns since epoch (hub clock)
	slots      []*slot
}

// slot states.
const (
	stInactive uint8 = iota
	stPending
	stFiring
)

// slot is the state of one rule on one series (or, for offline rules, on
// one machine). Protected by its machine's mu.
type slot struct {
	rule  *compiled
	ss    *seriesState // nil for offline slots
	state uint8
	since int64   // ns since epoch: when pending began
	value float64 // latest aggregated value
	rec   *record // the current episode; nil when inactive
	win   *window // nil for aggregation "last"
}

func newSlot(c *compiled, ss *seriesState) *slot {
	s := &slot{rule: c, ss: ss}
	if c.agg != aggLast {
		s.win = newWindow(c.agg, c.windowMs)
	}
	return s
}

// machine returns the state of machine id, creating it.
func (e *Engine) machine(id string) *machineState {
	e.machinesMu.RLock()
	m := e.machines[id]
	e.machinesMu.RUnlock()
	if m != nil {
		return m
	}
	e.machinesMu.Lock()
	defer e.machinesMu.Unlock()
	if m = e.machines[id]; m == nil {
		m = &machineState{
			id:       id,
			lastSeen: e.now().UnixNano(),
			byMetric: map[string][]*compiled{},
			ptrs:     map[*live.Series]*seriesState{},
			series:   map[string]*seriesState{},
		}
		if info, ok := e.opts.Machines.Info(id); ok {
			m.labels = info.Info.Labels
			m.httpOnly = live.Pushed(info.Info.Source)
		}
		e.machines[id] = m
	}
	return m
}

func (e *Engine) machineList() []*machineState {
	e.machinesMu.RLock()
	defer e.machinesMu.RUnlock()
	out := make([]*machineState, 0, len(e.machines))
	for _, m := range e.machines {
		out = append(out, m)
	}
	return out
}

// Connected records an agent's hello: the machine's labels may have
// changed, so its rule selection is rebuilt on its next batch, and a hello
// counts as data for offline rules.
func (e *Engine) Connected(info live.MachineInfo) {
	if info.ID == "" {
		return
	}
	m := e.machine(info.ID)
	now := e.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels = info.Labels
	m.httpOnly = live.Pushed(info.Source)
	m.version = 0
	m.lastSeen = now
	e.rebuildNeeded.Store(true)
	if m.offlineActive > 0 {
		e.resolveOffline(m, now)
	}
}

// Observe evaluates one batch of a machine: values[i] is series[i]'s value
// at ts (ms since epoch, agent clock). It is the hot path: per-machine lock,
// no allocation for series seen before, transitions queued for Run.
func (e *Engine) Observe(id string, ts int64, series []*live.Series, values []float64) {
	rs := e.set.Load()
	m := e.machine(id)
	now := e.now().UnixNano()
	n := min(len(series), len(values))

	m.mu.Lock()
	if m.version != rs.version {
		e.rebuild(m, rs, now)
	}
	m.lastSeen = now
	if m.offlineActive > 0 {
		e.resolveOffline(m, now)
	}
	if len(m.pos) < n {
		m.pos = append(m.pos, make([]posEntry, n-len(m.pos))...)
	}
	if n > m.maxBatch {
		m.maxBatch = n
	}
	evals := 0
	pos := m.pos[:n]
	for i := range pos {
		sr := series[i]
		p := &pos[i]
		if p.sr != sr {
			if sr == nil {
				continue
			}
			p.sr, p.st = sr, e.lookup(m, sr, now, p.sr != nil)
		}
		ss := p.st
		if ss == nil {
			continue
		}
		v := values[i]
		if v != v { // NaN: no value
			continue
		}
		ss.lastSample = now
		for _, s := range ss.slots {
			e.eval(m, s, ts, v, now)
		}
		evals += len(ss.slots)
	}
	m.mu.Unlock()
	if evals > 0 {
		e.m.evaluations.Add(float64(evals))
	}
}

// lookup finds or creates the state of a series new at its position in
// the batch. remember caches the pointer for batches whose order changes
// (the position held another series before); a first fill needs no cache.
// Caller holds m.mu.
func (e *Engine) lookup(m *machineState, sr *live.Series, now int64, remember bool) *seriesState {
	if ss, ok := m.ptrs[sr]; ok {
		return ss
	}
	if len(m.byMetric[sr.Name]) == 0 {
		return nil // no rule selects the metric, so no state (rebuild keeps none)
	}
	key := sr.Key()
	ss := m.series[key]
	if ss == nil {
		ss = e.newSeriesState(m, sr, key, now)
	}
	if remember {
		if len(m.ptrs) >= 4*m.maxBatch+1024 {
			clear(m.ptrs) // new pointers for known series (reconnects, HTTP ingest)
		}
		m.ptrs[sr] = ss
	}
	return ss
}

// newSeriesState returns the state of a series no state exists for (key
// is sr.Key()), or nil when no rule selects it. Caller holds m.mu.
func (e *Engine) newSeriesState(m *machineState, sr *live.Series, key string, now int64) *seriesState {
	cands := m.byMetric[sr.Name]
	if len(cands) == 0 {
		return nil
	}
	var ss *seriesState
	for _, c := range cands {
		if !matchLabels(c.matchers, sr.Labels) {
			continue
		}
		if ss == nil {
			ss = &seriesState{key: key, name: sr.Name, labels: sr.Labels, lastSample: now}
		}
		s := newSlot(c, ss)
		e.adopt(m, s)
		ss.slots = append(ss.slots, s)
	}
	if ss != nil {
		m.series[ss.key] = ss
	}
	return ss
}

// eval runs one sample through a slot's state machine. Caller holds m.mu.
func (e *Engine) eval(m *machineState, s *slot, ts int64, v float64, now int64) {
	c := s.rule
	if s.win != nil {
		v = s.win.add(ts, v)
	}
	s.value = v
	switch s.state {
	case stInactive:
		if c.breach(v) {
			e.startPending(m, s, v, now)
		}
	case stPending:
		switch {
		case !c.breach(v):
			e.dropPending(m, s, v, now)
		case now-s.since >= c.forNs:
			e.fire(m, s, v, now)
		}
	case stFiring:
		if !c.holds(v) {
			e.resolve(m, s, v, now, "")
		}
	}
	if s.rec != nil {
		s.rec.last.Store(floatBits(v))
	}
}

// rebuild re-selects the rules of machine m after a rule change or a new
// hello: slots of rules that still apply keep their state; alerts of rules
// that no longer apply resolve. Caller holds m.mu.
func (e *Engine) rebuild(m *machineState, rs *ruleSet, now int64) {
	m.version = rs.version
	clear(m.byMetric)
	for name, cs := range rs.byMetric {
		for _, c := range cs {
			if c.selects(m.id, m.labels) {
				m.byMetric[name] = append(m.byMetric[name], c)
			}
		}
	}
	clear(m.ptrs)
	clear(m.pos)
	m.pos = m.pos[:0]
	for key, ss := range m.series {
		var next []*slot
		for _, c := range m.byMetric[ss.name] {
			if !matchLabels(c.matchers, ss.labels) {
				continue
			}
			next = append(next, e.keepSlot(m, ss.slots, c, ss))
		}
		e.closeDropped(m, ss.slots, next, now)
		ss.slots = next
		if len(next) == 0 {
			delete(m.series, key)
		}
	}
	var next []*slot
	for _, c := range rs.offline {
		if c.selects(m.id, m.labels) && (!m.httpOnly || !c.allMachines) {
			next = append(next, e.keepSlot(m, m.offline, c, nil))
		}
	}
	e.closeDropped(m, m.offline, next, now)
	m.offline = next
}

// keepSlot returns the slot of rule c among old, updated to c, or a new
// slot (adopting a restored alert). Caller holds m.mu.
func (e *Engine) keepSlot(m *machineState, old []*slot, c *compiled, ss *seriesState) *slot {
	for _, s := range old {
		if s.rule.rule.ID != c.rule.ID {
			continue
		}
		if !s.rule.sameWindow(c) {
			s.win = nil
			if c.agg != aggLast {
				s.win = newWindow(c.agg, c.windowMs)
			}
		}
		s.rule = c
		if s.rec != nil {
			e.refreshRule(s)
		}
		return s
	}
	s := newSlot(c, ss)
	e.adopt(m, s)
	return s
}

// closeDropped ends the alerts of slots in old that are not in kept.
// Caller holds m.mu.
func (e *Engine) closeDropped(m *machineState, old, kept []*slot, now int64) {
outer:
	for _, s := range old {
		for _, k := range kept {
			if k == s {
				continue outer
			}
		}
		reason := "rule changed"
		if _, ok := e.set.Load().byID[s.rule.rule.ID]; !ok {
			reason = "rule deleted or disabled"
		}
		e.closeSlot(m, s, now, reason)
	}
}

// closeSlot ends a slot's episode: firing resolves, pending is dropped.
// Caller holds m.mu.
func (e *Engine) closeSlot(m *machineState, s *slot, now int64, reason string) {
	switch s.state {
	case stPending:
		e.dropPending(m, s, s.value, now)
	case stFiring:
		e.resolve(m, s, s.value, now, reason)
	}
}

// resolveOffline resolves m's active offline alerts: data arrived. Caller
// holds m.mu.
func (e *Engine) resolveOffline(m *machineState, now int64) {
	for _, s := range m.offline {
		switch s.state {
		case stFiring:
			e.resolve(m, s, float64(now-s.since)/1e9, now, "")
		case stPending:
			e.dropPending(m, s, 0, now)
		}
	}
}

func floatBits(v float64) uint64 { return math.Float64bits(v) }
