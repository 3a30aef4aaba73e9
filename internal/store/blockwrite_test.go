package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

type tv struct {
	t int64
	v float64
}

// A block batch's blocks hold exactly what was committed: series in label
// order (also where the order turns on the __rollup__ label), chunks of at
// most batchChunkSamples samples cut at every block boundary, one block per
// window, rolled-back samples and series left out, a series appended twice
// merged with its overlap refused.
func TestBlockBatchWritesCommittedSeries(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	const window = 2 * hourMs
	b, err := s.newBatch(window)
	if err != nil {
		t.Fatal(err)
	}
	t0 := ms(base)
	want := map[string][]tv{}
	app := func(ref storage.SeriesRef, ls labels.Labels, ts int64, v float64) storage.SeriesRef {
		t.Helper()
		r, err := b.Append(ref, ls, ts, v)
		if err != nil {
			t.Fatalf("append %s @%d: %v", ls, ts, err)
		}
		return r
	}
	kinds := []string{"sum", "min", "count", "max"}
	var cpuRef storage.SeriesRef
	// Rollup-like series in an order that is not the labels' order: the
	// __rollup__ label sorts before machine, so the 4 kinds of m1 and m2
	// interleave in the index.
	for _, m := range []string{"m2", "m1"} {
		for _, k := range kinds {
			ls := labels.FromStrings(labels.MetricName, "cpu", rollupLabel, k, "machine", m)
			var ref storage.SeriesRef
			// 300 minutes from 30 minutes past t0: crosses two window
			// boundaries between 120-sample cuts.
			for i := range 300 {
				ts, v := t0+int64(30+i)*minuteMs, float64(i)+0.25
				ref = app(ref, ls, ts, v)
				want[ls.String()] = append(want[ls.String()], tv{ts, v})
			}
			cpuRef = ref
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	// Refused samples leave the series as it was.
	ls := labels.FromStrings(labels.MetricName, "cpu", rollupLabel, "max", "machine", "m1")
	if _, err := b.Append(0, ls, t0+30*minuteMs, 1); err != nil {
		t.Fatal(err) // a second series of the same labels: merged at write
	}
	r, _ := b.Append(0, labels.FromStrings(labels.MetricName, "late", "machine", "m1"), t0+10, 1)
	if _, err := b.Append(r, labels.EmptyLabels(), t0+10, 2); !errors.Is(err, storage.ErrDuplicateSampleForTimestamp) {
		t.Fatalf("same timestamp: %v, want a duplicate", err)
	}
	if _, err := b.Append(r, labels.EmptyLabels(), t0+5, 2); !errors.Is(err, storage.ErrOutOfOrderSample) {
		t.Fatalf("older timestamp: %v, want out of order", err)
	}
	want["{__name__=\"late\", machine=\"m1\"}"] = []tv{{t0 + 10, 1}}
	// The duplicate's t0 sample overlaps the first series: refused at write.
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	// Rolled back: a new series and more samples of an old one.
	r2 := app(0, labels.FromStrings(labels.MetricName, "gone", "machine", "m1"), t0, 1)
	app(r2, labels.EmptyLabels(), t0+1, 1)
	app(r, labels.EmptyLabels(), t0+20, 3)
	for i := range 200 { // spills a chunk, which the rollback drops
		app(cpuRef, labels.EmptyLabels(), t0+int64(330+i)*minuteMs, 1)
	}
	if err := b.Rollback(); err != nil {
		t.Fatal(err)
	}
	app(r, labels.EmptyLabels(), t0+30, 4) // after the rollback, again
	want["{__name__=\"late\", machine=\"m1\"}"] = append(want["{__name__=\"late\", machine=\"m1\"}"], tv{t0 + 30, 4})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	app(r, labels.EmptyLabels(), t0+40, 5) // never committed: not written

	dir := t.TempDir()
	ids, dropped, err := b.write(context.Background(), dir, s.tsdbLog)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 1 {
		t.Errorf("dropped %d samples of the twice-appended series, want 1", dropped)
	}
	if len(ids) != 3 {
		t.Fatalf("%d blocks for 300 minutes from a window's start, want 3", len(ids))
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("batch directory left behind: %v", err)
	}
	got := map[string][]tv{}
	var lastMax int64 = math.MinInt64
	for _, id := range ids {
		blk, err := tsdb.OpenBlock(s.tsdbLog, filepath.Join(dir, id), chunkenc.NewPool(), nil)
		if err != nil {
			t.Fatalf("open block %s: %v", id, err)
		}
		m := blk.Meta()
		if m.MinTime%window != 0 || m.MaxTime != m.MinTime+window || m.MinTime < lastMax {
			t.Errorf("block %s covers [%d, %d), want a window of its own", id, m.MinTime, m.MaxTime)
		}
		lastMax = m.MaxTime
		samples := checkBlock(t, blk, got)
		if m.Stats.NumSamples != samples || m.Stats.NumSeries == 0 || m.Stats.NumChunks == 0 {
			t.Errorf("block %s: stats %+v, read %d samples", id, m.Stats, samples)
		}
		_ = blk.Close()
	}
	if len(got) != len(want) {
		t.Errorf("read %d series, want %d", len(got), len(want))
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("series %s: read %d samples, want %d (%v…)", k, len(got[k]), len(w), got[k][:min(3, len(got[k]))])
		}
	}
}

// checkBlock reads every series of blk into got and checks the index's
// order and each chunk's size and window; it returns the samples read.
func checkBlock(t *testing.T, blk *tsdb.Block, got map[string][]tv) uint64 {
	t.Helper()
	m := blk.Meta()
	q, err := tsdb.NewBlockChunkQuerier(blk, m.MinTime, m.MaxTime-1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	var prev labels.Labels
	var n uint64
	for set.Next() {
		ser := set.At()
		if labels.Compare(prev, ser.Labels()) >= 0 && !prev.IsEmpty() {
			t.Errorf("series %s after %s", ser.Labels(), prev)
		}
		prev = ser.Labels()
		it := ser.Iterator(nil)
		for it.Next() {
			c := it.At()
			if k := c.Chunk.NumSamples(); k > batchChunkSamples {
				t.Errorf("chunk of %d samples", k)
			}
			if c.MinTime < m.MinTime || c.MaxTime >= m.MaxTime {
				t.Errorf("chunk [%d, %d] outside its block [%d, %d)", c.MinTime, c.MaxTime, m.MinTime, m.MaxTime)
			}
			n += readChunk(t, c, ser.Labels().String(), got)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func readChunk(t *testing.T, c chunks.Meta, key string, got map[string][]tv) uint64 {
	var n uint64
	ci := c.Chunk.Iterator(nil)
	for ci.Next() == chunkenc.ValFloat {
		ts, v := ci.At()
		got[key] = append(got[key], tv{ts, v})
		n++
	}
	if err := ci.Err(); err != nil {
		t.Fatal(err)
	}
	if ts := got[key][len(got[key])-1].t; ts != c.MaxTime {
		t.Errorf("%s: chunk ends at %d, meta says %d", key, ts, c.MaxTime)
	}
	return n
}

// A batch that fails to write leaves nothing in the staging directory but
// what was complete, and its own directory goes.
func TestBlockBatchCancelled(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	b, err := s.newBatch(2 * hourMs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if _, err := b.Append(0, labels.FromStrings(labels.MetricName, "x", "i", fmt.Sprint(i)), ms(base), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	ids, _, err := b.write(ctx, dir, s.tsdbLog)
	if !errors.Is(err, context.Canceled) || len(ids) != 0 {
		t.Fatalf("write after cancel: %v, %d blocks", err, len(ids))
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the staging directory: %v", left)
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("batch directory left behind: %v", err)
	}
}
