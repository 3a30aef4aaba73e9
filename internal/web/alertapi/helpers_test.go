package alertapi

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/alert"
	metadb "github.com/sysmonstm/sysmonstm/internal/db"
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

// recorder is a Sender that records how many messages it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (r *recorder) Send(_ context.Context, _ notify.Config, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) Status(string) notify.Status { return notify.Status{} }

// harness is a real engine on a temporary database with a test clock and
// a real live state; the test drives its housekeeping with step.
type harness struct {
	t     testing.TB
	e     *alert.Engine
	db    *sql.DB
	clk   *clock
	live  *live.State
	opts  alert.Options
	ctx   context.Context
	stop  context.CancelFunc
	serie map[string]*live.Series
}

func newHarness(t testing.TB, opts alert.Options) *harness {
	t.Helper()
	return openHarness(t, t.TempDir(), newClock(t0), opts)
}

// openHarness opens an engine on dir's database (again, for restarts).
func openHarness(t testing.TB, dir string, clk *clock, opts alert.Options) *harness {
	t.Helper()
	d, err := metadb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	st, err := live.New(live.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: d, clk: clk, live: st, serie: map[string]*live.Series{}}
	opts.DB = d
	opts.Machines = st
	opts.Now = clk.Now
	if opts.Sender == nil {
		opts.Sender = &recorder{}
	}
	if opts.RepeatInterval == 0 {
		opts.RepeatInterval = -1
	}
	h.opts = opts
	h.e, err = alert.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.ctx, h.stop = context.WithCancel(context.Background())
	t.Cleanup(h.stop)
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

// step runs one round of the engine's housekeeping at the current clock.
func (h *harness) step() { h.e.Step(h.ctx, h.clk.Now()) }

// createRule adds a rule from JSON.
func (h *harness) createRule(js string) alert.Rule {
	h.t.Helper()
	r, err := alert.DecodeRule([]byte(js))
	if err != nil {
		h.t.Fatalf("decode %s: %v", js, err)
	}
	r, err = h.e.CreateRule(context.Background(), r)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// alerts lists alerts in the given states.
func (h *harness) alerts(states ...string) []alert.Alert {
	h.t.Helper()
	as, err := h.e.Alerts(context.Background(), alert.AlertQuery{States: states})
	if err != nil {
		h.t.Fatal(err)
	}
	return as
}
