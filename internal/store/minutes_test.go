package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// tierDump reads every sample of tier db, values as bits.
func tierDump(t testing.TB, db *Tier) map[string][][2]uint64 {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][][2]uint64{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	var it chunkenc.Iterator
	for set.Next() {
		ser := set.At()
		it = ser.Iterator(it)
		k := ser.Labels().String()
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[k] = append(out[k], [2]uint64{uint64(ts), math.Float64bits(v)})
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

// minuteWorkload writes the same samples into every store in stores: four
// machines, four series each (scaled by 2 decimals, by 0, and two names
// outside the catalogue, one sampled every 40–70 s), every 1–7 s over
// [from, to), with NaN, -0, values with more decimals than the scale or
// past 2^53 once scaled, repeated samples and a
// rolled-back appender. The machine "late" also takes a sample older than
// its newest one in the hour starting at lateHour (if set).
func minuteWorkload(t *testing.T, rng *rand.Rand, stores []*Store, from, to time.Time, lateHour time.Time) {
	t.Helper()
	names := []string{"container_cpu_usage_percent", "container_memory_usage_bytes", "app_latency_seconds", "app_sparse_ratio"}
	machines := []string{"a", "b", "late", "d"}
	type pt struct {
		ls labels.Labels
		t  int64
		v  float64
	}
	var batches [][]pt
	for _, m := range machines {
		for _, n := range names {
			ls := series(n, m, "disk", "sda")
			var b []pt
			step, jitter := int64(1000), int64(6000)
			if n == "app_sparse_ratio" {
				step, jitter = 40000, 30000 // minutes of one sample: a lone -0 sums to +0
			}
			for ts := from.UnixMilli() + rng.Int64N(1000); ts < to.UnixMilli(); ts += step + rng.Int64N(jitter) {
				var v float64
				switch r := rng.IntN(20); {
				case r == 0:
					v = math.NaN()
				case r == 1:
					v = math.Copysign(0, -1)
				case r == 2:
					v = rng.Float64() * 1e6 // more decimals than any scale
				case r == 3:
					v = 1e14 + rng.Float64() // scaled past 2^53: read back within an ulp
				default:
					v = float64(rng.IntN(100000)) / 100
				}
				b = append(b, pt{ls, ts, v})
				if rng.IntN(50) == 0 {
					b = append(b, pt{ls, ts, v}) // the same sample again
				}
				if m == "late" && !lateHour.IsZero() && ts >= lateHour.Add(30*time.Minute).UnixMilli() && ts < lateHour.Add(31*time.Minute).UnixMilli() {
					b = append(b, pt{ls, ts - 1500, 42}) // out of order
				}
			}
			batches = append(batches, b)
		}
	}
	for _, s := range stores {
		// A rolled-back appender stores nothing, minutes included.
		app := s.Appender(context.Background())
		if _, err := app.Append(0, series(names[0], "a", "disk", "sda"), from.UnixMilli()+500, 99999); err != nil {
			t.Fatal(err)
		}
		if err := app.Rollback(); err != nil {
			t.Fatal(err)
		}
		maxTs := map[string]int64{}
		for _, b := range batches {
			// Commits of 100 samples, as ingest commits a group of batches.
			for len(b) > 0 {
				n := min(len(b), 100)
				app := s.Appender(context.Background())
				for _, p := range b[:n] {
					_, _ = app.Append(0, p.ls, p.t, p.v) // refusals (a repeat with another value) are the point
					maxTs[p.ls.Get("machine")] = max(maxTs[p.ls.Get("machine")], p.t)
				}
				if err := app.Commit(); err != nil {
					t.Fatal(err)
				}
				b = b[n:]
			}
		}
		for m, ts := range maxTs {
			s.NoteWritten(m, ts)
		}
	}
}

// TestMinutesRollUpAsTheRawReadDoes: the hours rolled up from the minutes
// kept as samples arrive are the hours read back from the raw tier, bit
// for bit; a machine with a sample out of order in an hour, and hours that
// began before the store opened, are read back.
func TestMinutesRollUpAsTheRawReadDoes(t *testing.T) {
	skipUnlessTSDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	dirKept, dirRaw := t.TempDir(), t.TempDir()
	reg := prometheus.NewRegistry()
	kept, clk := openTest(t, dirKept, base, func(o *Options) { o.Registerer = reg })
	raw, clkRaw := openTest(t, dirRaw, base, func(o *Options) { o.RollupFromRaw = true })
	both := []*Store{kept, raw}
	hours := func(source string) float64 {
		return testutil.ToFloat64(kept.m.hours.WithLabelValues(source))
	}
	rollBoth := func(at time.Time) {
		clk.Set(at)
		clkRaw.Set(at)
		for _, s := range both {
			mustRollup(t, s)
		}
	}
	compare := func(when string) {
		t.Helper()
		a, b := tierDump(t, kept.tier1m), tierDump(t, raw.tier1m)
		if len(a) == 0 {
			t.Fatalf("%s: the 1m tier is empty", when)
		}
		for k, want := range b {
			if got := a[k]; !slices.Equal(got, want) {
				t.Errorf("%s: %s: %d samples from the minutes, %d from the raw read; first difference %s", when, k, len(got), len(want), firstDiff(got, want))
			}
		}
		for k := range a {
			if _, ok := b[k]; !ok {
				t.Errorf("%s: %s only from the minutes", when, k)
			}
		}
	}

	// Hours 0 and 1, each rolled up as it ends; hour 1 has machine
	// "late"'s sample out of order.
	minuteWorkload(t, rng, both, base, base.Add(time.Hour+5*time.Minute), time.Time{})
	rollBoth(base.Add(time.Hour + 5*time.Minute))
	minuteWorkload(t, rng, both, base.Add(time.Hour+5*time.Minute), base.Add(2*time.Hour+5*time.Minute), base.Add(time.Hour))
	rollBoth(base.Add(2*time.Hour + 5*time.Minute))
	compare("two hours")
	if got, want := hours("minutes"), 4.0+3; got != want {
		t.Errorf("machine-hours from minutes = %v, want %v", got, want)
	}
	if got, want := hours("raw"), 1.0; got != want {
		t.Errorf("machine-hours read back = %v, want %v (machine late's hour 1)", got, want)
	}

	// Reopened in the middle of hour 2: that hour began before, so it is
	// read back; hour 3 comes from the minutes again.
	minuteWorkload(t, rng, both, base.Add(2*time.Hour+5*time.Minute), base.Add(2*time.Hour+20*time.Minute), time.Time{})
	for _, s := range both {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	reg = prometheus.NewRegistry()
	kept, clk = openTest(t, dirKept, base.Add(2*time.Hour+20*time.Minute), func(o *Options) { o.Registerer = reg })
	raw, clkRaw = openTest(t, dirRaw, base.Add(2*time.Hour+20*time.Minute), func(o *Options) { o.RollupFromRaw = true })
	both = []*Store{kept, raw}
	minuteWorkload(t, rng, both, base.Add(2*time.Hour+20*time.Minute), base.Add(3*time.Hour+5*time.Minute), time.Time{})
	rollBoth(base.Add(3*time.Hour + 5*time.Minute))
	minuteWorkload(t, rng, both, base.Add(3*time.Hour+5*time.Minute), base.Add(4*time.Hour+5*time.Minute), time.Time{})
	rollBoth(base.Add(4*time.Hour + 5*time.Minute))
	compare("after a restart")
	if got, want := hours("minutes"), 4.0; got != want {
		t.Errorf("after the restart: machine-hours from minutes = %v, want %v (hour 3)", got, want)
	}
	if got, want := hours("raw"), 4.0; got != want {
		t.Errorf("after the restart: machine-hours read back = %v, want %v (hour 2)", got, want)
	}
}

func firstDiff(a, b [][2]uint64) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: t=%d %v against t=%d %v", i, a[i][0], math.Float64frombits(a[i][1]), b[i][0], math.Float64frombits(b[i][1]))
		}
	}
	return "one is longer"
}

// sameTier1m fails t unless kept's 1m tier holds raw's samples, bit for bit.
func sameTier1m(t *testing.T, kept, raw *Store) {
	t.Helper()
	a, b := tierDump(t, kept.tier1m), tierDump(t, raw.tier1m)
	if len(b) == 0 || len(a) != len(b) {
		t.Fatalf("%d series rolled up, %d from the raw read", len(a), len(b))
	}
	for k, want := range b {
		if !slices.Equal(a[k], want) {
			t.Errorf("%s differs: %s", k, firstDiff(a[k], want))
		}
	}
}

// TestMinutesLostHourIsReadBack: an hour whose minutes could not be
// spilled is read back from the raw tier, with the same result.
func TestMinutesLostHourIsReadBack(t *testing.T) {
	skipUnlessTSDB(t)
	rng := rand.New(rand.NewPCG(3, 4))
	reg := prometheus.NewRegistry()
	kept, clk := openTest(t, "", base, func(o *Options) { o.Registerer = reg })
	raw, clkRaw := openTest(t, "", base, func(o *Options) { o.RollupFromRaw = true })
	// A file where the hour's spill directory goes.
	if err := os.MkdirAll(kept.minutes.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept.minutes.dir, strconv.FormatInt(ms(base), 10)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	minuteWorkload(t, rng, []*Store{kept, raw}, base, base.Add(time.Hour+5*time.Minute), time.Time{})
	clk.Set(base.Add(time.Hour + 5*time.Minute))
	clkRaw.Set(base.Add(time.Hour + 5*time.Minute))
	mustRollup(t, kept)
	mustRollup(t, raw)
	sameTier1m(t, kept, raw)
	if got := testutil.ToFloat64(kept.m.hours.WithLabelValues("raw")); got != 4 {
		t.Errorf("machine-hours read back = %v, want 4", got)
	}
	if got := testutil.ToFloat64(kept.m.hours.WithLabelValues("minutes")); got != 0 {
		t.Errorf("machine-hours from minutes = %v, want 0", got)
	}
}

// BenchmarkMinutesAppend measures one sample appended and committed to
// each of 1 M series through the Store's Appender (group commits of
// 10,000, one tick a second), with the minutes kept as samples arrive and
// without (Options.RollupFromRaw). Not run in CI (~2 GB of heap).
func BenchmarkMinutesAppend(b *testing.B) {
	const n = 1_000_000
	for _, fromRaw := range []bool{false, true} {
		b.Run(map[bool]string{false: "minutes", true: "raw-read"}[fromRaw], func(b *testing.B) {
			s, _ := openTest(b, "", base, func(o *Options) { o.RollupFromRaw = fromRaw })
			refs := make([]SeriesRef, n)
			ts := ms(base)
			app := s.Appender(context.Background())
			var err error
			for i := range refs {
				if refs[i], err = app.Append(0, series("app_value", "m"+strconv.Itoa(i/1000), "i", strconv.Itoa(i)), ts, 1); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for range b.N {
				ts += 1000
				for g := 0; g < n; g += 10_000 {
					app := s.Appender(context.Background())
					for _, ref := range refs[g : g+10_000] {
						if _, err := app.Append(ref, labels.EmptyLabels(), ts, float64(rng.IntN(1000))); err != nil {
							b.Fatal(err)
						}
					}
					if err := app.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
		})
	}
}

// BenchmarkMinutesHourlyPass measures the pass that rolls an hour of
// 20,000 series sampled every second (72 M samples, 20 machines) into the
// 1m tier, unpaced, from the minutes kept and read back from the raw tier.
func BenchmarkMinutesHourlyPass(b *testing.B) {
	const machines, perMachine, step = 20, 1000, 1000
	for _, fromRaw := range []bool{false, true} {
		b.Run(map[bool]string{false: "minutes", true: "raw-read"}[fromRaw], func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s, clk := openTest(b, "", base, func(o *Options) { o.RollupFromRaw = fromRaw; o.RollupDuty = 1 })
				refs := make([]SeriesRef, machines*perMachine)
				for ts := ms(base); ts < ms(base)+hourMs+2*minuteMs; ts += step {
					for m := range machines {
						app := s.Appender(context.Background())
						for i := range perMachine {
							r := &refs[m*perMachine+i]
							var err error
							if *r, err = app.Append(*r, series("container_cpu_usage_percent", "m"+strconv.Itoa(m), "i", strconv.Itoa(i)), ts, float64((ts/step+int64(i))%10000)/100); err != nil {
								b.Fatal(err)
							}
						}
						if err := app.Commit(); err != nil {
							b.Fatal(err)
						}
						s.NoteWritten("m"+strconv.Itoa(m), ts)
					}
				}
				// 77 blocks read back, as a batch bound of 50,000 gives at
				// 1 M raw series.
				s.batchSeries = machines * perMachine * 4 / 77
				clk.Set(base.Add(time.Hour + 2*time.Minute))
				b.StartTimer()
				began := time.Now()
				mustRollup(b, s)
				pass := time.Since(began)
				if err := s.tier1m.Compact(context.Background()); err != nil { // the merge of the hour's blocks
					b.Fatal(err)
				}
				merge := time.Since(began) - pass
				b.StopTimer()
				b.ReportMetric(pass.Seconds(), "pass-s/op")
				b.ReportMetric(merge.Seconds(), "merge-s/op")
				if got := testutil.ToFloat64(s.m.samples.WithLabelValues(Tier1m)); got != machines*perMachine*60*4 {
					b.Fatalf("%v rollup samples, want %d", got, machines*perMachine*60*4)
				}
				_ = s.Close()
			}
		})
	}
}

// TestMinutesOfHoursNoPassTakesAreRemoved: a pass that rolls up two hours
// at once reads them back from raw, and the spill files of hours no pass
// will take are removed.
func TestMinutesOfHoursNoPassTakesAreRemoved(t *testing.T) {
	skipUnlessTSDB(t)
	rng := rand.New(rand.NewPCG(5, 6))
	s, clk := openTest(t, "", base, nil)
	minuteWorkload(t, rng, []*Store{s}, base, base.Add(2*time.Hour+5*time.Minute), time.Time{})
	hourDir := func(h int) string {
		return filepath.Join(s.minutes.dir, strconv.FormatInt(ms(base.Add(time.Duration(h)*time.Hour)), 10))
	}
	held := func(h int) bool {
		s.minutes.mu.Lock()
		defer s.minutes.mu.Unlock()
		return s.minutes.hours[ms(base.Add(time.Duration(h)*time.Hour))] != nil
	}
	if !held(0) || !held(1) {
		t.Fatal("hours 0 and 1 hold no minutes before the pass")
	}
	clk.Set(base.Add(2*time.Hour + 5*time.Minute))
	mustRollup(t, s)
	if got := testutil.ToFloat64(s.m.hours.WithLabelValues("raw")); got != 8 {
		t.Errorf("machine-hours read back = %v, want 8 (4 machines, two hours in one job)", got)
	}
	for h := range 2 {
		if held(h) {
			t.Errorf("hour %d's minutes are still held", h)
		}
		if _, err := os.Stat(hourDir(h)); !os.IsNotExist(err) {
			t.Errorf("hour %d's spill directory: %v, want it removed", h, err)
		}
	}
}

// TestYielderYieldsEveryMillisecond: a loop calling maybe yields once a
// millisecond of its time has passed, checking the clock every 16th call.
func TestYielderYieldsEveryMillisecond(t *testing.T) {
	clock, yields := time.Unix(0, 0), 0
	defer func(c func() time.Time, f func()) { yieldClock, yieldFn = c, f }(yieldClock, yieldFn)
	yieldClock = func() time.Time { return clock }
	yieldFn = func() { yields++ }
	for _, c := range []struct {
		step  time.Duration // loop time per call
		calls int
		want  int
	}{
		{100 * time.Microsecond, 1600, 100}, // 1.6 ms between checks: every check yields
		{10 * time.Microsecond, 1120, 10},   // 0.16 ms between checks: every 7th check
		{time.Second, 15, 0},                // no check before the 16th call
	} {
		var y yielder
		y.last = clock
		yields = 0
		for range c.calls {
			clock = clock.Add(c.step)
			y.maybe()
		}
		if yields != c.want {
			t.Errorf("%v a call, %d calls: %d yields, want %d", c.step, c.calls, yields, c.want)
		}
	}
}

// TestMinutesHourIsOneBlock: an hour rolled up from the minutes is one
// block of the 1m tier covering the hour, whatever the batch bound (which
// splits the raw read into overlapping blocks the tier then merges), with
// the raw read's samples. A series whose labels would not sort after the
// rollup label is added (a label name between __name__ and __rollup__)
// sends the hour back to the raw read, with the same result.
func TestMinutesHourIsOneBlock(t *testing.T) {
	skipUnlessTSDB(t)
	for _, tc := range []struct {
		name   string
		odd    bool
		blocks int // the 1m tier's blocks of the hour; 0: more than one
	}{
		{"one block", false, 1},
		{"unsortable labels read back", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			reg := prometheus.NewRegistry()
			small := func(o *Options) { o.Registerer = reg }
			kept, clk := openTest(t, "", base, small)
			raw, clkRaw := openTest(t, "", base, func(o *Options) { o.RollupFromRaw = true })
			both := []*Store{kept, raw}
			for _, s := range both {
				s.batchSeries = 8 // 16 raw series, 64 rollup series: 8 blocks read back
			}
			// The tier's own compaction (once a minute) would merge the raw
			// read's blocks into one when the test runs that long (-race on
			// a loaded machine).
			kept.tier1m.DisableCompactions()
			minuteWorkload(t, rng, both, base, base.Add(time.Hour+5*time.Minute), time.Time{})
			if tc.odd {
				// Remote-written series without a machine label: {__name__}
				// sorts before {__name__, __p}, but with __rollup__ after.
				for _, s := range both {
					for _, ls := range []labels.Labels{labels.FromStrings(labels.MetricName, "app_x"), labels.FromStrings(labels.MetricName, "app_x", "__p", "y")} {
						appendRange(t, s, ls, base, 130, 30*time.Second, func(i int) float64 { return float64(i) }) // to 1:04:30
					}
				}
			}
			for _, c := range []*fakeClock{clk, clkRaw} {
				c.Set(base.Add(time.Hour + 5*time.Minute))
			}
			mustRollup(t, kept)
			mustRollup(t, raw)
			var n int
			for _, b := range kept.tier1m.Blocks() {
				m := b.Meta()
				if m.MinTime < ms(base)+hourMs && m.MaxTime > ms(base) {
					n++
					if !tc.odd && (m.MinTime != ms(base) || m.MaxTime != ms(base)+hourMs) {
						t.Errorf("block [%d, %d), want the hour [%d, %d)", m.MinTime, m.MaxTime, ms(base), ms(base)+hourMs)
					}
				}
			}
			if (tc.blocks > 0 && n != tc.blocks) || (tc.blocks == 0 && n < 2) {
				t.Errorf("%d blocks of the hour in the 1m tier, want %d (0: more than one)", n, tc.blocks)
			}
			want := 4.0
			if tc.odd {
				want = 0
			}
			if got := testutil.ToFloat64(kept.m.hours.WithLabelValues("minutes")); got != want {
				t.Errorf("machine-hours from minutes = %v, want %v", got, want)
			}
			sameTier1m(t, kept, raw)
		})
	}
}

// TestMinutesHourOfManyLabelShapes: series whose label sets differ in
// names, count and lengths, as a real hub's do, roll up from the minutes
// as one block equal to the raw read. The index writer keeps the first
// string it sees of each label name (its count of a name's series) and
// writes the postings from them when it closes: label sets built in a
// buffer that the next series overwrites changed those strings under it,
// and the block write failed ("symbol entry for ... does not exist") or
// wrote postings under names that are not the series'.
func TestMinutesHourOfManyLabelShapes(t *testing.T) {
	skipUnlessTSDB(t)
	rng := rand.New(rand.NewPCG(9, 10))
	reg := prometheus.NewRegistry()
	kept, clk := openTest(t, "", base, func(o *Options) { o.Registerer = reg })
	raw, clkRaw := openTest(t, "", base, func(o *Options) { o.RollupFromRaw = true })
	kept.tier1m.DisableCompactions()
	names := []string{"core", "cpu", "device", "fstype", "interface", "mode", "mountpoint", "unit", "zone"}
	for m := range 6 {
		machine := "loadgen-" + strconv.Itoa(100+m)
		for i := range 40 {
			kv := []string{}
			for _, n := range names {
				if rng.IntN(3) == 0 {
					kv = append(kv, n, strings.Repeat("v", 1+rng.IntN(24))+strconv.Itoa(i))
				}
			}
			ls := series("app_metric_"+strconv.Itoa(rng.IntN(5)), machine, kv...)
			for _, s := range []*Store{kept, raw} {
				appendRange(t, s, ls, base, 130, 30*time.Second, func(j int) float64 { return float64(i*1000 + j) }) // to 1:04:30
			}
		}
	}
	for _, c := range []*fakeClock{clk, clkRaw} {
		c.Set(base.Add(time.Hour + 5*time.Minute))
	}
	mustRollup(t, kept)
	mustRollup(t, raw)
	if got := testutil.ToFloat64(kept.m.hours.WithLabelValues("minutes")); got != 6 {
		t.Errorf("machine-hours from minutes = %v, want 6", got)
	}
	sameTier1m(t, kept, raw)
	// Every label name's postings: each series found by each of its labels.
	q, err := kept.tier1m.Querier(ms(base), ms(base)+hourMs)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, n := range append(names, labels.MetricName, "machine", rollupLabel) {
		vals, _, err := q.LabelValues(context.Background(), n, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, n, v))
			found := 0
			for set.Next() {
				if got := set.At().Labels().Get(n); got != v {
					t.Fatalf("postings of %s=%q hold a series with %s=%q", n, v, n, got)
				}
				found++
			}
			if err := set.Err(); err != nil || found == 0 {
				t.Fatalf("postings of %s=%q: %d series, err %v", n, v, found, err)
			}
		}
	}
}
