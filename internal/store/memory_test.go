package store

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHeadBytesPerSeries measures the Go heap each tier's head keeps per raw
// series (issue #16): SYSMONSTM_BENCH_HOSTS (200) hosts × 99 series,
// SYSMONSTM_BENCH_MINUTES (5) of 1 s samples into the raw tier (past 3 h
// the raw head has been compacted once, as in a long-running hub: a steady
// state), then rolled up into the 1m and 1h tiers in one pass (blocks
// written from batches of 4 series per raw series, none kept). The live heap after a full GC is read before and after each
// step; SYSMONSTM_BENCH_MEMPROFILE=PREFIX also writes a heap profile at
// each. It is a measurement, not a check: run it with SYSMONSTM_BENCH_MEM=1 -v.
func TestHeadBytesPerSeries(t *testing.T) {
	if os.Getenv("SYSMONSTM_BENCH_MEM") == "" {
		t.Skip("set SYSMONSTM_BENCH_MEM=1 to measure the heap per series")
	}
	hosts := envInt("SYSMONSTM_BENCH_HOSTS", 200)
	ticks := 60 * envInt("SYSMONSTM_BENCH_MINUTES", 5)
	profile := os.Getenv("SYSMONSTM_BENCH_MEMPROFILE")
	step := 0
	var s *Store
	live := func() uint64 {
		if s != nil {
			// As the TSDB does once a minute of wall time (this test
			// writes hours in seconds): full head chunks go to disk.
			for _, db := range []*Tier{s.tier1m, s.tier1h} {
				db.ForceHeadMMap()
			}
			if raw, ok := s.raw.(*Tier); ok {
				raw.ForceHeadMMap()
			}
		}
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if profile != "" {
			step++
			f, err := os.Create(profile + strconv.Itoa(step) + ".pprof")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := pprof.WriteHeapProfile(f); err != nil {
				t.Fatal(err)
			}
		}
		return m.HeapAlloc
	}
	h0 := live()
	// SYSMONSTM_BENCH_ENGINE_MEMORY and SYSMONSTM_BENCH_BATCH_SERIES try
	// other engine cache allowances and rollup batch sizes.
	st, clk := openTest(t, "", base, func(o *Options) { o.EngineMemory = int64(envInt("SYSMONSTM_BENCH_ENGINE_MEMORY", 0)) })
	s = st
	if n := envInt("SYSMONSTM_BENCH_BATCH_SERIES", 0); n > 0 {
		s.batchSeries = n
	}
	h1 := live()
	ws := make([]*workload, hosts)
	refs := make([][]SeriesRef, hosts)
	for h := range ws {
		ws[h] = newWorkload("host-"+strconv.Itoa(h), uint64(h), true)
		refs[h] = make([]SeriesRef, len(ws[h].series))
	}
	vals := make([]float64, len(ws[0].series))
	ctx := context.Background()
	start := time.Now()
	for tick := range ticks {
		ts := ms(base) + int64(tick)*1000
		app := s.Appender(ctx)
		for h, w := range ws {
			w.next(vals)
			for i, ls := range w.series {
				ref, err := app.Append(refs[h][i], ls, ts, vals[i])
				if err != nil {
					t.Fatal(err)
				}
				refs[h][i] = ref
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	appendTook := time.Since(start)
	if err := s.raw.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for h := range ws {
		s.NoteWritten("host-"+strconv.Itoa(h), ms(base)+int64(ticks-1)*1000)
	}
	rawSeries := s.raw.NumSeries()
	h2 := live()
	// Past the day's end and the out-of-order window: the pass writes the
	// 1m tier, then the 1h tier, each as blocks of rollup batches. The
	// heap is read also at each batch's fullest, just before it is written.
	peak := map[string]uint64{}
	s.failAt = func(tier, step string) error {
		if step == "full" {
			peak[tier] = max(peak[tier], live())
		}
		return nil
	}
	clk.Set(base.Add(24*time.Hour + s.opts.OutOfOrderWindow + 2*s.opts.RollupLag))
	// The collector's heap goal, sampled through the pass: what the
	// process's memory follows (the live heap read at "full" misses the
	// garbage and the block being written).
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	goalBefore, goalMax := goal[0].Value.Uint64(), uint64(0)
	// And the process's resident file pages (Linux): storage files mapped
	// and read during the pass.
	fileBefore, fileMax := rssFile(), uint64(0)
	sampled, stopSampling := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(goal)
			goalMax = max(goalMax, goal[0].Value.Uint64())
			fileMax = max(fileMax, rssFile())
			select {
			case <-stopSampling:
				return
			case <-tk.C:
			}
		}
	}()
	began := time.Now()
	err := s.Rollup(ctx)
	close(stopSampling)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	passTook := time.Since(began)
	s.failAt = nil
	h3 := live()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(rawSeries) }
	t.Logf("%d raw series (%d samples in %v, %.2f M samples/s); rollup pass %v (%d batch series at most); head series: 1m %d, 1h %d; blocks: 1m %d, 1h %d",
		rawSeries, int(rawSeries)*int(ticks), appendTook.Round(time.Millisecond),
		float64(int(rawSeries)*int(ticks))/appendTook.Seconds()/1e6, passTook.Round(time.Millisecond), s.batchSeries,
		s.tier1m.Head().NumSeries(), s.tier1h.Head().NumSeries(), len(s.tier1m.Blocks()), len(s.tier1h.Blocks()))
	t.Logf("live heap per raw series: raw tier %.0f B (%d min at 1 s), 1m+1h tiers %.0f B; all tiers %.0f B; empty store %.1f MiB",
		per(h1, h2), ticks/60, per(h2, h3), per(h1, h3), float64(h1-h0)/(1<<20))
	t.Logf("transient peak during the pass, above the steady state before it, per raw series: 1m batch %.0f B, 1h batch %.0f B",
		per(h2, peak[Tier1m]), per(h2, peak[Tier1h]))
	t.Logf("the collector's heap goal during the pass: at most %.0f MiB, %.0f B per raw series above its %.0f MiB before (GOGC=%d)",
		float64(goalMax)/(1<<20), per(goalBefore, goalMax), float64(goalBefore)/(1<<20), gcPercent())
	t.Logf("resident file pages (RssFile) during the pass: at most %.0f MiB, %.0f MiB before, %.0f MiB after",
		float64(fileMax)/(1<<20), float64(fileBefore)/(1<<20), float64(rssFile())/(1<<20))
	runtime.KeepAlive(refs)
}

// rssFile returns the process's resident file-backed pages in bytes
// (RssFile in /proc/self/status), 0 where there is none.
func rssFile() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssFile:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gcPercent returns the collector's GOGC.
func gcPercent() int {
	g := debug.SetGCPercent(100)
	debug.SetGCPercent(g)
	return g
}
