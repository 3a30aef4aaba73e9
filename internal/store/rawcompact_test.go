package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestRawCompactionsWaitForTheFirstChunkFile checks that the raw tier
// compacts nothing before its head has written a chunk file (rawcompact.go),
// that a full disk's reason to stop compactions outlasts the gate, and that
// compactions run once both allow them.
func TestRawCompactionsWaitForTheFirstChunkFile(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	raw, ok := s.raw.(*Tier)
	if !ok {
		t.Skip("the VM engine's raw tier has no head chunk files (SYSMONSTM_TEST_ENGINE=vm)")
	}
	if !raw.gate.isWaiting() {
		t.Fatal("a fresh raw tier's compactions are not waiting for its first chunk file")
	}
	v := func(i int) float64 { return float64(i % 17) }
	blocksWithin := func(d time.Duration) int {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if n := len(raw.Blocks()); n > 0 {
				return n
			}
		}
		return len(raw.Blocks())
	}
	// Three hours in order: the head is compactable (1 h blocks), and the
	// commit asks the TSDB to compact.
	appendRange(t, s, series("load1", "m1"), base, 3*3600, time.Second, v)
	if n := blocksWithin(1500 * time.Millisecond); n != 0 {
		t.Fatalf("the raw tier wrote %d blocks before its head had a chunk file", n)
	}
	// The disk fills up: the store turns compactions off too.
	raw.DisableCompactions()
	// Half an hour of another series an hour before the head's end is out
	// of order for the head: its chunks are written to a chunk file at the
	// commit.
	appendRange(t, s, series("load5", "m1"), base.Add(90*time.Minute), 1800, time.Second, v)
	for end := time.Now().Add(5 * time.Second); raw.gate.isWaiting(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the gate still waits 5 s after the head wrote a chunk file")
		}
	}
	appendRange(t, s, series("load1", "m1"), base.Add(3*time.Hour), 1, time.Second, v)
	if n := blocksWithin(1500 * time.Millisecond); n != 0 {
		t.Fatalf("the raw tier wrote %d blocks while the disk was full", n)
	}
	// Space again: compactions run at the next commit.
	raw.EnableCompactions()
	appendRange(t, s, series("load1", "m1"), base.Add(3*time.Hour+time.Second), 1, time.Second, v)
	if n := blocksWithin(10 * time.Second); n == 0 {
		t.Fatal("no block written 10 s after compactions were turned back on")
	}
	// The answers are whole across the compaction.
	res := mustQuery(t, s, Query{Metric: "load1", Machine: "m1", From: base, To: base.Add(3*time.Hour + time.Second), Step: time.Second})
	if len(res.Series) != 1 || len(res.Series[0].Points) != 3*3600+2 {
		t.Fatalf("load1 after the compaction: %d series, want 1 of %d points", len(res.Series), 3*3600+2)
	}
}

// TestOutOfOrderCompactionLosesNoCommit commits out-of-order samples
// (a replay: many series, each commit filling one series' out-of-order
// chunk) while the raw tier compacts its head hour after hour, each time
// with its out-of-order head. Every sample whose commit succeeded must be
// read back: the TSDB's out-of-order compaction, left to itself, drops the
// chunks a commit writes during its visit of the series (rawcompact.go).
func TestOutOfOrderCompactionLosesNoCommit(t *testing.T) {
	// Unpaced head writes: the pace is not the point here.
	s, _ := openTest(t, "", base, func(o *Options) { o.RollupDuty = 1 })
	raw, ok := s.raw.(*Tier)
	if !ok {
		t.Skip("the VM engine's raw tier has no out-of-order head (SYSMONSTM_TEST_ENGINE=vm)")
	}
	const (
		nSeries   = 4000
		perCommit = 40 // past the 32 samples of an out-of-order chunk
		rounds    = 4
	)
	ctx := context.Background()
	names := make([]labels.Labels, nSeries)
	for i := range names {
		names[i] = series("app_replayed", fmt.Sprintf("m%05d", i))
	}
	clock := series("app_clock", "now")
	var headMax atomic.Int64
	advance := func(to time.Time) {
		t.Helper()
		headMax.Store(to.UnixMilli())
		app := raw.Appender(ctx)
		if _, err := app.Append(0, clock, to.UnixMilli(), 1); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	advance(base.Add(time.Hour))

	// Each round the head's newest sample moves an hour on, which makes
	// the head compactable, and a replay commits each series' samples of
	// 100 minutes before it (out of order for the head, inside the
	// out-of-order window), one commit per series (each fills an
	// out-of-order chunk), in reverse label order (the compaction visits
	// them in label order), while the head is compacted.
	accepted := make([]int, nSeries)
	for r := range rounds {
		advance(base.Add(time.Duration(r+2)*time.Hour + time.Minute))
		from := headMax.Load() - (100 * time.Minute).Milliseconds()
		replayed := make(chan struct{})
		go func() {
			defer close(replayed)
			for i := nSeries - 1; i >= 0; i-- {
				app := raw.Appender(ctx)
				n := 0
				for k := range perCommit {
					if _, err := app.Append(0, names[i], from+int64(k)*1000, float64(k)); err == nil {
						n++
					}
				}
				if err := app.Commit(); err == nil {
					accepted[i] += n
				}
			}
		}()
		if err := raw.Compact(ctx); err != nil {
			t.Fatalf("round %d: compact: %v", r, err)
		}
		<-replayed
	}
	if len(raw.Blocks()) == 0 {
		t.Fatal("no block written: the head was never compacted")
	}

	got := tierDump(t, raw)
	lost, total := 0, 0
	for i, ls := range names {
		total += accepted[i]
		if n := len(got[ls.String()]); n != accepted[i] {
			if lost == 0 {
				t.Errorf("%s: %d samples committed, %d read back", ls, accepted[i], n)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d series lost samples", lost, nSeries)
	}
	t.Logf("%d samples committed out of order over %d head compactions, all read back", total, rounds)
}

// TestOutOfOrderCompactionOnlyAfterLateSamples: the raw tier's head
// compactions run the out-of-order compaction (which holds the commits)
// the first time, then only when samples were appended out of order since.
func TestOutOfOrderCompactionOnlyAfterLateSamples(t *testing.T) {
	s, _ := openTest(t, "", base, func(o *Options) { o.RollupDuty = 1 })
	raw, ok := s.raw.(*Tier)
	if !ok {
		t.Skip("the VM engine's raw tier has no out-of-order head (SYSMONSTM_TEST_ENGINE=vm)")
	}
	raw.DisableCompactions() // only the Compact calls below
	ctx := context.Background()
	load := series("load1", "m1")
	v := func(i int) float64 { return float64(i % 17) }
	compact := func(want int) {
		t.Helper()
		if err := raw.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		if raw.gate.oooRuns != want {
			t.Fatalf("%d out-of-order compactions, want %d", raw.gate.oooRuns, want)
		}
	}
	appendRange(t, s, load, base, 3*3600/10, 10*time.Second, v)
	compact(1) // the first: the count at open is not known to be compacted
	appendRange(t, s, load, base.Add(3*time.Hour), 3600/10, 10*time.Second, v)
	compact(1) // nothing late since
	// A late sample an hour and a half back, then the next hour.
	appendRange(t, s, series("load5", "m1"), base.Add(150*time.Minute), 1, time.Second, v)
	appendRange(t, s, load, base.Add(4*time.Hour), 3600/10, 10*time.Second, v)
	compact(2)
	if n, _ := raw.gate.metrics.oooTotal(); n == 0 {
		t.Fatal("the late sample was not counted out of order")
	}
	got := tierDump(t, raw)[series("load5", "m1").String()]
	if len(got) != 1 {
		t.Fatalf("the late sample read back %d times, want once", len(got))
	}
}

// TestRawCompactionFailuresCounted: a raw head compaction that fails (its
// block cannot be written) counts in the raw tier's
// prometheus_tsdb_compactions_failed_total, as the TSDB's own loop counted
// before the gate ran the compactions; one stopped (compactions turned
// off) does not.
func TestRawCompactionFailuresCounted(t *testing.T) {
	skipUnlessTSDB(t) // the VM engine compacts on its own
	reg := prometheus.NewRegistry()
	errDisk := errors.New("disk on fire")
	var fail atomic.Bool
	s, _ := openTest(t, "", base, func(o *Options) {
		o.Registerer = reg
		o.tune = func(tier string, to *tsdb.Options) {
			if tier != "raw" {
				return
			}
			inner := to.NewCompactorFunc
			to.NewCompactorFunc = func(ctx context.Context, r prometheus.Registerer, l *slog.Logger, ranges []int64, pool chunkenc.Pool, o *tsdb.Options) (tsdb.Compactor, error) {
				c, err := inner(ctx, r, l, ranges, pool, o)
				return failingWrites{Compactor: c, fail: &fail, err: errDisk}, err
			}
		}
	})
	raw := rawTSDB(t, s)
	raw.DisableCompactions() // only the Compact below
	appendRange(t, s, series("load1", "m1"), base, 3*3600, 10*time.Second, func(i int) float64 { return float64(i) })
	failed := func() float64 {
		t.Helper()
		return testutil.Counter(t, reg, compactionsFailedName, "tier", "raw")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := raw.Compact(ctx); !errors.Is(err, context.Canceled) || failed() != 0 {
		t.Fatalf("a stopped compaction: %v, counted %v; want context.Canceled, not counted", err, failed())
	}
	fail.Store(true)
	if err := raw.Compact(context.Background()); !errors.Is(err, errDisk) {
		t.Fatalf("compaction with a failing block write: %v, want %v", err, errDisk)
	}
	if n := failed(); n != 1 {
		t.Fatalf("%s{tier=\"raw\"} = %v after one failed compaction, want 1", compactionsFailedName, n)
	}
	fail.Store(false)
	if err := raw.Compact(context.Background()); err != nil || len(raw.Blocks()) == 0 {
		t.Fatalf("compaction once the block writes again: %v, %d blocks", err, len(raw.Blocks()))
	}
	if n := failed(); n != 1 {
		t.Fatalf("%s{tier=\"raw\"} = %v after a compaction that worked, want still 1", compactionsFailedName, n)
	}
}

// failingWrites is a compactor whose head writes fail while fail is set.
type failingWrites struct {
	tsdb.Compactor
	fail *atomic.Bool
	err  error
}

func (c failingWrites) Write(dest string, b tsdb.BlockReader, mint, maxt int64, base *tsdb.BlockMeta) ([]ulid.ULID, error) {
	if c.fail.Load() {
		return nil, c.err
	}
	return c.Compactor.Write(dest, b, mint, maxt, base)
}
