package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// overlappingBlocks writes n blocks over the same hour, each with its own
// 50 series of 60 minute samples, as a rollup pass's batches are, and
// returns their directories.
func overlappingBlocks(t *testing.T, dir string, n int) []string {
	t.Helper()
	var dirs []string
	for b := range n {
		var series []storage.Series
		for i := range 50 {
			var ss []chunks.Sample
			for m := range 60 {
				ss = append(ss, fsample{t: int64(m) * 60_000, f: float64(b*1000 + i*60 + m)})
			}
			series = append(series, storage.NewListSeries(labels.FromStrings("__name__", "load1", "machine", "m"+strconv.Itoa(b), "i", strconv.Itoa(i)), ss))
		}
		d, err := tsdb.CreateBlock(series, dir, int64(time.Hour/time.Millisecond), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// compactWith merges the blocks under a fresh copy of n overlapping blocks
// with populate and returns every series and sample of the result.
func compactWith(t *testing.T, n int, populate tsdb.BlockPopulator) (map[string][]float64, error) {
	t.Helper()
	dir := t.TempDir()
	dirs := overlappingBlocks(t, dir, n)
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, slog.New(slog.DiscardHandler), []int64{int64(time.Hour / time.Millisecond)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.CompactWithBlockPopulator(dir, dirs, nil, populate)
	if err != nil {
		return nil, err
	}
	if len(ids) != 1 {
		t.Fatalf("compaction made %d blocks, want 1", len(ids))
	}
	return blockFloats(t, filepath.Join(dir, ids[0].String())), nil
}

// blockFloats returns every load1 series of the block in dir and its
// samples' values.
func blockFloats(t *testing.T, dir string) map[string][]float64 {
	t.Helper()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := tsdb.NewBlockQuerier(b, 0, int64(time.Hour/time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]float64{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "load1"))
	for set.Next() {
		s := set.At()
		it := s.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], v)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPaced fails t unless a paced write of 300 series of 1 ms of work
// each rested after every 10th (a 10-ms slice), each rest 3× the slice,
// and wrote the same block as unpaced.
func checkPaced(t *testing.T, what string, rests []time.Duration, wantRests int, got, want map[string][]float64) {
	t.Helper()
	if len(rests) != wantRests {
		t.Fatalf("the %s rested %d times, want %d (1 ms of work per series read or compared, a rest every 10-ms slice)", what, len(rests), wantRests)
	}
	for _, d := range rests {
		if d < 3*paceSlice {
			t.Fatalf("rests %v: each wants to be 3× the slice worked before it", rests)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the paced %s's block differs from the unpaced one's", what)
	}
}

// fakeWork is a clock that advances a millisecond each time it is read:
// for a pacer that reads it once per series, each series is 1 ms of work.
func fakeWork() func() time.Time {
	clk := base
	return func() time.Time {
		clk = clk.Add(time.Millisecond)
		return clk
	}
}

func TestCompactionRestsBetweenSeries(t *testing.T) {
	defer func(n uint) { paceEvery = n }(paceEvery)
	paceEvery = 1

	want, err := compactWith(t, 6, tsdb.DefaultBlockPopulator{})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 300 {
		t.Fatalf("unpaced merge holds %d series, want 300", len(want))
	}

	var rests []time.Duration
	paced := pacedPopulator{duty: DefaultRollupDuty, now: fakeWork(), sleep: func(_ context.Context, d time.Duration) error {
		rests = append(rests, d)
		return nil
	}}
	got, err := compactWith(t, 6, paced)
	if err != nil {
		t.Fatal(err)
	}
	checkPaced(t, "merge", rests, 30, got, want)

	// Duty 1: no rest.
	rests = nil
	paced.duty = 1
	if _, err := compactWith(t, 6, paced); err != nil || len(rests) != 0 {
		t.Fatalf("duty 1: err %v, %d rests; want no rest", err, len(rests))
	}

	// A rest ended by the context (the tier closing) ends the merge with
	// its error, and leaves no block behind.
	paced = pacedPopulator{duty: DefaultRollupDuty, now: fakeWork(), sleep: func(context.Context, time.Duration) error { return context.Canceled }}
	dir := t.TempDir()
	dirs := overlappingBlocks(t, dir, 6)
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, slog.New(slog.DiscardHandler), []int64{int64(time.Hour / time.Millisecond)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompactWithBlockPopulator(dir, dirs, nil, paced); !errors.Is(err, context.Canceled) {
		t.Fatalf("a merge stopped in its rest returned %v, want context.Canceled", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatal(fmt.Sprintf("after a stopped merge the directory holds %v, want the 6 input blocks only", names))
	}
}

// TestHeadWriteRestsBetweenSeries writes a raw head's range as a block
// through pacedHead: it rests every 10-ms slice of series read or compared
// in its sort (3× the slice at the default duty), writes the same block as
// the unpaced head,
// and a rest ended by the context ends the write with no block left.
func TestHeadWriteRestsBetweenSeries(t *testing.T) {
	defer func(n uint) { paceEvery = n }(paceEvery)
	paceEvery = 1
	hour := int64(time.Hour / time.Millisecond)
	db := openRawTier(t, 64)
	t.Cleanup(func() { _ = db.Close() })
	app := db.Appender(context.Background())
	for i := range 300 {
		ls := labels.FromStrings("__name__", "load1", "i", strconv.Itoa(i))
		for m := range 60 {
			if _, err := app.Append(0, ls, int64(m)*60_000, float64(i*60+m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	rh := tsdb.NewRangeHeadWithIsolationDisabled(db.Head(), 0, hour-1)
	write := func(b tsdb.BlockReader) (map[string][]float64, error) {
		t.Helper()
		dir := t.TempDir()
		c, err := tsdb.NewLeveledCompactor(context.Background(), nil, slog.New(slog.DiscardHandler), []int64{hour}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := c.Write(dir, b, 0, hour, nil)
		if err != nil {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a write that failed (%v) left %d entries behind", err, len(entries))
			}
			return nil, err
		}
		return blockFloats(t, filepath.Join(dir, ids[0].String())), nil
	}
	want, err := write(rh)
	if err != nil || len(want) != 300 {
		t.Fatalf("unpaced head write: %d series, err %v; want 300", len(want), err)
	}

	var rests []time.Duration
	paced := pacedHead{RangeHead: rh, ctx: context.Background(), duty: DefaultRollupDuty, now: fakeWork(), sleep: func(_ context.Context, d time.Duration) error {
		rests = append(rests, d)
		return nil
	}}
	got, err := write(paced)
	if err != nil {
		t.Fatal(err)
	}
	// Each step is 1 ms: the sort reads the 300 series and compares
	// them, then the populator reads them again.
	checkPaced(t, "head write", rests, (600+sortCompares(t, rh))/10, got, want)

	paced.now, paced.sleep = fakeWork(), func(context.Context, time.Duration) error { return context.Canceled }
	if _, err := write(paced); !errors.Is(err, context.Canceled) {
		t.Fatalf("a head write stopped in its rest returned %v, want context.Canceled", err)
	}
}

// sortCompares returns the comparisons a label sort of rh's series makes
// from the head's postings order (as pacedIndexReader.SortedPostings), and
// checks that the paced sort returns the head's own order.
func sortCompares(t *testing.T, rh *tsdb.RangeHead) int {
	t.Helper()
	ir, err := rh.Index()
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	ctx := context.Background()
	k, v := index.AllPostingsKey()
	all, err := ir.Postings(ctx, k, v)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := index.ExpandPostings(all)
	if err != nil {
		t.Fatal(err)
	}
	var b labels.ScratchBuilder
	ls := make([]labels.Labels, len(refs))
	for i, ref := range refs {
		if err := ir.Series(ref, &b, nil); err != nil {
			t.Fatal(err)
		}
		ls[i] = b.Labels()
	}
	n := 0
	slices.SortFunc(ls, func(a, b labels.Labels) int {
		n++
		return labels.Compare(a, b)
	})

	want, err := index.ExpandPostings(ir.SortedPostings(index.NewListPostings(refs)))
	if err != nil {
		t.Fatal(err)
	}
	paced := &pacedIndexReader{IndexReader: ir, restStep: newRestStep(ctx, DefaultRollupDuty, func(context.Context, time.Duration) error { return nil }, fakeWork())}
	got, err := index.ExpandPostings(paced.SortedPostings(index.NewListPostings(refs)))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("paced sort: %d series, err %v; want the head's own order of %d", len(got), err, len(want))
	}
	return n
}

// BenchmarkIndexWriterClose: the TSDB's index writer at the end of a
// head's block write, for series of loadgen's shape (a metric name, a
// machine, one more label): AddSeries for every series (paced in a hub:
// pacedIndexWriter) then Close, which reads the series back and writes
// the postings of every label in one go, unpaced. Reports the seconds of
// each.
func BenchmarkIndexWriterClose(b *testing.B) {
	for _, n := range []int{500_000, 1_000_000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			sets := make([]labels.Labels, 0, n)
			syms := map[string]struct{}{}
			for m := 0; len(sets) < n; m++ {
				for k := 0; k < 10 && len(sets) < n; k++ {
					for j := 0; j < 100 && len(sets) < n; j++ {
						ls := labels.FromStrings(labels.MetricName, fmt.Sprintf("metric_%02d", k), "machine", fmt.Sprintf("loadgen-%04d", m), "i", strconv.Itoa(j))
						ls.Range(func(l labels.Label) { syms[l.Name], syms[l.Value] = struct{}{}, struct{}{} })
						sets = append(sets, ls)
					}
				}
			}
			slices.SortFunc(sets, labels.Compare)
			sorted := slices.Sorted(maps.Keys(syms))
			for range b.N {
				w, err := index.NewWriter(context.Background(), filepath.Join(b.TempDir(), "index"))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for _, s := range sorted {
					if err := w.AddSymbol(s); err != nil {
						b.Fatal(err)
					}
				}
				for i, ls := range sets {
					if err := w.AddSeries(storage.SeriesRef(i), ls, chunks.Meta{Ref: chunks.ChunkRef(i * 100), MinTime: 0, MaxTime: 3_600_000}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(time.Since(start).Seconds(), "add_s")
				start = time.Now()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "close_s")
			}
		})
	}
}
