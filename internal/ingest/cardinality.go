package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// errSeriesLimit is wrapped by the errors of seriesBook.admit.
var errSeriesLimit = errors.New("series limit reached")

// seriesUse is what the hub knows of one active series.
type seriesUse struct {
	refs int32 // open agent streams that have the series in their table
	last int64 // ms since epoch (hub clock): last defined, released or written over HTTP
}

// seriesBook counts the distinct series of every machine across all paths
// (gRPC streams, reconnects, HTTP ingest, hub restarts) and refuses new
// series beyond a per-machine and a hub-wide cap. A series is active while
// an open stream has it in its table, or for idle after its last write over
// HTTP or the end of the last stream that had it; after that it stops
// counting. Series are keyed by the 64-bit hash of their stored label set
// (name, machine and labels), about 50 bytes per active series.
type seriesBook struct {
	perMachine int           // distinct active series of one machine
	global     int           // distinct active series of all machines
	idle       time.Duration // how long an unused series keeps counting
	mem        *memGuard     // nil: no memory limit

	mu       sync.Mutex // protects machines and total
	machines map[string]map[uint64]seriesUse
	total    int
}

func newSeriesBook(perMachine, global int, idle time.Duration) *seriesBook {
	return &seriesBook{perMachine: perMachine, global: global, idle: idle, machines: map[string]map[uint64]seriesUse{}}
}

// limitError says which cap refused a series; limit is the name used in
// metrics and errors.
type limitError struct {
	limit      string // limitPerMachine, limitActive or limitMemory
	max        int
	used, high uint64 // limitMemory: bytes in use and the high-water mark
}

func (e *limitError) Error() string {
	if e.limit == limitMemory {
		return fmt.Sprintf("%v: the hub's memory (%s MiB) is above its high-water mark (%s MiB, %.0f%% of its --max-memory %d MiB); existing series keep flowing",
			errSeriesLimit, mib(e.used), mib(e.high), MemoryHighWater*100, e.max>>20)
	}
	if e.limit == limitPerMachine {
		return fmt.Sprintf("%v: the machine has %d active series, the hub's limit per machine", errSeriesLimit, e.max)
	}
	return fmt.Sprintf("%v: the hub has %d active series, its limit for all machines", errSeriesLimit, e.max)
}

func (e *limitError) Unwrap() error { return errSeriesLimit }

// Names of the caps (label of sysmonstm_refused_series_total); limitMemory
// is in memory.go.
const (
	limitPerMachine = "max_series_per_machine"
	limitActive     = "max_active_series"
)

// admission says how a series is admitted.
type admission struct {
	hold bool // a stream takes a reference that it gives back with release
	// hub marks the hub's own sequence series of a stream: it is counted
	// but not held to the hub-wide cap, so that a machine that already has
	// its series can always reconnect with a new agent process.
	hub bool
}

// admit counts series h of machine as used now (ms since epoch). A series
// already counted is always admitted; a new one only under the per-machine
// cap and, unless a.hub, the hub-wide cap.
func (b *seriesBook) admit(machine string, h uint64, now int64, a admission) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.machines[machine]
	u, ok := set[h]
	if !ok {
		if len(set) >= b.perMachine {
			return &limitError{limit: limitPerMachine, max: b.perMachine}
		}
		if b.total >= b.global && !a.hub {
			return &limitError{limit: limitActive, max: b.global}
		}
		// Over the memory high-water mark no new series is taken, except
		// the sequence series of a new agent process of a machine that
		// already has series: its existing series keep flowing.
		if err := b.mem.check(); err != nil && !(a.hub && len(set) > 0) {
			return err
		}
		if set == nil {
			set = map[uint64]seriesUse{}
			b.machines[machine] = set
		}
		b.total++
	}
	if a.hold {
		u.refs++
	}
	u.last = max(u.last, now)
	set[h] = u
	return nil
}

// release gives back a stream's reference to series h; the series keeps
// counting for idle from now (ms since epoch).
func (b *seriesBook) release(machine string, h uint64, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.machines[machine]
	u, ok := set[h]
	if !ok {
		return
	}
	if u.refs > 0 {
		u.refs--
	}
	u.last = max(u.last, now)
	set[h] = u
}

// expire drops the series that no stream holds and that were last used
// before now-idle (ms since epoch). It returns how many it dropped.
func (b *seriesBook) expire(now int64) int {
	before := now - b.idle.Milliseconds()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for m, set := range b.machines {
		for h, u := range set {
			if u.refs == 0 && u.last < before {
				delete(set, h)
				n++
			}
		}
		if len(set) == 0 {
			delete(b.machines, m)
		}
	}
	b.total -= n
	return n
}

// counts returns the active series of machine and of the hub.
func (b *seriesBook) counts(machine string) (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.machines[machine]), b.total
}

// restoreSeries counts every series with a sample in the raw tier within the
// idle window as used at now, so that a restart does not reset the caps.
// Caps do not apply here: what is stored is counted as it is.
func (s *Server) restoreSeries(ctx context.Context, now int64) error {
	mint, maxt := now-s.opts.SeriesIdle.Milliseconds(), now+s.opts.MaxFuture.Milliseconds()
	b := s.series
	b.mu.Lock()
	defer b.mu.Unlock()
	err := s.opts.Storage.MachineSeries(ctx, mint, maxt, func(ls labels.Labels) {
		machine := ls.Get(metric.MachineLabel)
		m := b.machines[machine]
		if m == nil {
			m = map[uint64]seriesUse{}
			b.machines[machine] = m
		}
		h := ls.Hash()
		if _, ok := m[h]; !ok {
			b.total++
		}
		m[h] = seriesUse{last: now}
	})
	if err != nil {
		return fmt.Errorf("restore active series: %w", err)
	}
	return nil
}

// expireSeries drops idle series from the count every minute until ctx ends.
func (s *Server) expireSeries(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := s.series.expire(s.opts.Now().UnixMilli()); n > 0 {
			s.log.Debug("idle series no longer count against the series limits", "series", n)
		}
	}
}
