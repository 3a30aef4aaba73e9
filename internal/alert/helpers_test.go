package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// sent is one recorded Send.
type sent struct {
	cfg notify.Config
	msg notify.Message
}

// recorder is a Sender that records every message.
type recorder struct {
	mu   sync.Mutex
	msgs []sent
	fail error
}

func (r *recorder) Send(_ context.Context, c notify.Config, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, sent{c, m})
	return r.fail
}

func (r *recorder) Status(string) notify.Status { return notify.Status{} }

func (r *recorder) all() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.msgs...)
}

// events records published live events.
type events struct {
	mu  sync.Mutex
	evs []live.Event
}

func (ev *events) publish(e live.Event) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.evs = append(ev.evs, e)
}

// states returns the "state" of every alert event, in order.
func (ev *events) states() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []string
	for _, e := range ev.evs {
		var m struct {
			Type  string `json:"type"`
			Alert Alert  `json:"alert"`
		}
		if err := json.Unmarshal(e.JSON, &m); err != nil || m.Type != "alert" {
			panic(fmt.Sprintf("bad event %s: %v", e.JSON, err))
		}
		out = append(out, m.Alert.State)
	}
	return out
}

// harness is an engine on a temporary database with a test clock, a real
// live state, a recording sender and a step function.
type harness struct {
	t     testing.TB
	e     *Engine
	db    *sql.DB
	dir   string
	clk   *clock
	live  *live.State
	send  *recorder
	evs   *events
	run   runState
	opts  Options
	ctx   context.Context
	stop  func()             // the end of the engine's hub: deliveries and leadership end
	kill  context.CancelFunc // the death of its process: deliveries end, nothing cleaned up
	serie map[string]*live.Series
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	dir := t.TempDir()
	return openHarness(t, dir, newClock(t0), opts)
}

// openHarness opens an engine on dir's database (again, for restarts).
func openHarness(t testing.TB, dir string, clk *clock, opts Options) *harness {
	t.Helper()
	return openHarnessOn(t, dbtest.Backend(), dir, clk, opts)
}

// openHarnessOn opens an engine on dir's database on backend.
func openHarnessOn(t testing.TB, backend, dir string, clk *clock, opts Options) *harness {
	t.Helper()
	d := dbtest.OpenAt(t, backend, dir)
	st, err := live.New(live.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: d, dir: dir, clk: clk, live: st, send: &recorder{}, evs: &events{}, serie: map[string]*live.Series{}}
	opts.DB = d
	opts.Machines = st
	opts.Now = clk.Now
	if opts.Sender == nil {
		opts.Sender = h.send
	}
	opts.Publish = h.evs.publish
	if opts.RepeatInterval == 0 {
		opts.RepeatInterval = -1
	}
	h.opts = opts
	h.e, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx, h.kill = ctx, cancel
	// stop ends the engine as a hub's end would: its deliveries and, on
	// PostgreSQL, its leadership (another engine on the database may lead).
	h.stop = func() {
		cancel()
		h.e.resign()
	}
	h.e.runCtx = h.ctx
	t.Cleanup(func() {
		h.stop()
		h.e.stopWorkers()
	})
	return h
}

// series returns the same *live.Series for the same identity.
func (h *harness) series(name string, labels ...string) *live.Series {
	var ls metric.Labels
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, metric.Label{Name: labels[i], Value: labels[i+1]})
	}
	ls.Sort()
	key := metric.SeriesKey(name, ls)
	if s, ok := h.serie[key]; ok {
		return s
	}
	s := live.NewSeries(name, ls)
	h.serie[key] = s
	return s
}

// observe feeds one sample of one series to live and the engine at the
// current clock.
func (h *harness) observe(machine string, s *live.Series, v float64) {
	ts := h.clk.Now().UnixMilli()
	h.live.Update(machine, ts, []*live.Series{s}, []float64{v})
	h.e.Observe(machine, ts, []*live.Series{s}, []float64{v})
}

// step runs one tick of Run at the current clock.
func (h *harness) step() { h.e.step(h.ctx, h.clk.Now(), &h.run) }

// advance moves the clock by d in steps of `every`, stepping each time.
func (h *harness) advance(d, every time.Duration, each func()) {
	for end := h.clk.Now().Add(d); h.clk.Now().Before(end); {
		h.clk.Add(every)
		if each != nil {
			each()
		}
		h.step()
	}
}

// createRule adds a rule from JSON.
func (h *harness) createRule(js string) Rule {
	h.t.Helper()
	r, err := DecodeRule([]byte(js))
	if err != nil {
		h.t.Fatalf("decode %s: %v", js, err)
	}
	r, err = h.e.CreateRule(context.Background(), r)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// createNotifier adds a channel directly (the recorder does not care
// about its type).
func (h *harness) createNotifier(id string, severities ...string) {
	h.t.Helper()
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	h.e.notifiers[id] = Notifier{Config: notify.Config{ID: id, Name: id, Type: notify.TypeWebhook, URL: "http://127.0.0.1:1/" + id, Severities: severities}}
}

// alerts lists alerts in the given states.
func (h *harness) alerts(states ...string) []Alert {
	h.t.Helper()
	as, err := h.e.Alerts(context.Background(), AlertQuery{States: states})
	if err != nil {
		h.t.Fatal(err)
	}
	return as
}

// one returns the only alert in the given states.
func (h *harness) one(states ...string) Alert {
	h.t.Helper()
	as := h.alerts(states...)
	if len(as) != 1 {
		h.t.Fatalf("want 1 alert in %v, have %d: %+v", states, len(as), as)
	}
	return as[0]
}

// sortedIDs returns the ids of xs, sorted.
func sortedIDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	slices.Sort(out)
	return out
}

// waitSent waits until n messages were sent.
func (h *harness) waitSent(n int) []sent {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := h.send.all()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sent %d messages, want %d: %+v", len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits briefly and returns every message sent so far (for
// asserting that nothing more arrives).
func (h *harness) settle() []sent {
	time.Sleep(50 * time.Millisecond)
	return h.send.all()
}
