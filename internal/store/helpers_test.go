package store

import (
	"context"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// base is the start of every test's data: an hour boundary.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openTest opens a store in dir (a new temp dir when "") with a fake clock
// at now; edit may adjust the options.
func openTest(t testing.TB, dir string, now time.Time, edit func(*Options)) (*Store, *fakeClock) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	clk := &fakeClock{t: now}
	// SYSMONSTM_TEST_ENGINE=vm runs the store's tests on the VM raw tier.
	o := Options{Dir: dir, Now: clk.Now, Engine: os.Getenv("SYSMONSTM_TEST_ENGINE")}
	if edit != nil {
		edit(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

// series builds TSDB labels: name, machine and further name/value pairs.
func series(name, machine string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{labels.MetricName, name, "machine", machine}, kv...)...)
}

// appendRange appends n samples of ls every step from `from`, value f(i),
// commits, and tells the store.
func appendRange(t testing.TB, s *Store, ls labels.Labels, from time.Time, n int, step time.Duration, f func(i int) float64) {
	t.Helper()
	app := s.Appender(context.Background())
	var ref SeriesRef
	var err error
	last := int64(math.MinInt64)
	for i := range n {
		ts := from.Add(time.Duration(i) * step).UnixMilli()
		if ref, err = app.Append(ref, ls, ts, f(i)); err != nil {
			t.Fatalf("append %s at %d: %v", ls, ts, err)
		}
		last = ts
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	s.NoteWritten(ls.Get("machine"), last)
}

func mustRollup(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Rollup(context.Background()); err != nil {
		t.Fatalf("rollup: %v", err)
	}
}

func mustQuery(t testing.TB, s *Store, q Query) *Result {
	t.Helper()
	res, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("query %+v: %v", q, err)
	}
	return res
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// rolledUp queries only what the rollup tier q picks holds, without the
// finer tiers Query stitches on for data not yet rolled up.
func rolledUp(t testing.TB, s *Store, q Query) *Result {
	t.Helper()
	p, err := s.planQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	db := map[string]*Tier{Tier1m: s.tier1m, Tier1h: s.tier1h}[p.tier]
	if db == nil {
		t.Fatalf("query %+v picks tier %s", q, p.tier)
	}
	c := &collector{series: map[string]*seriesBuckets{}, metric: q.Metric}
	all := func(string) (int64, int64) { return math.MinInt64, math.MaxInt64 }
	if err := readRollup(context.Background(), db, p, p.mint, all, c); err != nil {
		t.Fatal(err)
	}
	res, err := c.result(p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// rawTSDB returns s's raw tier as a TSDB *Tier, for tests of that engine.
func rawTSDB(t testing.TB, s *Store) *Tier {
	t.Helper()
	db, ok := s.raw.(*Tier)
	if !ok {
		t.Fatalf("the raw tier is %T, not a TSDB tier", s.raw)
	}
	return db
}

// skipUnlessTSDB skips a test of the TSDB raw tier's internals when the
// store's tests run on another engine (SYSMONSTM_TEST_ENGINE).
func skipUnlessTSDB(t testing.TB) {
	if e := os.Getenv("SYSMONSTM_TEST_ENGINE"); e != "" && e != EngineTSDB {
		t.Skipf("tests the TSDB raw tier; the raw tier runs on engine %s", e)
	}
}
