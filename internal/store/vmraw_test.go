package store

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	// "Crash": stop the checkpoint loop and drop the store without
	// closing the engine's WAL cleanly, then open the directory anew.
	close(vm.stop)
	<-vm.done
	if err := vm.wal.Close(); err != nil {
		t.Fatal(err)
	}
	vm.st.MustClose()
	if err := errors.Join(s.tier1m.Close(), s.tier1h.Close()); err != nil {
		t.Fatal(err)
	}
	s.closed = true // t.Cleanup's Close must not touch it again

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
