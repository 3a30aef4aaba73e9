package store

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/compression"
)

// BenchmarkAppend measures samples/s through one raw-tier Appender with
// cached series refs: 100 hosts × ~100 series, one commit per 1 s tick.
func BenchmarkAppend(b *testing.B) {
	const hosts, ticks = 100, 60
	s, _ := openTest(b, "", base, nil)
	type host struct {
		w    *workload
		refs []SeriesRef
		vals [][]float64 // per tick
	}
	hs := make([]*host, hosts)
	perTick := 0
	for h := range hs {
		w := newWorkload("host-"+strconv.Itoa(h), uint64(h), true)
		x := &host{w: w, refs: make([]SeriesRef, len(w.series))}
		for range ticks {
			v := make([]float64, len(w.series))
			w.next(v)
			x.vals = append(x.vals, v)
		}
		hs[h] = x
		perTick += len(w.series)
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	n, tick := 0, 0
	for n < b.N {
		app := s.Appender(ctx)
		ts := ms(base) + int64(tick)*1000
		for _, h := range hs {
			vals := h.vals[tick%ticks]
			for i, ls := range h.w.series {
				ref, err := app.Append(h.refs[i], ls, ts, vals[i])
				if err != nil {
					b.Fatal(err)
				}
				h.refs[i] = ref
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		n += perTick
		tick++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "samples/s")
}

// TestBytesPerSample writes SYSMONSTM_BENCH_HOSTS (200) hosts × 100 series ×
// SYSMONSTM_BENCH_HOURS (3) of 1 s data per variant through a fresh Store's
// own Appender (so catalogue values are scaled as in production), compacts
// the raw head and reports on-disk bytes per sample. With
// SYSMONSTM_BENCH_ROLLUPS=1 it also rolls the data up and reports the 1m
// tier's bytes per stored rollup sample (min, max, sum and count each
// count). It is a measurement, not a check: run it with
// SYSMONSTM_BENCH_BYTES=1 -v.
func TestBytesPerSample(t *testing.T) {
	if os.Getenv("SYSMONSTM_BENCH_BYTES") == "" {
		t.Skip("set SYSMONSTM_BENCH_BYTES=1 to measure bytes per sample")
	}
	hosts := envInt("SYSMONSTM_BENCH_HOSTS", 200)
	hours := envInt("SYSMONSTM_BENCH_HOURS", 3)
	rollups := os.Getenv("SYSMONSTM_BENCH_ROLLUPS") != ""
	variants := []struct {
		name     string
		exact    bool
		jitter   int64 // ± ms on each timestamp
		wal      compression.Type
		spc      int  // samples per chunk; 0: the raw tier's
		unscaled bool // store values as given, as before scaling
	}{
		{"on-tick/rounded/snappy", true, 0, compression.Snappy, 0, false},
		{"on-tick/rounded/snappy/unscaled", true, 0, compression.Snappy, 0, true},
		{"on-tick/rounded/snappy/120-per-chunk", true, 0, compression.Snappy, 120, false},
		{"on-tick/rounded/zstd", true, 0, compression.Zstd, 0, false},
		{"on-tick/rounded/no-wal-compression", true, 0, compression.None, 0, false},
		{"jitter3ms/rounded", true, 3, compression.Snappy, 0, false},
		{"on-tick/float-noise", false, 0, compression.Snappy, 0, false},
		{"jitter3ms/float-noise", false, 3, compression.Snappy, 0, false},
	}
	if only := os.Getenv("SYSMONSTM_BENCH_VARIANT"); only != "" {
		for i := range variants {
			if variants[i].name == only {
				variants = variants[i : i+1]
				break
			}
		}
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			end := base.Add(time.Duration(hours) * time.Hour)
			s, clk := openTest(t, dir, end, func(o *Options) {
				o.tune = func(tier string, o *tsdb.Options) {
					o.WALCompression = v.wal
					if tier == TierRaw {
						o.SamplesPerChunk = cmp.Or(v.spc, rawSamplesPerChunk)
					}
				}
			})
			if _, vm := s.raw.(*vmRaw); vm && (v.unscaled || v.spc != 0) {
				t.Skip("a variant of the TSDB raw tier")
			}
			if v.unscaled {
				rawTSDB(t, s).since, s.tier1m.since, s.tier1h.since = math.MaxInt64, math.MaxInt64, math.MaxInt64
			}
			ws := make([]*workload, hosts)
			refs := make([][]SeriesRef, hosts)
			for h := range ws {
				ws[h] = newWorkload("host-"+strconv.Itoa(h), uint64(h), v.exact)
				refs[h] = make([]SeriesRef, len(ws[h].series))
			}
			jit := rand.New(rand.NewPCG(1, 2))
			vals := make([]float64, 128)
			samples := 0
			began := time.Now()
			ctx := context.Background()
			var err error
			for tick := range hours * 3600 {
				app := s.Appender(ctx)
				for h, w := range ws {
					w.next(vals)
					ts := ms(base) + int64(tick)*1000
					if v.jitter > 0 {
						ts += jit.Int64N(2*v.jitter+1) - v.jitter // one jitter per host and tick, like a real agent
					}
					for i, ls := range w.series {
						if refs[h][i], err = app.Append(refs[h][i], ls, ts, vals[i]); err != nil {
							t.Fatal(err)
						}
					}
					samples += len(w.series)
				}
				if err := app.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			appendSecs := time.Since(began).Seconds()
			if vm, ok := s.raw.(*vmRaw); ok {
				// The VM engine: its files once every sample is in them
				// and merged, as the hub leaves them after a while.
				walBytes := dirSize(t, filepath.Join(vm.Dir(), "wal"))
				if err := vm.Compact(ctx); err != nil {
					t.Fatal(err)
				}
				if err := vm.st.ForceMergePartitions(""); err != nil {
					t.Fatal(err)
				}
				data := dirSize(t, filepath.Join(vm.Dir(), "data"))
				t.Logf("%s (engine vm): %d hosts × %d series × %dh = %d samples; append %.2f M samples/s; WAL %.2f B/sample; data %.3f B/sample",
					v.name, hosts, len(ws[0].series), hours, samples, float64(samples)/appendSecs/1e6,
					float64(walBytes)/float64(samples), float64(data)/float64(samples))
				return
			}
			walBytes := dirSize(t, filepath.Join(dir, TierRaw, "wal"))
			var mem runtime.MemStats
			runtime.ReadMemStats(&mem)
			blockBytes, chunkBytes, indexBytes := compactedSize(t, rawTSDB(t, s))
			t.Logf("%s: %d hosts × %d series × %dh = %d samples; append %.2f M samples/s; heap %d MiB; WAL %.2f B/sample; block %.3f B/sample (chunks %.3f, index %.3f)",
				v.name, hosts, len(ws[0].series), hours, samples, float64(samples)/appendSecs/1e6, mem.HeapAlloc>>20,
				float64(walBytes)/float64(samples), float64(blockBytes)/float64(samples),
				float64(chunkBytes)/float64(samples), float64(indexBytes)/float64(samples))
			if !rollups {
				return
			}
			for _, w := range ws {
				s.NoteWritten(w.series[0].Get("machine"), ms(end)-1)
			}
			// Roll up half an hour at a time, as the downsampler running
			// all along would have: one pass over 3 h would meet the 1m
			// tier's out-of-order window with each host's oldest minutes.
			for at := base.Add(30 * time.Minute); !at.After(end.Add(30 * time.Minute)); at = at.Add(30 * time.Minute) {
				clk.Set(at.Add(DefaultRollupLag))
				mustRollup(t, s)
			}
			stored := countSamples(t, s.tier1m)
			b1m, c1m, i1m := compactedSize(t, s.tier1m)
			t.Logf("%s: 1m tier: %d rollup samples; block %.3f B/rollup sample (chunks %.3f, index %.3f)",
				v.name, stored, float64(b1m)/float64(stored), float64(c1m)/float64(stored), float64(i1m)/float64(stored))
		})
	}
}

// compactedSize compacts db's whole head into a block and returns the
// blocks' bytes: chunks plus index.
func compactedSize(t *testing.T, db *Tier) (total, chunkBytes, indexBytes int64) {
	t.Helper()
	head := db.Head()
	if err := db.CompactHead(tsdb.NewRangeHead(head, head.MinTime(), head.MaxTime())); err != nil {
		t.Fatal(err)
	}
	for _, b := range db.Blocks() {
		chunkBytes += dirSize(t, filepath.Join(b.Dir(), "chunks"))
		indexBytes += fileSize(t, filepath.Join(b.Dir(), "index"))
	}
	return chunkBytes + indexBytes, chunkBytes, indexBytes
}

// countSamples counts the samples db holds.
func countSamples(t *testing.T, db *Tier) int64 {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	var n int64
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			n++
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func dirSize(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fileSize(t testing.TB, path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// BenchmarkQuery24h queries one machine's 24 h history (100 series, 1m tier
// in compacted blocks) with Step 0, as the dashboard does.
func BenchmarkQuery24h(b *testing.B) {
	now := base.Add(48 * time.Hour)
	s, _ := openTest(b, "", now, nil)
	w := newWorkload("m1", 1, true)
	ctx := context.Background()
	from := now.Add(-24 * time.Hour)
	// Write rollups straight into the 1m tier: per minute, 60 samples of the
	// workload folded into min/max/sum/count.
	refs := make([][4]storage.SeriesRef, len(w.series))
	lsets := make([][4]labels.Labels, len(w.series))
	for i, ls := range w.series {
		for k, kind := range rollupKinds {
			lsets[i][k] = labels.NewBuilder(ls).Set(rollupLabel, kind).Labels()
		}
	}
	vals := make([]float64, len(w.series))
	aggs := make([]aggr, len(w.series))
	for minute := range 24 * 60 {
		for i := range aggs {
			aggs[i] = aggr{min: 1e300, max: -1e300}
		}
		for range 60 {
			w.next(vals)
			for i, v := range vals {
				a := &aggs[i]
				a.min, a.max, a.sum, a.count = min(a.min, v), max(a.max, v), a.sum+v, a.count+1
			}
		}
		app := s.tier1m.Appender(ctx)
		ts := ms(from) + int64(minute)*minuteMs
		for i := range aggs {
			for k, v := range aggs[i].values() {
				var err error
				if refs[i][k], err = app.Append(refs[i][k], lsets[i][k], ts, v); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.tier1m.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	// As in a running hub just before its next 1m batch (a closed hour
	// plus RollupLag), the newest 62 minutes are not rolled up yet and come
	// from the raw tier.
	const tailSec = 62 * 60
	rawRefs := make([]SeriesRef, len(w.series))
	app := s.Appender(ctx)
	for sec := range tailSec {
		w.next(vals)
		for i, ls := range w.series {
			var err error
			if rawRefs[i], err = app.Append(rawRefs[i], ls, ms(now)-tailSec*1000+int64(sec)*1000, vals[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	s.NoteWritten("m1", ms(now))
	s.mu.Lock()
	s.machines["m1"].done1m = ms(now) - tailSec*1000
	s.machines["m1"].done1h = floorTo(ms(now)-tailSec*1000, batch1h)
	s.mu.Unlock()
	// Wait for any compaction the appends triggered in the background, and
	// keep it from running while we time queries.
	s.tier1m.DisableCompactions()
	defer s.tier1m.EnableCompactions()
	runtime.GC()
	names := map[string]bool{}
	for _, ls := range w.series {
		names[ls.Get(labels.MetricName)] = true
	}
	var metrics []string
	for n := range names {
		metrics = append(metrics, n)
	}
	sort.Strings(metrics)
	query := func(name string) int {
		res, err := s.Query(ctx, Query{Metric: name, Machine: "m1", From: from, To: now})
		if err != nil {
			b.Fatal(err)
		}
		if res.Tier != Tier1m || len(res.Series) == 0 {
			b.Fatalf("%s: tier %s, %d series", name, res.Tier, len(res.Series))
		}
		n := 0
		for _, ser := range res.Series {
			n += len(ser.Points)
		}
		return n
	}
	b.Logf("1m tier: %d blocks; %d metric names, %d series", len(s.tier1m.Blocks()), len(metrics), len(w.series))
	b.Run("one-metric-load1", func(b *testing.B) {
		for b.Loop() {
			query("load1")
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
	})
	b.Run("one-metric-cpu-17-series", func(b *testing.B) {
		for b.Loop() {
			query("cpu_usage_percent")
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
	})
	b.Run("whole-machine-100-series", func(b *testing.B) {
		points := 0
		for b.Loop() {
			points = 0
			for _, m := range metrics {
				points += query(m)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/machine")
		b.ReportMetric(float64(points), "points")
	})
}

// BenchmarkHeadStripes measures one sample appended and committed to each
// of 1 M series of a raw-tier TSDB head (group commits of 10,000, as the
// ingest writers make them at 1 M samples/s) for head stripe counts from
// the TSDB's default up: the per-sample series lookup by reference misses
// the CPU's caches, less so when each stripe's map holds a handful of
// series. Not run in CI (b.N rounds of 1 M samples, ~2 GB of heap).
func BenchmarkHeadStripes(b *testing.B) {
	for _, stripes := range []int{tsdb.DefaultStripeSize, 1 << 16, 1 << 17, 1 << 18} {
		b.Run(strconv.Itoa(stripes), func(b *testing.B) {
			benchHeadRounds(b, stripes, 10_000)
		})
	}
}

// BenchmarkGroupCommit measures the same rounds with the head sized as the
// store sizes it for 1 M series, by the size of the group committed at
// once: the ingest writers' steady groups are ~5,000-10,000 samples at
// 1 M samples/s, and writers that fall behind take groups up to their
// bound (ingest's maxSamplesPerCommit: 10,000, was 200,000). A group is
// appended in two passes over its series (Append, then Commit); this says
// what a larger group costs per sample (docs/benchmarks.md, "Group commits and
// the hourly pass at 1 M series"). Not run in CI.
func BenchmarkGroupCommit(b *testing.B) {
	for _, group := range []int{5_000, 10_000, 16_000, 20_000, 32_000, 200_000} {
		b.Run(strconv.Itoa(group), func(b *testing.B) {
			benchHeadRounds(b, rawHeadStripes(1_000_000), group)
		})
	}
}

// benchHeadRounds appends b.N rounds of one sample to each of 1 M series of
// a raw-tier TSDB head of stripes stripes, committed in groups of group
// consecutive series, and reports ns per sample.
func benchHeadRounds(b *testing.B, stripes, group int) {
	const n = 1_000_000
	db := openRawTier(b, stripes)
	defer db.Close()
	var err error
	refs := make([]storage.SeriesRef, n)
	t := time.Now().UnixMilli()
	app := db.Appender(context.Background())
	for i := range refs {
		if refs[i], err = app.Append(0, labels.FromStrings("__name__", "m", "i", strconv.Itoa(i)), t, 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		t += 1000
		for g := 0; g < n; g += group {
			app := db.Appender(context.Background())
			for _, ref := range refs[g:min(g+group, n)] {
				if _, err := app.Append(ref, labels.EmptyLabels(), t, float64(rng.IntN(1000))); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
}

// BenchmarkRawHeadCompaction measures what the raw tier's TSDB does once an
// hour in a hub that runs for hours: writing the head's oldest hour out as
// a block (LeveledCompactor.Write, the one block write the store does not
// pace). The head holds series series of minutes minutes of one sample a
// second (values 0-999), appended in groups of 10,000 as the ingest
// writers commit them; each op writes them out as one block and reports
// ns per sample written. At 1 M series and 18 minutes a whole hub's live
// view fell 15-31 s behind during this write (docs/benchmarks.md, "Steady
// hours, both passes, and the raw head's compaction at 1 M series"). Not
// run in CI; both sizes took 574 s with their set-up on a 2-vCPU VM, the
// smaller alone about a minute:
//
//	go test -run XXX -bench 'RawHeadCompaction/series=100000/' -benchtime 1x ./internal/store/
func BenchmarkRawHeadCompaction(b *testing.B) {
	for _, c := range []struct{ series, minutes int }{{100_000, 18}, {1_000_000, 18}} {
		b.Run("series="+strconv.Itoa(c.series)+"/minutes="+strconv.Itoa(c.minutes), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db := rawHeadOf(b, c.series, c.minutes)
				h := db.Head()
				b.StartTimer()
				if err := db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n := len(db.Blocks()); n != 1 {
					b.Fatalf("the head was written out as %d blocks, want 1", n)
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.series*c.minutes*60), "ns/sample")
		})
	}
}

// BenchmarkOutOfOrderCompaction measures how long the raw tier's commits
// wait once an hour: the out-of-order compaction, which the store runs
// with the commits held (rawcompact.go), visits every head series. The
// head holds series series of 2 minutes, 1 % of them with 10 late
// samples each; ms/op is the time the commits are held.
func BenchmarkOutOfOrderCompaction(b *testing.B) {
	for _, series := range []int{100_000, 1_000_000} {
		b.Run("series="+strconv.Itoa(series), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				db := rawHeadOf(b, series, 2)
				h := db.Head()
				app := db.Appender(context.Background())
				for i := 0; i < series; i += 100 {
					l := labels.FromStrings("__name__", "m", "i", strconv.Itoa(i))
					for k := range 10 {
						if _, err := app.Append(0, l, h.MinTime()+int64(k)*1000+500, 1); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := db.CompactOOOHead(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if len(db.Blocks()) == 0 {
					b.Fatal("no block written from the out-of-order head")
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkCommitsDuringHeadWrite measures what the raw head's block write
// does to commits that go on meanwhile, unpaced (duty 1) and at the default
// duty: a store's raw tier holds 300,000 series of a sample every 10 s over
// 95 minutes (its head compactable), and while Compact writes the first
// hour's block (360 samples per series) a writer commits a sample of every
// series each second, in
// groups of 10,000 on a fixed schedule. Reported: the write's seconds, how
// late the commits finished after their scheduled time (p99, max), and
// what the process read from the disk meanwhile (major page faults: the
// head's chunk files are read through a mapping; MiB read). In
// a hub the head write also competes with ingest's decoding and the live
// view; this isolates the store.
func BenchmarkCommitsDuringHeadWrite(b *testing.B) {
	const series, group = 300_000, 10_000
	for _, duty := range []float64{1, DefaultRollupDuty} {
		b.Run(fmt.Sprintf("duty=%v", duty), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s, err := Open(Options{Dir: b.TempDir(), RollupDuty: duty, MinFree: 1})
				if err != nil {
					b.Fatal(err)
				}
				raw := s.raw.(*Tier)
				raw.DisableCompactions()
				// Nothing arrives out of order: no out-of-order compaction
				// (BenchmarkOutOfOrderCompaction) after the head's.
				raw.gate.oooKnown = true
				// 95 minutes from an hour's start: the write is that hour.
				start := base.UnixMilli()
				end := start + (95 * time.Minute).Milliseconds()
				refs := fillSeries(b, raw.Appender, series, start, end, 10_000,
					func(i int) labels.Labels {
						return labels.FromStrings("__name__", "app_bench", "machine", "m"+strconv.Itoa(i/1000), "i", strconv.Itoa(i))
					},
					func(i int) float64 { return float64(i % 1000) })
				stop, done := make(chan struct{}), make(chan []time.Duration)
				go func() {
					var late []time.Duration
					next := time.Now()
					began := next
					every := time.Second * group / series
					for k := 0; ; k++ {
						select {
						case <-stop:
							done <- late
							return
						default:
						}
						time.Sleep(time.Until(next))
						ts := end + next.Sub(began).Milliseconds()
						app := raw.Appender(context.Background())
						g := k % (series / group) * group
						for i := g; i < g+group; i++ {
							if _, err := app.Append(refs[i], labels.EmptyLabels(), ts, 1); err != nil {
								b.Error(err)
							}
						}
						if err := app.Commit(); err != nil {
							b.Error(err)
						}
						late = append(late, time.Since(next))
						next = next.Add(every)
					}
				}()
				time.Sleep(2 * time.Second)
				faults0, read0 := diskReadIn()
				b.StartTimer()
				began := time.Now()
				if err := raw.Compact(context.Background()); err != nil {
					b.Fatal(err)
				}
				took := time.Since(began)
				b.StopTimer()
				faults, read := diskReadIn()
				close(stop)
				late := <-done
				if len(raw.Blocks()) == 0 {
					b.Fatal("no block written")
				}
				slices.Sort(late)
				b.ReportMetric(took.Seconds(), "write_s")
				b.ReportMetric(float64(late[len(late)*99/100].Microseconds())/1000, "late_p99_ms")
				b.ReportMetric(float64(late[len(late)-1].Microseconds())/1000, "late_max_ms")
				b.ReportMetric(float64(faults-faults0), "major_faults")
				if read >= 0 && read0 >= 0 {
					b.ReportMetric(float64(read-read0)/(1<<20), "disk_read_MiB")
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// diskReadIn returns the process's major page faults so far (a mapped
// page read from the file) and the bytes it had read from storage
// (/proc/self/io read_bytes; -1 where there is none).
func diskReadIn() (majorFaults, readBytes int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		majorFaults = int64(ru.Majflt)
	}
	readBytes = -1
	if b, err := os.ReadFile("/proc/self/io"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "read_bytes: "); ok {
				readBytes, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return majorFaults, readBytes
}

// rawHeadOf opens a raw-tier TSDB whose head holds series series of
// minutes minutes of one sample a second, committed in groups of 10,000.
func rawHeadOf(b *testing.B, series, minutes int) *tsdb.DB {
	b.Helper()
	db := openRawTier(b, rawHeadStripes(uint64(series)))
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Truncate(time.Hour).Add(-time.Hour).UnixMilli()
	fillSeries(b, db.Appender, series, start, start+int64(minutes)*60_000, 1000,
		func(i int) labels.Labels { return labels.FromStrings("__name__", "m", "i", strconv.Itoa(i)) },
		func(int) float64 { return float64(rng.IntN(1000)) })
	return db
}

// fillSeries appends a sample of each of series series (labelled by
// labelsOf, valued by value) every step ms from start to before end,
// committed in groups of 10,000 as ingest commits, and returns the
// series' refs.
func fillSeries(b *testing.B, appender func(context.Context) storage.Appender, series int, start, end, step int64,
	labelsOf func(i int) labels.Labels, value func(i int) float64) []storage.SeriesRef {
	b.Helper()
	refs := make([]storage.SeriesRef, series)
	var err error
	for t := start; t < end; t += step {
		for g := 0; g < series; g += 10_000 {
			app := appender(context.Background())
			for i := g; i < min(g+10_000, series); i++ {
				l := labels.EmptyLabels()
				if refs[i] == 0 {
					l = labelsOf(i)
				}
				if refs[i], err = app.Append(refs[i], l, t, value(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return refs
}

// openRawTier opens an empty TSDB with the raw tier's options (7 days kept,
// a 2-h out-of-order window) and a head of stripes stripes.
func openRawTier(b testing.TB, stripes int) *tsdb.DB {
	b.Helper()
	o := rawTierOptions(Options{RetentionRaw: 7 * 24 * time.Hour, OutOfOrderWindow: 2 * time.Hour})
	o.StripeSize = stripes
	db, err := tsdb.Open(b.TempDir(), nil, nil, o, nil)
	if err != nil {
		b.Fatal(err)
	}
	return db
}
