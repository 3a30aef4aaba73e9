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
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// testWAL writes a WAL of 32-KiB segments to dir: a checkpoint of the
// first 40 series at segment 19 (as an earlier truncation leaves), then 100
// series records and, per minute of 0..120, one record of two samples of
// each series in that minute and one of a late sample (ten minutes back),
// and at minute 30 a tombstone (to minute 80) and two samples stamped
// minute 70; extra records go right after the series. It returns the open WAL.
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
	w := walFrom(t, dir, 20, 32<<10, refs(0, 40))
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
			// An agent whose clock is 40 minutes ahead: samples past mint
			// in a segment the checkpoint covers.
			ahead := []record.RefSample{{Ref: 3, T: 70*60_000 + 5_000, V: 1}, {Ref: 4, T: 70*60_000 + 5_000, V: 2}}
			if err := w.Log(enc.Samples(ahead, nil)); err != nil {
				t.Fatal(err)
			}
			stone := []tombstones.Stone{{Ref: storage.SeriesRef(7), Intervals: tombstones.Intervals{{Mint: 0, Maxt: 80 * 60_000}}}}
			if err := w.Log(enc.Tombstones(stone, nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// walFrom opens a WAL in dir of segments of segSize bytes whose first
// segment is first, after a checkpoint of series (as an earlier
// truncation leaves).
func walFrom(t testing.TB, dir string, first, segSize int, series []record.RefSeries) *wlog.WL {
	t.Helper()
	var enc record.Encoder
	cp, err := wlog.New(nil, nil, wlog.CheckpointDir(dir, first-1), tierWALCompression)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(series); i += 10_000 {
		if err := cp.Log(enc.Series(series[i:min(i+10_000, len(series))], nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := wlog.NewSize(nil, nil, dir, segSize, tierWALCompression)
	if err != nil {
		t.Fatal(err)
	}
	for range first {
		if _, err := w.NextSegment(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range first {
		if err := os.Remove(wlog.SegmentName(dir, i)); err != nil {
			t.Fatal(err)
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

// tsdbCheckpoint checkpoints w as Head.truncateWAL does and returns the
// segment it checkpointed to (-1: none, too few segments).
func tsdbCheckpoint(t testing.TB, w *wlog.WL, mint int64, keep func(chunks.HeadSeriesRef) bool) int {
	t.Helper()
	to, _, _ := tsdbCheckpointTimed(t, w, mint, keep)
	return to
}

// tsdbCheckpointTimed is tsdbCheckpoint, which also returns how long the
// checkpoint took, and the deletion of the segments and checkpoints it
// covers.
func tsdbCheckpointTimed(t testing.TB, w *wlog.WL, mint int64, keep func(chunks.HeadSeriesRef) bool) (int, time.Duration, time.Duration) {
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
		return -1, 0, 0
	}
	start := time.Now()
	if _, err := wlog.Checkpoint(slog.New(slog.DiscardHandler), w, first, last, keep, mint, false); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	start = time.Now()
	if err := w.Truncate(last + 1); err != nil {
		t.Fatal(err)
	}
	if err := wlog.DeleteCheckpoints(w.Dir(), last); err != nil {
		t.Fatal(err)
	}
	return last, took, time.Since(start)
}

// lastStartingBefore returns the last segment of the WAL in dir whose
// first samples (up to startSamples) are mostly before mint.
func lastStartingBefore(t *testing.T, dir string, mint int64) int {
	t.Helper()
	first, last, err := wlog.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	dec := record.NewDecoder(labels.NewSymbolTable(), slog.New(slog.DiscardHandler))
	for seg := first; seg <= last; seg++ {
		sr, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: dir, First: seg, Last: seg})
		if err != nil {
			t.Fatal(err)
		}
		var ss []record.RefSample
		for r := wlog.NewReader(sr); len(ss) < startSamples && r.Next(); {
			if dec.Type(r.Record()) == record.Samples {
				if ss, err = dec.Samples(r.Record(), ss); err != nil {
					t.Fatal(err)
				}
			}
		}
		sr.Close()
		after := 0
		for _, s := range ss {
			if s.T >= mint {
				after++
			}
		}
		if 2*after > len(ss) {
			return seg - 1
		}
	}
	t.Fatal("no segment starting after mint")
	return 0
}

// TestWALCheckpointAsTheTSDBWrites checkpoints the same WAL twice: as the
// TSDB alone does after a head compaction, and with the store's paced
// checkpoint and padding first. The store's ends at the last segment
// starting before mint, the TSDB's then reads no segment, and a replay reads
// the same series, samples at or after mint and tombstones either way.
func TestWALCheckpointAsTheTSDBWrites(t *testing.T) {
	const mint = 60 * 60_000 // the head's block ended at minute 60
	keep := func(ref chunks.HeadSeriesRef) bool { return ref != 42 }
	alone, paced := t.TempDir(), t.TempDir()
	wa, wp := testWAL(t, alone), testWAL(t, paced)
	defer wa.Close()
	defer wp.Close()
	first, last, err := wlog.Segments(paced)
	if err != nil || last-first < 10 {
		t.Fatalf("segments %d..%d (%v): want a WAL of many segments", first, last, err)
	}
	orig := readWAL(t, paced)
	cut := lastStartingBefore(t, paced, mint)
	aloneTo := tsdbCheckpoint(t, wa, mint, keep)
	if aloneTo <= cut {
		t.Fatalf("the TSDB alone checkpointed to segment %d, the first mostly after mint is %d: want it past", aloneTo, cut)
	}

	steps := 0
	_, dir := storeCheckpoint(t, paced, mint, keep, func() error { steps++; return nil })
	if dir != wlog.CheckpointDir(paced, cut) {
		t.Fatalf("store checkpoint %q, want %q (the last segment starting before mint)", dir, wlog.CheckpointDir(paced, cut))
	}
	if steps < 100 {
		t.Fatalf("the store's checkpoint rested %d times: want one step per record", steps)
	}
	if _, err := os.Stat(filepath.Join(paced, walCheckpointTmp)); !os.IsNotExist(err) {
		t.Fatalf("temporary checkpoint left behind: %v", err)
	}
	mid := readWAL(t, paced) // before the TSDB's checkpoint
	aside := &walSetAside{wal: paced, aside: filepath.Join(t.TempDir(), walCheckpointedDir), checkpoint: dir, to: cut}
	if err := aside.setAside(); err != nil {
		t.Fatal(err)
	}
	if moved := readDir(t, aside.aside); len(moved) != cut-first+1 || len(aside.moved) != len(moved) {
		t.Fatalf("set aside %d segments (%d recorded): want the %d from %d to %d", len(moved), len(aside.moved), cut-first+1, first, cut)
	}
	if aside.padded, err = padWAL(paced, cut); err != nil || len(aside.padded) == 0 {
		t.Fatalf("padWAL: %v, %v; want some segments", aside.padded, err)
	}
	if mid2 := readWAL(t, paced); !reflect.DeepEqual(mid2, mid) {
		t.Fatal("setting the segments aside and padding changed what a replay reads")
	}
	if to := tsdbCheckpoint(t, wp, mint, keep); to > cut || to < 0 {
		t.Fatalf("after padding the TSDB checkpointed to segment %d: want a checkpoint at or before the store's %d", to, cut)
	}
	if cp, idx, err := wlog.LastCheckpoint(paced); err != nil || idx != cut {
		t.Fatalf("last checkpoint %s (%v): want the store's", cp, err)
	}
	// The TSDB deleted padding only: what it would have deleted is aside,
	// for the store to delete paced.
	if moved := readDir(t, aside.aside); len(moved) != cut-first+1 {
		t.Fatalf("%d segments left aside after the TSDB's truncation: want %d", len(moved), cut-first+1)
	}

	want, got := readWAL(t, alone), readWAL(t, paced)
	for name, c := range map[string]walContent{"after the store's and the TSDB's": got, "after the store's alone": mid} {
		if !maps.Equal(c.series, want.series) || len(c.series) != 99 {
			t.Errorf("%s checkpoint: %d series, want the TSDB's %d", name, len(c.series), len(want.series))
		}
		if !maps.EqualFunc(fromMint(c.samples, mint), fromMint(want.samples, mint), slices.Equal) {
			t.Errorf("%s checkpoint: the samples at or after mint differ from the TSDB's alone", name)
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

// storeCheckpoint writes the store's checkpoint of the WAL in dir for a
// head truncated at mint and puts it in place; it returns the checkpoint
// and its directory.
func storeCheckpoint(t *testing.T, dir string, mint int64, keep func(chunks.HeadSeriesRef) bool, step func() error) (*walCheckpoint, string) {
	t.Helper()
	c, err := newWALCheckpoint(dir, mint, keep, step, slog.New(slog.DiscardHandler))
	if err != nil || c == nil {
		t.Fatalf("store checkpoint: %v, %v", c, err)
	}
	if err := c.run(); err != nil {
		t.Fatal(err)
	}
	cp, err := c.commit()
	if err != nil {
		t.Fatal(err)
	}
	return c, cp
}

// TestWALSetAsideUndone: a store checkpoint in place, its segments set
// aside and the WAL padded, then undone (the TSDB failed to load the
// head's block): the WAL directory is as it was, and a replay reads the
// same.
func TestWALSetAsideUndone(t *testing.T) {
	dir := t.TempDir()
	w := testWAL(t, dir)
	defer w.Close()
	before, orig := readDirSizes(t, dir), readWAL(t, dir)
	c, cp := storeCheckpoint(t, dir, 60*60_000, func(chunks.HeadSeriesRef) bool { return true }, func() error { return nil })
	s := &walSetAside{wal: dir, aside: filepath.Join(t.TempDir(), walCheckpointedDir), checkpoint: cp, to: c.to}
	if err := s.setAside(); err != nil || len(s.moved) == 0 {
		t.Fatalf("set aside %v: %v", s.moved, err)
	}
	var err error
	if s.padded, err = padWAL(dir, c.to); err != nil || len(s.padded) == 0 {
		t.Fatalf("padWAL: %v, %v", s.padded, err)
	}
	if err := s.undo(); err != nil {
		t.Fatal(err)
	}
	if after := readDirSizes(t, dir); !maps.Equal(after, before) {
		t.Fatalf("the WAL directory went from %v to %v", before, after)
	}
	if got := readWAL(t, dir); !reflect.DeepEqual(got, orig) {
		t.Fatal("a replay after the undo reads other records than before")
	}
}

// readDirSizes returns the names in dir with their sizes (-1: a directory).
func readDirSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, name := range readDir(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		m[name] = fi.Size()
		if fi.IsDir() {
			m[name] = -1
		}
	}
	return m
}

// fromMint returns the samples at or after mint (a replay discards those
// before, which are in blocks).
func fromMint(m map[chunks.HeadSeriesRef][]record.RefSample, mint int64) map[chunks.HeadSeriesRef][]record.RefSample {
	out := map[chunks.HeadSeriesRef][]record.RefSample{}
	for ref, ss := range m {
		for _, s := range ss {
			if s.T >= mint {
				out[ref] = append(out[ref], s)
			}
		}
	}
	return out
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
	c, err := newWALCheckpoint(dir, 60*60_000, func(chunks.HeadSeriesRef) bool { return true }, func() error { return nil }, slog.New(slog.DiscardHandler))
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

// pacedSmallWAL: head compactions paced at duty 0.5, a raw WAL of 32-KiB
// segments (many of them from little data).
func pacedSmallWAL(o *Options) {
	o.RollupDuty = 0.5
	o.tune = func(tier string, o *tsdb.Options) {
		if tier == "raw" {
			o.WALSegmentSize = 32 << 10
		}
	}
}

// TestHeadCompactionCheckpointsWALPaced compacts a raw head of 160
// minutes (two blocks) through the store, paced, with a WAL of small
// segments: the store checkpoints the WAL after each block, after
// the second up to the last segment starting before its end, and the
// TSDB's own checkpoint then reads no segment. A store opened on a copy of the directory as it is then
// (blocks, checkpoint, segments: a killed hub's) reads back every sample.
func TestHeadCompactionCheckpointsWALPaced(t *testing.T) {
	skipUnlessTSDB(t) // the VM engine writes its own checkpoints
	dir, opts := t.TempDir(), pacedSmallWAL
	s, _ := openTest(t, dir, base, opts)
	raw := rawTSDB(t, s)
	raw.DisableCompactions() // only the Compact below
	const nSeries, steps = 200, 960
	want := commitRandomEvery10s(t, s, nSeries, steps, rand.New(rand.NewPCG(3, 4))) // 160 minutes
	walDir := filepath.Join(raw.Dir(), "wal")
	aside := filepath.Join(raw.Dir(), walCheckpointedDir)
	cut := lastStartingBefore(t, walDir, base.Add(2*time.Hour).UnixMilli())
	// A copy of the directory while the store deletes the segments set
	// aside after the first block, as a hub killed then leaves it.
	g, drops, dropping := raw.gate, 0, t.TempDir()
	g.sleep = func(ctx context.Context, d time.Duration) error {
		if _, err := os.Stat(aside); err == nil {
			if drops++; drops == 3 {
				if err := os.CopyFS(dropping, os.DirFS(dir)); err != nil {
					t.Error(err)
				}
			}
		}
		return sleepCtx(ctx, d)
	}
	if err := raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g.walCheckpoints != 2 || len(raw.Blocks()) != 2 {
		t.Fatalf("%d store checkpoints, %d blocks: want two of each", g.walCheckpoints, len(raw.Blocks()))
	}
	_, idx, err := wlog.LastCheckpoint(walDir)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := wlog.Segments(walDir); idx != cut || first > cut+1 {
		t.Fatalf("last checkpoint %d, segments from %d: want the store's at %d, the TSDB's at or before it", idx, first, cut)
	}
	// The segments set aside are deleted, resting between them; the
	// checkpoints before the store's too.
	if _, err := os.Stat(aside); !os.IsNotExist(err) || drops < 10 {
		t.Fatalf("segments set aside: %v after %d rests deleting them; want them deleted, resting after each", err, drops)
	}
	var cps []string
	for _, name := range readDir(t, walDir) {
		if strings.HasPrefix(name, "checkpoint.") {
			cps = append(cps, name)
		}
	}
	if want := filepath.Base(wlog.CheckpointDir(walDir, cut)); !slices.Equal(cps, []string{want}) {
		t.Fatalf("checkpoints %v: want only the store's %s", cps, want)
	}
	// A copy of the directory as it is, as a killed hub leaves it (a
	// clean close would write the head's chunks out, and a reopened
	// store would not need the WAL for them).
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	for name, copied := range map[string]string{"after the compactions": crashed, "while deleting the segments set aside": dropping} {
		s, _ = openTest(t, copied, base, opts)
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
			t.Fatalf("killed %s: %d series, %d samples read back; want %d × %d as written", name, len(got), n, nSeries, steps)
		}
	}
}

// TestNewRawTierWALLeavesRoomToPad: a new store's raw WAL starts at
// segment rawWALFirstSegment behind an empty checkpoint, so that its first
// head compaction (a head of 100 minutes, a block of the first hour) is
// checkpointed by the store only up to the last segment starting before
// the block's end, padded for the TSDB's to end there too: numbered from
// 0, the store's checkpoint read on to two thirds of the WAL, rewriting
// the samples after the block. A store opened again reads every sample
// back and keeps the numbers.
func TestNewRawTierWALLeavesRoomToPad(t *testing.T) {
	skipUnlessTSDB(t) // the VM engine keeps a WAL of its own
	dir, opts := t.TempDir(), pacedSmallWAL
	s, _ := openTest(t, dir, base, opts)
	raw := rawTSDB(t, s)
	raw.DisableCompactions() // only the Compact below
	walDir := filepath.Join(raw.Dir(), "wal")
	first, _, err := wlog.Segments(walDir)
	_, cp, cpErr := wlog.LastCheckpoint(walDir)
	if err != nil || cpErr != nil || first != rawWALFirstSegment || cp != rawWALFirstSegment-1 {
		t.Fatalf("new raw WAL: first segment %d (%v), checkpoint %d (%v): want %d after a checkpoint at %d",
			first, err, cp, cpErr, rawWALFirstSegment, rawWALFirstSegment-1)
	}
	const nSeries, steps = 200, 600
	want := commitRandomEvery10s(t, s, nSeries, steps, rand.New(rand.NewPCG(5, 6))) // 100 minutes
	cut := lastStartingBefore(t, walDir, base.Add(time.Hour).UnixMilli())
	_, last, _ := wlog.Segments(walDir)
	if paddable(cut-rawWALFirstSegment, last-rawWALFirstSegment) {
		t.Fatalf("segments %d..%d, the hour ends in %d: numbered from 0 the WAL would have room to pad; want a test of one without", rawWALFirstSegment, last, cut)
	}
	if err := raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := raw.gate; g.walCheckpoints != 1 || len(raw.Blocks()) != 1 {
		t.Fatalf("%d store checkpoints, %d blocks: want one of each", g.walCheckpoints, len(raw.Blocks()))
	}
	_, idx, err := wlog.LastCheckpoint(walDir)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := wlog.Segments(walDir); idx != cut || first > cut+1 {
		t.Fatalf("last checkpoint %d, segments from %d: want the store's at %d (the last segment starting before the block's end), the TSDB's at or before it", idx, first, cut)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openTest(t, dir, base.Add(100*time.Minute), opts)
	got := map[string][]float64{}
	for name, samples := range tierDump(t, s.raw.(*Tier)) {
		for _, sv := range samples {
			got[name] = append(got[name], math.Float64frombits(sv[1]))
		}
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("reopened: %d series read back, want %d × %d samples as written", len(got), nSeries, steps)
	}
	if first, last, err := wlog.Segments(walDir); err != nil || first < rawWALFirstSegment || last <= cut {
		t.Fatalf("reopened: WAL segments %d..%d (%v): want them numbered on past %d", first, last, err, cut)
	}
}

// commitRandomEvery10s commits a random value of each of nSeries series
// (load1 of machines m000…) every 10 s from base, steps times, one commit
// a step, and returns the values by series.
func commitRandomEvery10s(t *testing.T, s *Store, nSeries, steps int, rnd *rand.Rand) map[string][]float64 {
	t.Helper()
	names := make([]labels.Labels, nSeries)
	for i := range names {
		names[i] = series("load1", fmt.Sprintf("m%03d", i))
	}
	want := map[string][]float64{}
	for k := range steps {
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
	return want
}

// paddable reports whether padWAL can make the TSDB's next checkpoint end
// at segment to of a WAL whose last segment is last, padding down to
// segment 0 (padWAL's solution for n at most to+1).
func paddable(to, last int) bool { return 2*(last+padMargin-1) <= 3*to }

// TestNumberNewWAL: only a WAL that is not there yet, or an empty
// directory, is numbered; one with segments keeps them as they are.
func TestNumberNewWAL(t *testing.T) {
	for name, setup := range map[string]func(dir string){
		"no directory":    func(string) {},
		"empty directory": func(dir string) { mustMkdir(t, dir) },
		"left over":       func(dir string) { mustMkdir(t, dir+".sysmonstm"+wlog.CheckpointTempFileSuffix) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			setup(dir)
			if err := numberNewWAL(dir); err != nil {
				t.Fatal(err)
			}
			first, last, err := wlog.Segments(dir)
			_, cp, cpErr := wlog.LastCheckpoint(dir)
			if err != nil || cpErr != nil || first != rawWALFirstSegment || last != first || cp != first-1 {
				t.Fatalf("segments %d..%d (%v), checkpoint %d (%v)", first, last, err, cp, cpErr)
			}
			if _, err := os.Stat(dir + ".sysmonstm" + wlog.CheckpointTempFileSuffix); !os.IsNotExist(err) {
				t.Fatalf("the directory it was made in is still there: %v", err)
			}
		})
	}
	t.Run("a WAL from 0", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wal")
		w, err := wlog.New(nil, nil, dir, tierWALCompression)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if err := numberNewWAL(dir); err != nil {
			t.Fatal(err)
		}
		if first, last, err := wlog.Segments(dir); err != nil || first != 0 || last != 0 {
			t.Fatalf("segments %d..%d (%v): want 0..0 as it was", first, last, err)
		}
		if _, _, err := wlog.LastCheckpoint(dir); !errors.Is(err, record.ErrNotFound) {
			t.Fatalf("checkpoint: %v, want none", err)
		}
	})
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWALCheckpoint: the checkpoint after a head compaction of a WAL
// of 100 minutes of 100,000 series at a sample a second (600 M samples;
// the last checkpoint at the segment before them, as after an earlier
// hour), truncated at minute 60. A hub at 1 M samples/s truncates its WAL
// about 100 minutes after the hour's start (the head is compactable at 90,
// its block and the store's checkpoint take minutes); 16-MiB segments hold
// about as many seconds here as 128-MiB ones there. tsdb: the TSDB's
// checkpoint alone (Head.truncateWAL). store: the store's (unpaced here;
// in a hub it rests three times as long as it works) and its padding, then
// the TSDB's, which is what is left unpaced on the compaction's path, then
// the store's deletion of the segments it set aside (unpaced here, paced
// in a hub). Reports the seconds of each (the TSDB's checkpoint, then its
// deletion of what its checkpoint covers) and the last checkpoint's size.
func BenchmarkWALCheckpoint(b *testing.B) {
	const series, minutes, group = 100_000, 100, 10_000
	const mint = 60 * 60_000
	keep := func(chunks.HeadSeriesRef) bool { return true }
	fill := func(b *testing.B) *wlog.WL {
		dir := b.TempDir()
		var enc record.Encoder
		refs := make([]record.RefSeries, series)
		for i := range refs {
			refs[i] = record.RefSeries{Ref: chunks.HeadSeriesRef(i + 1), Labels: labels.FromStrings("__name__", "app_bench", "machine", "m"+strconv.Itoa(i/1000), "i", strconv.Itoa(i))}
		}
		w := walFrom(b, dir, 100, 16<<20, refs)
		rng := rand.New(rand.NewPCG(5, 6))
		samples := make([]record.RefSample, group)
		var buf []byte
		for t := int64(0); t < minutes*60_000; t += 1000 {
			for g := 0; g < series; g += group {
				for i := range samples {
					samples[i] = record.RefSample{Ref: chunks.HeadSeriesRef(g + i + 1), T: t, V: float64(rng.IntN(10_000)) / 100}
				}
				buf = enc.Samples(samples, buf[:0])
				if err := w.Log(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
		return w
	}
	dirSize := func(dir string) float64 {
		var n int64
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return err
		})
		return float64(n) / (1 << 20)
	}
	// truncate runs the TSDB's checkpoint of w and reports it.
	truncate := func(b *testing.B, w *wlog.WL) {
		_, took, del := tsdbCheckpointTimed(b, w, mint, keep)
		b.ReportMetric(took.Seconds(), "tsdb_s")
		b.ReportMetric(del.Seconds(), "delete_s")
		cp, _, _ := wlog.LastCheckpoint(w.Dir())
		b.ReportMetric(dirSize(cp), "checkpoint_MiB")
		_ = w.Close()
	}
	b.Run("tsdb", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			w := fill(b)
			b.ReportMetric(dirSize(w.Dir()), "wal_MiB")
			b.StartTimer()
			truncate(b, w)
		}
	})
	b.Run("store", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			w := fill(b)
			b.StartTimer()
			start := time.Now()
			c, err := newWALCheckpoint(w.Dir(), mint, keep, func() error { return nil }, slog.New(slog.DiscardHandler))
			if err != nil || c == nil {
				b.Fatal(c, err)
			}
			if err := c.run(); err != nil {
				b.Fatal(err)
			}
			cp, err := c.commit()
			if err != nil {
				b.Fatal(err)
			}
			s := &walSetAside{wal: w.Dir(), aside: filepath.Join(b.TempDir(), walCheckpointedDir), checkpoint: cp, to: c.to}
			if err := s.setAside(); err != nil {
				b.Fatal(err)
			}
			if _, err := padWAL(w.Dir(), c.to); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "store_s")
			truncate(b, w)
			start = time.Now()
			if _, _, err := dropSegments(s.aside, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "store_delete_s")
		}
	})
}

// TestHeadCompactionStoppedInCheckpoint: compactions turned off (or the
// tier closing) while the store writes the WAL checkpoint after a head's
// block stop the compaction there, not with the TSDB's whole checkpoint:
// the block stays on disk, the WAL as it was, and a store reopened on the
// directory reads every sample back once.
func TestHeadCompactionStoppedInCheckpoint(t *testing.T) {
	skipUnlessTSDB(t) // the VM engine writes its own checkpoints
	dir, opts := t.TempDir(), pacedSmallWAL
	s, _ := openTest(t, dir, base, opts)
	raw := rawTSDB(t, s)
	raw.DisableCompactions()
	want := map[string][]float64{}
	for k := range 600 { // 100 minutes of 100 series
		app := s.Appender(context.Background())
		ts := base.Add(time.Duration(k) * 10 * time.Second).UnixMilli()
		for i := range 100 {
			ls := series("load1", fmt.Sprintf("m%03d", i))
			if _, err := app.Append(0, ls, ts, float64(k*100+i)); err != nil {
				t.Fatal(err)
			}
			want[ls.String()] = append(want[ls.String()], float64(k*100+i))
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	walDir := filepath.Join(raw.Dir(), "wal")
	before := readDir(t, walDir)
	defer func(n uint) { paceEvery = n }(paceEvery)
	paceEvery = 1
	g := raw.gate
	g.now = fakeWork() // a rest every 10 steps, however fast the machine
	stopped := false
	g.sleep = func(ctx context.Context, d time.Duration) error {
		// Turned off once the block is on disk (set(true) would wait for
		// this compaction: stop it as set does).
		if !stopped && len(blockDirs(t, raw.Dir())) > 0 {
			stopped = true
			g.mu.Lock()
			g.stopRun()
			g.mu.Unlock()
		}
		return ctx.Err()
	}
	if err := raw.Compact(context.Background()); !errors.Is(err, context.Canceled) || !stopped {
		t.Fatalf("compaction stopped in the checkpoint (stopped %v): %v, want context.Canceled", stopped, err)
	}
	if after := readDir(t, walDir); !slices.Equal(after, before) || g.walCheckpoints != 0 {
		t.Fatalf("the WAL went from %v to %v (%d checkpoints): want it as it was", before, after, g.walCheckpoints)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openTest(t, dir, base, opts)
	got := map[string][]float64{}
	for name, samples := range tierDump(t, s.raw.(*Tier)) {
		for _, sv := range samples {
			got[name] = append(got[name], math.Float64frombits(sv[1]))
		}
	}
	if !maps.EqualFunc(got, want, slices.Equal) || len(s.raw.(*Tier).Blocks()) != 1 {
		t.Fatalf("reopened: %d series, %d blocks; want every sample once from the block and the WAL", len(got), len(s.raw.(*Tier).Blocks()))
	}
}

// blockDirs returns the block directories (ULIDs) in dir.
func blockDirs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for _, name := range readDir(t, dir) {
		if _, err := ulid.ParseStrict(name); err == nil {
			ids = append(ids, name)
		}
	}
	return ids
}

// TestDropSegments: segments set aside are deleted dropStep at a time, with
// a rest after each step, and their bytes counted as they were.
func TestDropSegments(t *testing.T) {
	aside := filepath.Join(t.TempDir(), walCheckpointedDir)
	if err := os.MkdirAll(aside, 0o777); err != nil {
		t.Fatal(err)
	}
	sizes := []int64{2*dropStep + dropStep/2, 1 << 10}
	for i, n := range sizes {
		f, err := os.Create(filepath.Join(aside, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(n); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	rests := 0
	n, bytes, err := dropSegments(aside, func() error { rests++; return nil })
	if err != nil || n != 2 || bytes != sizes[0]+sizes[1] || rests != 3+1 {
		t.Fatalf("dropSegments: %d files, %d bytes, %d rests, %v; want 2, %d, 4", n, bytes, rests, err, sizes[0]+sizes[1])
	}
	if _, err := os.Stat(aside); !os.IsNotExist(err) {
		t.Fatalf("the directory set aside is left: %v", err)
	}
}
