package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/memory"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// readRaw returns every raw sample of the series named name, by time.
func readRawValues(t *testing.T, s *Store, name string) map[int64]float64 {
	t.Helper()
	q, err := s.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	out := map[int64]float64{}
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			out[ts] = v
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVMEngineKeepsCatalogueValues checks the precision the VM engine keeps
// (docs/metrics.md): every catalogue family's values, at its decimals with
// up to 12 significant digits, and integers up to 2^53, come back bit for
// bit; other values come back within 1e-11 of the largest value of their
// series (the engine stores a block's values as integers of one decimal
// exponent, of at most 12 significant digits each).
func TestVMEngineKeepsCatalogueValues(t *testing.T) {
	s, _ := openTest(t, "", base, func(o *Options) { o.Engine = EngineVM })
	rnd := rand.New(rand.NewPCG(16, 12))
	sent := map[string]map[int64]float64{}
	app := s.Appender(context.Background())
	for _, f := range metric.Catalogue {
		d, ok := metric.Decimals(f.Name)
		if !ok {
			continue
		}
		vals := map[int64]float64{}
		for i := range 200 {
			var v float64
			switch {
			case d == 0 && i%2 == 0:
				v = float64(rnd.Int64N(1 << 53)) // bytes, counts
			default:
				digits := 1 + rnd.IntN(12) // significant digits
				k := rnd.Int64N(int64(math.Pow10(digits)))
				v = float64(k) / math.Pow10(d)
			}
			if i%3 == 0 {
				v = -v
			}
			ts := ms(base) + int64(i)*1000
			if _, err := app.Append(0, series(f.Name, "m1"), ts, v); err != nil {
				t.Fatal(err)
			}
			vals[ts] = v
		}
		sent[f.Name] = vals
	}
	// Values beyond 12 significant digits, of one magnitude per series.
	other := map[string]map[int64]float64{}
	for mag := -12; mag <= 12; mag += 4 {
		name := "custom_noise_e" + strconv.Itoa(mag)
		other[name] = map[int64]float64{}
		for i := range 300 {
			v := math.Pow10(mag) * (1 + 0.3*rnd.NormFloat64())
			ts := ms(base) + int64(i)*1000
			if _, err := app.Append(0, series(name, "m1"), ts, v); err != nil {
				t.Fatal(err)
			}
			other[name][ts] = v
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(sent) < 20 {
		t.Fatalf("only %d catalogue families with decimals", len(sent))
	}
	for name, vals := range sent {
		got := readRawValues(t, s, name)
		for ts, v := range vals {
			// -0 reads as 0 (the engine stores decimals); nothing else
			// changes by a bit.
			if g, ok := got[ts]; !ok || math.Float64bits(g) != math.Float64bits(v) && !(v == 0 && g == 0) {
				t.Fatalf("%s at %d: sent %v, read %v", name, ts, v, g)
			}
		}
	}
	for name, vals := range other {
		got := readRawValues(t, s, name)
		peak := 0.0
		for _, v := range vals {
			peak = max(peak, math.Abs(v))
		}
		for ts, v := range vals {
			if g := got[ts]; math.Abs(g-v) > 1e-11*peak {
				t.Fatalf("%s at %d: sent %v, read %v (error %.2g of the largest value)", name, ts, v, g, math.Abs(g-v)/peak)
			}
		}
	}
}

// crashVM "crashes" s, on the VM engine: it stops the checkpoints and the
// flusher and drops the store without a last checkpoint (what is staged
// is lost, the WAL is not cut), so that opening the directory anew
// replays the WAL as after a SIGKILL.
func crashVM(t *testing.T, s *Store) {
	t.Helper()
	vm := s.raw.(*vmRaw)
	close(vm.stop)
	vm.wg.Wait()
	if err := vm.wal.Close(); err != nil {
		t.Fatal(err)
	}
	vm.st.MustClose()
	if err := errors.Join(s.tier1m.Close(), s.tier1h.Close()); err != nil {
		t.Fatal(err)
	}
	s.closed = true // t.Cleanup's Close must not touch it again
}

// TestVMEngineReplayAfterCheckpoint cuts the WAL (a checkpoint), appends
// more, then reopens without Close as after a SIGKILL: every committed
// sample is there once, and series keep their refs.
func TestVMEngineReplayAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	s, clk := openTest(t, dir, now, func(o *Options) { o.Engine = EngineVM })
	vm := s.raw.(*vmRaw)
	const nSeries = 50
	ls := make([]labels.Labels, nSeries)
	refs := make([]SeriesRef, nSeries)
	for i := range ls {
		ls[i] = series("load1", "m"+strconv.Itoa(i))
	}
	write := func(from, n int) {
		for k := from; k < from+n; k++ {
			app := s.Appender(context.Background())
			for i := range ls {
				var err error
				if refs[i], err = app.Append(refs[i], ls[i], ms(now)+int64(k)*1000, float64(k*i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 100)
	clk.Set(now.Add(100 * time.Second))
	if err := vm.checkpoint(); err != nil {
		t.Fatal(err)
	}
	write(100, 50)
	// A second checkpoint forgets nothing (every series is recent) and a
	// third after an idle hour forgets them all; a sample after that
	// registers the series again.
	if err := vm.checkpoint(); err != nil {
		t.Fatal(err)
	}
	clk.Set(now.Add(vmSeriesIdle + 5*time.Minute))
	if err := vm.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := vm.NumSeries(); n != 0 {
		t.Fatalf("%d series after an idle hour, want 0", n)
	}
	write(150, 10)
	if n := vm.NumSeries(); n != nSeries {
		t.Fatalf("%d series after they came back, want %d", n, nSeries)
	}
	crashVM(t, s)

	s2, _ := openTest(t, dir, now.Add(vmSeriesIdle+10*time.Minute), func(o *Options) { o.Engine = EngineVM })
	got := readRawValues(t, s2, "load1")
	if len(got) != 160 {
		t.Fatalf("%d timestamps after replay, want 160", len(got))
	}
	q, err := s2.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "load1"))
	n := 0
	var it chunkenc.Iterator
	for set.Next() {
		n++
		i, _ := strconv.Atoi(set.At().Labels().Get("machine")[1:])
		it = set.At().Iterator(it)
		k := 0
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			if ts != ms(now)+int64(k)*1000 || v != float64(k*i) {
				t.Fatalf("%s: sample %d is (%d, %v)", set.At().Labels(), k, ts, v)
			}
			k++
		}
		if k != 160 {
			t.Fatalf("%s: %d samples, want 160", set.At().Labels(), k)
		}
	}
	if n != nSeries {
		t.Fatalf("%d series, want %d", n, nSeries)
	}

	// A clean close writes a last checkpoint with each series' newest
	// sample: after it the WAL is empty, and the next start still knows
	// every machine's newest time and refuses a changed duplicate.
	q.Close()
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if first, last, err := wlog.Segments(filepath.Join(dir, rawVMDir, "wal")); err != nil || last-first > 0 {
		t.Fatalf("WAL segments %d..%d after a clean close (%v), want one empty one", first, last, err)
	}
	s3, _ := openTest(t, dir, now.Add(vmSeriesIdle+15*time.Minute), func(o *Options) { o.Engine = EngineVM })
	newest := ms(now) + 159*1000
	if w := s3.machines["m7"]; w == nil || w.maxTs != newest {
		t.Fatalf("machine m7 after a clean restart: %+v, want newest %d", w, newest)
	}
	app := s3.Appender(context.Background())
	if _, err := app.Append(0, ls[7], newest, -1); !errors.Is(err, ErrDuplicateSample) {
		t.Fatalf("changed duplicate after a restart: %v, want ErrDuplicateSample", err)
	}
	if _, err := app.Append(0, ls[7], newest, float64(159*7)); err != nil {
		t.Fatalf("identical duplicate after a restart: %v", err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readRawValues(t, s3, "load1"); len(got) != 160 {
		t.Fatalf("%d timestamps after the restart, want 160", len(got))
	}
}

// TestVMEngineConcurrentOlderCommits commits from several goroutines at
// once, each commit older than any before, so that each moves the tier's
// start (its bounds file) while the others do: none may fail.
func TestVMEngineConcurrentOlderCommits(t *testing.T) {
	s, _ := openTest(t, "", base.Add(time.Hour), func(o *Options) { o.Engine = EngineVM })
	var next atomic.Int64
	next.Store(ms(base.Add(time.Hour)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				app := s.Appender(context.Background())
				ts := next.Add(-1000)
				if _, err := app.Append(0, series("load1", "m"+strconv.Itoa(g)), ts, 1); err != nil {
					errs <- err
					return
				}
				if err := app.Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if start, _ := s.raw.StartTime(); start != next.Load() {
		t.Fatalf("start %d, want the oldest sample %d", start, next.Load())
	}
}

type timedValue struct {
	T int64
	V float64
}

// rawSeriesSamples reads every raw sample of the one series ls, by time.
func rawSeriesSamples(s *Store, ls labels.Labels) ([]timedValue, error) {
	q, err := s.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	var ms []*labels.Matcher
	ls.Range(func(l labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value)) })
	set := q.Select(context.Background(), true, nil, ms...)
	var out []timedValue
	var it chunkenc.Iterator
	for set.Next() {
		if !labels.Equal(set.At().Labels(), ls) {
			return nil, fmt.Errorf("query for %s returned %s", ls, set.At().Labels())
		}
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			out = append(out, timedValue{ts, v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	return out, set.Err()
}

// TestVMEngineStageKeepsEverySample commits from several goroutines while
// queries run, with a stage small enough that the flusher and the
// committers' own flushes (a stage twice full) both write to the engine:
// a query sees every sample committed before it began, each series reads
// back whole; then samples still staged at a checkpoint survive a crash
// right after it (the checkpoint deleted the WAL segments that held them).
func TestVMEngineStageKeepsEverySample(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	s, _ := openTest(t, dir, start.Add(time.Hour), func(o *Options) { o.Engine = EngineVM })
	vm := s.raw.(*vmRaw)
	vm.stageMax = 400
	const writers, perWriter, commits = 4, 30, 120
	name := func(g, i int) string { return "m" + strconv.Itoa(g) + "-" + strconv.Itoa(i) }
	value := func(g, i, k int) float64 { return float64(g*1_000_000+i*1000+k) + 0.25 }
	var done [writers]atomic.Int64 // commits finished per writer
	var queries atomic.Int64       // queries finished
	querierExit := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for g := range writers {
		wg.Go(func() {
			refs := make([]SeriesRef, perWriter)
			for k := range commits {
				// The queries run among the commits however slow the
				// machine: ten of them by the last commit.
				for queries.Load() < int64(k*10/commits+1) {
					select {
					case <-querierExit:
						return
					case <-time.After(100 * time.Microsecond):
					}
				}
				app := s.Appender(context.Background())
				for i := range perWriter {
					var err error
					if refs[i], err = app.Append(refs[i], series("load1", name(g, i)), ms(start)+int64(k)*1000, value(g, i, k)); err != nil {
						errs <- err
						return
					}
				}
				if err := app.Commit(); err != nil {
					errs <- err
					return
				}
				done[g].Store(int64(k + 1))
			}
		})
	}
	stop := make(chan struct{})
	queried := make(chan int)
	go func() {
		n := 0
		defer func() { queried <- n }()
		defer close(querierExit)
		for {
			select {
			case <-stop:
				return
			default:
			}
			g := n % writers
			before := done[g].Load()
			smps, err := rawSeriesSamples(s, series("load1", name(g, n%perWriter)))
			if err != nil {
				errs <- err
				return
			}
			if got := len(smps); int64(got) < before {
				errs <- fmt.Errorf("query %d of %s read %d samples, %d were committed before it began", n, name(g, n%perWriter), got, before)
				return
			}
			n++
			queries.Store(int64(n))
		}
	}()
	wg.Wait()
	close(stop)
	if n := <-queried; n < 10 {
		t.Errorf("only %d queries ran during the commits", n)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(s *Store, commits int) {
		t.Helper()
		for g := range writers {
			for i := range perWriter {
				got, err := rawSeriesSamples(s, series("load1", name(g, i)))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != commits {
					t.Fatalf("%s: %d samples, want %d", name(g, i), len(got), commits)
				}
				for k, smp := range got {
					if smp.T != ms(start)+int64(k)*1000 || smp.V != value(g, i, k) {
						t.Fatalf("%s sample %d: %d=%v, want %d=%v", name(g, i), k, smp.T, smp.V, ms(start)+int64(k)*1000, value(g, i, k))
					}
				}
			}
		}
	}
	check(s, commits)

	// More commits than the stage flushes by itself, then a checkpoint
	// and a crash: nothing staged at the checkpoint may be lost.
	vm.stageMax = 1 << 30
	for k := commits; k < commits+20; k++ {
		app := s.Appender(context.Background())
		for g := range writers {
			for i := range perWriter {
				if _, err := app.Append(0, series("load1", name(g, i)), ms(start)+int64(k)*1000, value(g, i, k)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	vm.staged.mu.Lock()
	staged := vm.staged.batch.len()
	vm.staged.mu.Unlock()
	if staged == 0 {
		t.Fatal("nothing staged before the checkpoint: the test would not test it")
	}
	if err := vm.checkpoint(); err != nil {
		t.Fatal(err)
	}
	crashVM(t, s)
	s2, _ := openTest(t, dir, start.Add(time.Hour), func(o *Options) { o.Engine = EngineVM })
	check(s2, commits+20)
}

// TestVMEngineStaleHandleFindsItsSeries appends with the handle a series had
// before a checkpoint forgot it, after a new series took its slot: the
// sample goes to the series its labels name.
func TestVMEngineStaleHandleFindsItsSeries(t *testing.T) {
	now := time.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	s, clk := openTest(t, "", now, func(o *Options) { o.Engine = EngineVM })
	vm := s.raw.(*vmRaw)
	a, b, c := series("load1", "a"), series("load1", "b"), series("load1", "c")
	add := func(ref SeriesRef, ls labels.Labels, ts int64, v float64) SeriesRef {
		t.Helper()
		app := s.Appender(context.Background())
		ref, err := app.Append(ref, ls, ts, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	refA := add(0, a, ms(now), 1)
	refB := add(0, b, ms(now), 2)
	// b takes a sample an idle hour later, a does not: the checkpoint
	// forgets a only, and c, new, takes a's slot.
	clk.Set(now.Add(vmSeriesIdle + time.Minute))
	if got := add(refB, b, ms(now)+1000, 20); got != refB {
		t.Fatalf("b's handle changed from %#x to %#x", refB, got)
	}
	if err := vm.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := vm.NumSeries(); n != 1 {
		t.Fatalf("%d series after a's idle hour, want 1", n)
	}
	if refC := add(0, c, ms(now)+1000, 30); uint32(refC) != uint32(refA) {
		t.Fatalf("c's handle %#x is not in a's slot (a's handle %#x)", refC, refA)
	}
	add(refA, a, ms(now)+1000, 10)
	for _, w := range []struct {
		ls   labels.Labels
		want []timedValue
	}{
		{a, []timedValue{{ms(now), 1}, {ms(now) + 1000, 10}}},
		{b, []timedValue{{ms(now), 2}, {ms(now) + 1000, 20}}},
		{c, []timedValue{{ms(now) + 1000, 30}}},
	} {
		got, err := rawSeriesSamples(s, w.ls)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, w.want) {
			t.Errorf("%s: %v, want %v", w.ls, got, w.want)
		}
	}
}

// TestVMEngineStageKeepsFarApartSamples stages samples further apart than
// a staged row's 32-bit offset reaches (24.8 days), as a first replay of
// old samples next to new ones can: they wait beside the others, reach
// the engine with them, and come back from the WAL after a crash.
func TestVMEngineStageKeepsFarApartSamples(t *testing.T) {
	now := time.Now().Truncate(time.Hour)
	old := now.Add(-26 * 24 * time.Hour)
	dir := t.TempDir()
	edit := func(o *Options) { o.Engine, o.RetentionRaw = EngineVM, 60*24*time.Hour }
	s, _ := openTest(t, dir, now, edit)
	vm := s.raw.(*vmRaw)
	vm.stageMax = 1 << 30
	a, b := series("load1", "a"), series("load1", "b")
	type row = struct {
		ls labels.Labels
		tv timedValue
	}
	commit := func(rows ...row) {
		t.Helper()
		app := s.Appender(context.Background())
		for _, r := range rows {
			if _, err := app.Append(0, r.ls, r.tv.T, r.tv.V); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit(row{a, timedValue{ms(old), 1}})
	commit(row{a, timedValue{ms(old) + 1000, 2}}, row{a, timedValue{ms(now), 3}}, row{b, timedValue{ms(now) + 1000, 4}})
	vm.staged.mu.Lock()
	far := len(vm.staged.batch.far)
	vm.staged.mu.Unlock()
	if far != 2 {
		t.Fatalf("%d far rows staged, want 2: the test would not test them", far)
	}
	want := map[string][]timedValue{
		"a": {{ms(old), 1}, {ms(old) + 1000, 2}, {ms(now), 3}},
		"b": {{ms(now) + 1000, 4}},
	}
	check := func(s *Store) {
		t.Helper()
		for _, ls := range []labels.Labels{a, b} {
			got, err := rawSeriesSamples(s, ls)
			if err != nil {
				t.Fatal(err)
			}
			if w := want[ls.Get("machine")]; !slices.Equal(got, w) {
				t.Errorf("%s: %v, want %v", ls, got, w)
			}
		}
	}
	check(s)
	crashVM(t, s)
	s2, _ := openTest(t, dir, now, edit)
	check(s2)
}

// TestVMEngineCachesFollowEngineMemory: the engine sizes its caches from
// Options.EngineMemory (DefaultEngineMemory here: no test of this package
// sets another) within 60 % of the host's memory, not from that 60 %, and
// reads its files without mapping them.
func TestVMEngineCachesFollowEngineMemory(t *testing.T) {
	openTest(t, "", time.Now(), func(o *Options) { o.Engine = EngineVM })
	if got, want := int64(memory.Allowed()), engineAllowance(0, hostMemory()); got != want {
		t.Errorf("the engine's caches may take %d bytes, want %d", got, want)
	}
	// Its files are read with pread, not mapped (vmInit).
	if f := flag.Lookup("fs.disableMmap"); f == nil || f.Value.String() != "true" {
		t.Errorf("the engine maps its files for reading (fs.disableMmap %v)", f)
	}
	for _, c := range []struct{ mem, host, want int64 }{
		{0, 0, DefaultEngineMemory},
		{0, 24 << 30, DefaultEngineMemory},
		{0, 1 << 30, 1 << 30 / 10 * 6}, // a 1 GiB host: the engine's own 60 %
		{256 << 20, 1 << 30, 256 << 20},
	} {
		if got := engineAllowance(c.mem, c.host); got != c.want {
			t.Errorf("engineAllowance(%d, %d) = %d, want %d", c.mem, c.host, got, c.want)
		}
	}
	for _, c := range []struct{ budget, want int64 }{
		{0, DefaultEngineMemory},
		{512 << 20, 256 << 20},
		{8 << 30, DefaultEngineMemory},
	} {
		if got := EngineMemoryFor(c.budget); got != c.want {
			t.Errorf("EngineMemoryFor(%d) = %d, want %d", c.budget, got, c.want)
		}
	}
}

// TestVMRollupReadsMachinesInOneSearch rolls an hour of several machines
// from the VM raw tier, which reads them in one search, and again after
// that search reports a series split in two (errSeriesSplit): the pass
// drops what it rolled and reads machine by machine. Both give every
// series' minutes once, with the values written.
func TestVMRollupReadsMachinesInOneSearch(t *testing.T) {
	now := time.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	const machines, perMachine = 6, 5
	for _, split := range []bool{false, true} {
		s, clk := openTest(t, "", now, func(o *Options) { o.Engine = EngineVM })
		s.batchSeries = 24 // several blocks, cut in the middle of machines
		for m := range machines {
			for i := range perMachine {
				v := float64(m*100 + i)
				appendRange(t, s, series("cpu", "m"+strconv.Itoa(m), "core", strconv.Itoa(i)), now, 3600, time.Second,
					func(k int) float64 { return v + float64(k%60) })
			}
		}
		streamed := 0
		s.failAt = func(tier, step string) error {
			if step != "streamed" {
				return nil
			}
			streamed++
			if split && streamed == 1 {
				return errSeriesSplit
			}
			return nil
		}
		clk.Set(now.Add(time.Hour + s.opts.OutOfOrderWindow + 2*time.Minute))
		mustRollup(t, s)
		if streamed == 0 {
			t.Fatalf("split=%v: the pass did not read the machines in one search", split)
		}
		if split && streamed != 1 {
			t.Fatalf("split=%v: %d streamed passes after the split, want none", split, streamed-1)
		}
		var total uint64
		for _, b := range s.tier1m.Blocks() {
			total += b.Meta().Stats.NumSeries
		}
		if total != machines*perMachine*4 {
			t.Fatalf("split=%v: 1m blocks hold %d series, want %d", split, total, machines*perMachine*4)
		}
		res := mustQuery(t, s, Query{Metric: "cpu", From: now, To: now.Add(time.Hour - time.Millisecond), Step: time.Minute})
		if res.Tier != Tier1m || len(res.Series) != machines*perMachine {
			t.Fatalf("split=%v: %d series from %s, want %d from 1m", split, len(res.Series), res.Tier, machines*perMachine)
		}
		for _, ser := range res.Series {
			m, _ := strconv.Atoi(strings.TrimPrefix(ser.Labels.Get("machine"), "m"))
			i, _ := strconv.Atoi(ser.Labels.Get("core"))
			v := float64(m*100 + i)
			if len(ser.Points) != 60 {
				t.Fatalf("split=%v: %s has %d minutes, want 60", split, ser.Labels, len(ser.Points))
			}
			for _, p := range ser.Points {
				if p.Count != 60 || p.Min != v || p.Max != v+59 || p.Avg != v+29.5 {
					t.Fatalf("split=%v: %s minute %+v, want 60 samples from %v to %v", split, ser.Labels, p, v, v+59)
				}
			}
		}
	}
}

// TestVMEngineEmptyLabelValueIsAbsent: a label of empty value is no label
// (the engine's raw name leaves it out, as Prometheus does): {x=""} and no
// x are one series of the tier, which refuses a second value at a time.
func TestVMEngineEmptyLabelValueIsAbsent(t *testing.T) {
	now := time.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	s, _ := openTest(t, "", now, func(o *Options) { o.Engine = EngineVM })
	plain := series("load1", "a")
	// labels.Builder drops empty values itself; a ScratchBuilder keeps
	// them, as ingest's label sets do.
	b := labels.NewScratchBuilder(plain.Len() + 1)
	plain.Range(func(l labels.Label) { b.Add(l.Name, l.Value) })
	b.Add("x", "")
	b.Sort()
	withEmpty := b.Labels()
	if withEmpty.Get("x") != "" || withEmpty.Len() != plain.Len()+1 {
		t.Fatalf("test set %s has no empty x", withEmpty)
	}
	app := s.Appender(context.Background())
	ref1, err := app.Append(0, plain, ms(now), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = s.Appender(context.Background())
	ref2, err := app.Append(0, withEmpty, ms(now), 2)
	if !errors.Is(err, ErrDuplicateSample) || ref2 != ref1 {
		t.Fatalf("the set with x=\"\" appended as %#x, err %v; want the plain set's %#x and a duplicate", ref2, err, ref1)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := s.raw.(*vmRaw).NumSeries(); n != 1 {
		t.Fatalf("%d series, want 1", n)
	}
	got, err := rawSeriesSamples(s, plain)
	if err != nil {
		t.Fatal(err)
	}
	if want := []timedValue{{ms(now), 1}}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}
