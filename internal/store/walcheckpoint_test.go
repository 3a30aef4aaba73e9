package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// testWAL writes a WAL of 32-KiB segments to dir: a checkpoint of the
// first 40 series (as an earlier truncation leaves), then 100 series
// records and, per minute of 0..120, one record of two samples of each
// series in that minute and one of a late sample (ten minutes back), and a
// tombstone at minute 30 (to minute 80); extra records go right after the series. It
// returns the open WAL.
func testWAL(t *testing.T, dir string, extra ...[]byte) *wlog.WL {
	t.Helper()
	var enc record.Encoder
	refs := func(from, to int) []record.RefSeries {
		var s []record.RefSeries
		for i := from; i < to; i++ {
			s = append(s, record.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))})
		}
		return s
	}
	cp, err := wlog.NewSize(nil, nil, wlog.CheckpointDir(dir, 2), 64<<10, tierWALCompression)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Log(enc.Series(refs(0, 40), nil)); err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := wlog.NewSize(nil, nil, dir, 32<<10, tierWALCompression)
	if err != nil {
		t.Fatal(err)
	}
	// The WAL's segments start after the checkpoint's 2.
	for range 3 {
		if _, err := w.NextSegment(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := os.Remove(wlog.SegmentName(dir, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Log(append([][]byte{enc.Series(refs(40, 100), nil)}, extra...)...); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2)) // values Snappy cannot shrink
	for m := range 121 {
		var now, late []record.RefSample
		for i := range 100 {
			now = append(now, record.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: int64(m) * 60_000, V: rnd.Float64()},
				record.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: int64(m)*60_000 + 20_000, V: rnd.Float64()})
			late = append(late, record.RefSample{Ref: chunks.HeadSeriesRef(i + 1), T: int64(m-10)*60_000 + 30_000, V: rnd.Float64()})
		}
		if err := w.Log(enc.Samples(now, nil), enc.Samples(late, nil)); err != nil {
			t.Fatal(err)
		}
		if m == 30 {
			stone := []tombstones.Stone{{Ref: storage.SeriesRef(7), Intervals: tombstones.Intervals{{Mint: 0, Maxt: 80 * 60_000}}}}
			if err := w.Log(enc.Tombstones(stone, nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// walContent is what a WAL replay reads: the last checkpoint, then the
// segments after it.
type walContent struct {
	series  map[chunks.HeadSeriesRef]string
	samples map[chunks.HeadSeriesRef][]record.RefSample
	stones  []tombstones.Stone
}

func readWAL(t *testing.T, dir string) walContent {
	t.Helper()
	c := walContent{series: map[chunks.HeadSeriesRef]string{}, samples: map[chunks.HeadSeriesRef][]record.RefSample{}}
	var ranges []wlog.SegmentRange
	from := 0
	if cp, idx, err := wlog.LastCheckpoint(dir); err == nil {
		ranges = append(ranges, wlog.SegmentRange{Dir: cp, First: 0, Last: 1 << 30})
		from = idx + 1
	} else if !errors.Is(err, record.ErrNotFound) {
		t.Fatal(err)
	}
	ranges = append(ranges, wlog.SegmentRange{Dir: dir, First: from, Last: -1})
	sr, err := wlog.NewSegmentsRangeReader(ranges...)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	dec := record.NewDecoder(labels.NewSymbolTable(), slog.New(slog.DiscardHandler))
	r := wlog.NewReader(sr)
	for r.Next() {
		rec := r.Record()
		switch dec.Type(rec) {
		case record.Series:
			ss, err := dec.Series(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				c.series[s.Ref] = s.Labels.String()
			}
		case record.Samples:
			ss, err := dec.Samples(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				c.samples[s.Ref] = append(c.samples[s.Ref], s)
			}
		case record.Tombstones:
			ts, err := dec.Tombstones(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.stones = append(c.stones, ts...)
		default:
			t.Fatalf("record type %v", dec.Type(rec))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.samples {
		slices.SortFunc(s, func(a, b record.RefSample) int { return int(a.T - b.T) })
	}
	return c
}

// tsdbCheckpoint checkpoints w as Head.truncateWAL does (keeping every
// series), and returns the segment it checkpointed to.
func tsdbCheckpoint(t *testing.T, w *wlog.WL, mint int64) int {
	t.Helper()
	first, last, err := wlog.Segments(w.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.NextSegment(); err != nil {
		t.Fatal(err)
	}
	last = first + (last-1-first)*2/3
	if last <= first {
		t.Fatalf("segments %d..: the TSDB would not checkpoint", first)
	}
	keep := func(chunks.HeadSeriesRef) bool { return true }
	if _, err := wlog.Checkpoint(slog.New(slog.DiscardHandler), w, first, last, keep, mint, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(last + 1); err != nil {
		t.Fatal(err)
	}
	if err := wlog.DeleteCheckpoints(w.Dir(), last); err != nil {
		t.Fatal(err)
	}
	return last
}

// TestWALCheckpointAsTheTSDBWrites checkpoints the same WAL twice: as the
// TSDB alone does after a head compaction, and with the store's paced
// checkpoint first (the TSDB's then starts from it). Both leave the same
// series, samples and tombstones to a replay, and the store's checkpoint
// rested between records and took all the segments the TSDB would.
func TestWALCheckpointAsTheTSDBWrites(t *testing.T) {
	const mint = 60 * 60_000 // the head's block ended at minute 60
	alone, paced := t.TempDir(), t.TempDir()
	wa, wp := testWAL(t, alone), testWAL(t, paced)
	defer wa.Close()
	defer wp.Close()
	first, last, err := wlog.Segments(paced)
	if err != nil || last-first < 10 {
		t.Fatalf("segments %d..%d (%v): want a WAL of many segments", first, last, err)
	}

	orig := readWAL(t, paced)
	tsdbCheckpoint(t, wa, mint)

	steps := 0
	c, err := newWALCheckpoint(paced, mint, func() error { steps++; return nil }, slog.New(slog.DiscardHandler))
	if err != nil || c == nil {
		t.Fatalf("store checkpoint: %v, %v", c, err)
	}
	if err := c.run(); err != nil {
		t.Fatal(err)
	}
	dir, err := c.commit()
	if err != nil {
		t.Fatal(err)
	}
	_, target, _, _ := walCheckpointTarget(paced)
	if dir != wlog.CheckpointDir(paced, target) {
		t.Fatalf("store checkpoint %q, want %q (the TSDB's target)", dir, wlog.CheckpointDir(paced, target))
	}
	if steps < 100 {
		t.Fatalf("the store's checkpoint rested %d times: want one step per record", steps)
	}
	if _, err := os.Stat(filepath.Join(paced, walCheckpointTmp)); !os.IsNotExist(err) {
		t.Fatalf("temporary checkpoint left behind: %v", err)
	}
	// Before the TSDB's: a replay reads the same as after it.
	mid := readWAL(t, paced)
	if to := tsdbCheckpoint(t, wp, mint); to != target {
		t.Fatalf("the TSDB checkpointed to %d, the store to %d", to, target)
	}

	want, got := readWAL(t, alone), readWAL(t, paced)
	for name, c := range map[string]walContent{"after the store's and the TSDB's": got, "after the store's alone": mid} {
		if !maps.Equal(c.series, want.series) || len(c.series) != 100 {
			t.Errorf("%s checkpoint: %d series, want the TSDB's %d", name, len(c.series), len(want.series))
		}
		if !maps.EqualFunc(c.samples, want.samples, slices.Equal) {
			t.Errorf("%s checkpoint: the samples differ from the TSDB's alone", name)
		}
		if len(c.stones) != len(want.stones) || len(want.stones) != 1 {
			t.Errorf("%s checkpoint: %d tombstones, the TSDB's %d; want 1", name, len(c.stones), len(want.stones))
		}
	}
	// It dropped what was before mint.
	if n, m := walSamples(got), walSamples(orig); n >= m || n < 100*60 {
		t.Errorf("%d samples left of %d: want those before mint dropped", n, m)
	}
}

func walSamples(c walContent) int {
	n := 0
	for _, s := range c.samples {
		n += len(s)
	}
	return n
}

// TestWALCheckpointLeavesOtherRecordsToTheTSDB: a WAL with a record the
// store's checkpoint does not write (an exemplar) is left as it was.
func TestWALCheckpointLeavesOtherRecordsToTheTSDB(t *testing.T) {
	dir := t.TempDir()
	var enc record.Encoder
	w := testWAL(t, dir, enc.Exemplars([]record.RefExemplar{{Ref: 1, T: 1, V: 1, Labels: labels.FromStrings("trace", "x")}}, nil))
	defer w.Close()
	before := readDir(t, dir)
	c, err := newWALCheckpoint(dir, 60*60_000, func() error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil || c == nil {
		t.Fatalf("store checkpoint: %v, %v", c, err)
	}
	if err := c.run(); !errors.Is(err, errWALRecord) {
		t.Fatalf("checkpoint of a WAL with an exemplar: %v, want errWALRecord", err)
	}
	c.abort()
	if after := readDir(t, dir); !slices.Equal(after, before) {
		t.Fatalf("the WAL directory went from %v to %v", before, after)
	}
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestHeadCompactionCheckpointsWALPaced compacts a raw head of 100
// minutes through the store (paced), whose WAL of small segments the store
// then checkpoints before the TSDB does: the TSDB's checkpoint starts from
// the store's, the WAL is truncated as the TSDB alone would, and a store
// opened on a copy of the directory as it is then (block, checkpoint,
// segments: a killed hub's) reads back every sample.
func TestHeadCompactionCheckpointsWALPaced(t *testing.T) {
	dir := t.TempDir()
	opts := func(o *Options) {
		o.RollupDuty = 0.5
		o.tune = func(tier string, o *tsdb.Options) {
			if tier == "raw" {
				o.WALSegmentSize = 32 << 10
			}
		}
	}
	s, _ := openTest(t, dir, base, opts)
	raw, ok := s.raw.(*Tier)
	if !ok {
		t.Skip("the VM engine's raw tier writes its own checkpoints (SYSMONSTM_TEST_ENGINE=vm)")
	}
	raw.DisableCompactions() // only the Compact below
	const nSeries, steps = 200, 600
	names := make([]labels.Labels, nSeries)
	for i := range names {
		names[i] = series("load1", fmt.Sprintf("m%03d", i))
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	want := map[string][]float64{}
	for k := range steps { // every 10 s for 100 minutes, a commit each
		app := s.Appender(context.Background())
		ts := base.Add(time.Duration(k) * 10 * time.Second).UnixMilli()
		for _, ls := range names {
			v := rnd.Float64()
			if _, err := app.Append(0, ls, ts, v); err != nil {
				t.Fatal(err)
			}
			want[ls.String()] = append(want[ls.String()], v)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	walDir := filepath.Join(raw.Dir(), "wal")
	first, last, err := wlog.Segments(walDir)
	if err != nil || last-first < 20 {
		t.Fatalf("segments %d..%d (%v): want a WAL of many segments", first, last, err)
	}
	if err := raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if raw.gate.walCheckpoints != 1 || len(raw.Blocks()) == 0 {
		t.Fatalf("%d store checkpoints, %d blocks: want the head's block and a checkpoint", raw.gate.walCheckpoints, len(raw.Blocks()))
	}
	_, idx, err := wlog.LastCheckpoint(walDir)
	if err != nil {
		t.Fatal(err)
	}
	// The TSDB's own rule, from the segments before it ran.
	if first2, _, _ := wlog.Segments(walDir); idx < first+(last-1-first)*2/3 || first2 != idx+1 {
		t.Fatalf("checkpoint %d, segments from %d: want the segments to %d checkpointed and gone", idx, first2, first+(last-1-first)*2/3)
	}
	// A copy of the directory as it is, as a killed hub leaves it (a
	// clean close would write the head's chunks out, and a reopened
	// store would not need the WAL for them).
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s, _ = openTest(t, crashed, base, opts)
	got := map[string][]float64{}
	for name, samples := range tierDump(t, s.raw.(*Tier)) {
		for _, sv := range samples {
			got[name] = append(got[name], math.Float64frombits(sv[1]))
		}
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		n := 0
		for _, v := range got {
			n += len(v)
		}
		t.Fatalf("after a kill: %d series, %d samples read back; want %d × %d as written", len(got), n, nSeries, steps)
	}
}
