package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

type exported struct {
	key string
	t   int64
	v   float64
}

func export(t *testing.T, s *Store, q Query) []exported {
	t.Helper()
	var out []exported
	err := s.Export(context.Background(), q, func(name string, ls metric.Labels, ts int64, v float64) error {
		out = append(out, exported{key: name + fmt.Sprint(ls), t: ts, v: v})
		return nil
	})
	if err != nil {
		t.Fatalf("export %+v: %v", q, err)
	}
	return out
}

func TestExport(t *testing.T) {
	s, clk := openTest(t, "", base, func(o *Options) {
		o.RetentionRaw = time.Hour
		o.Retention1m = 3 * time.Hour
	})
	// The raw tier compacts (and so drops blocks past retention) only when
	// the test says so: its own compaction, started by the appends below,
	// would race the "nothing dropped yet" case.
	s.raw.DisableCompactions()
	// 60 hours (the 1m tier keeps two days and the out-of-order window
	// before it drops blocks) every 10 s; a constant whose sum/count is not
	// exact in binary floating point (six 9.5485 average to
	// 9.548500000000002).
	const hours = 60
	for h := range hours {
		hour := base.Add(time.Duration(h) * time.Hour)
		appendRange(t, s, series("app_load5", "m1"), hour, 360, 10*time.Second, func(int) float64 { return 9.5485 })
		appendRange(t, s, series("app_load1", "m2"), hour, 360, 10*time.Second, func(int) float64 { return 0.7 })
		appendRange(t, s, series("app_load1", "m1"), hour, 360, 10*time.Second, func(int) float64 { return 9.5485 })
	}
	noisy := 9.5485
	sum := 0.0
	for range 6 {
		sum += noisy
	}
	if sum/6 == noisy {
		t.Fatal("the test's values average exactly; pick noisier ones")
	}
	end := base.Add(hours * time.Hour)
	clk.Set(end.Add(30 * time.Second))
	mustRollup(t, s)

	// From inside raw retention: raw samples, series by series.
	at := end.Add(-30 * time.Minute)
	got := export(t, s, Query{Machine: "m1", From: at, To: at.Add(10 * time.Second)})
	want := []exported{
		{"app_load1[{machine m1}]", ms(at), 9.5485},
		{"app_load1[{machine m1}]", ms(at.Add(10 * time.Second)), 9.5485},
		{"app_load5[{machine m1}]", ms(at), 9.5485},
		{"app_load5[{machine m1}]", ms(at.Add(10 * time.Second)), 9.5485},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("raw export\n got %v\nwant %v", got, want)
	}

	// Nothing dropped from the raw tier yet: raw even from beyond its
	// retention.
	got = export(t, s, Query{Metric: "app_load1", Machine: "m1", From: base, To: base.Add(10 * time.Second)})
	want = []exported{{"app_load1[{machine m1}]", ms(base), 9.5485}, {"app_load1[{machine m1}]", ms(base.Add(10 * time.Second)), 9.5485}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("export of a raw tier that dropped nothing\n got %v\nwant %v", got, want)
	}

	// The raw tier drops its blocks past retention: minute averages from
	// the rollups, the last hour (not rolled up yet) from raw, rounded.
	if err := s.raw.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	from := end.Add(-5*time.Hour - 30*time.Second)
	if start, _ := s.raw.StartTime(); start <= ms(from) {
		t.Fatalf("raw tier still starts at %s", time.UnixMilli(start).UTC())
	}
	if wm := s.watermarks()["m1"]; wm.done1m != ms(end.Add(-time.Hour)) {
		t.Fatalf("rolled up to %s, want the last hour (open when the pass ran) left to the raw tier", time.UnixMilli(wm.done1m).UTC())
	}
	got = export(t, s, Query{Metric: "app_load1", From: from, To: end})
	want = nil
	for _, m := range []struct {
		id string
		v  float64
	}{{"m1", 9.5485}, {"m2", 0.7}} {
		for ts := end.Add(-5 * time.Hour); ts.Before(end); ts = ts.Add(time.Minute) {
			want = append(want, exported{"app_load1[{machine " + m.id + "}]", ms(ts), m.v})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("1m export\n got %v\nwant %v", got, want)
	}

	// The 1m tier drops its blocks too: hour averages from the 1h tier,
	// the last hour from the 1m and raw tiers.
	if err := s.tier1m.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if start, _ := s.tier1m.StartTime(); start <= ms(base) {
		t.Fatalf("1m tier still starts at %s", time.UnixMilli(start).UTC())
	}
	got = export(t, s, Query{Metric: "app_load1", Machine: "m2", From: base, To: end})
	want = nil
	for ts := base; ts.Before(end); ts = ts.Add(time.Hour) {
		want = append(want, exported{"app_load1[{machine m2}]", ms(ts), 0.7})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("1h export\n got %v\nwant %v", got, want)
	}

	// An error from fn stops the export.
	stop := errors.New("stop")
	n := 0
	err := s.Export(context.Background(), Query{From: base, To: base.Add(time.Hour)}, func(string, metric.Labels, int64, float64) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("export after fn error: err %v after %d calls", err, n)
	}
	if err := s.Export(context.Background(), Query{From: base.Add(time.Hour), To: base}, nil); err == nil {
		t.Fatal("export with from after to succeeded")
	}
}

// A hub younger than the export's range exports its raw samples up to now,
// before and after its first rollups, even when from lies a little beyond
// raw retention (the caller's clock read "now" a moment earlier).
func TestExportYoungHub(t *testing.T) {
	s, clk := openTest(t, "", base, nil)
	appendRange(t, s, series("app_load1", "m1"), base, 600, time.Second, func(i int) float64 { return float64(i) })
	last := base.Add(599 * time.Second)
	for _, rolled := range []bool{false, true} {
		clk.Set(last.Add(time.Second))
		if rolled {
			mustRollup(t, s)
			if wm := s.watermarks()["m1"]; wm.done1m == 0 {
				t.Fatal("no rollup happened")
			}
		}
		now := clk.Now()
		for _, from := range []time.Time{now.Add(-24 * time.Hour), now.Add(-24*time.Hour - 5*time.Millisecond), now.Add(-25 * time.Hour)} {
			got := export(t, s, Query{Machine: "m1", From: from, To: now})
			if len(got) != 600 || got[0].t != ms(base) || got[599].t != ms(last) || got[599].v != 599 {
				t.Fatalf("rolled up %v, from now-%s: %d points, first %v, last %v", rolled, now.Sub(from), len(got), got[:min(1, len(got))], got[max(0, len(got)-1):])
			}
		}
	}
}

// BenchmarkExportMinutes30d exports 30 days of 1-minute rollups of one
// machine's 20 series (864,000 rows) and reports the peak heap in use
// while it runs: the export holds one series' buckets at a time.
func BenchmarkExportMinutes30d(b *testing.B) {
	const nSeries, minutes = 20, 30 * 24 * 60
	now := base.Add(minutes * time.Minute)
	s, _ := openTest(b, "", now, nil)
	var kls []labels.Labels
	for i := range nSeries {
		ls := series("cpu_usage_percent", "m1", "cpu", fmt.Sprint(i))
		for _, kind := range rollupKinds {
			kls = append(kls, labels.NewBuilder(ls).Set(rollupLabel, kind).Labels())
		}
	}
	refs := make([]storage.SeriesRef, len(kls))
	app := s.tier1m.Appender(context.Background())
	for m := range minutes {
		t := ms(base.Add(time.Duration(m) * time.Minute))
		for j, kl := range kls {
			var err error
			if refs[j], err = app.Append(refs[j], kl, t, [4]float64{1, 3, 120, 60}[j%4]); err != nil {
				b.Fatal(err)
			}
		}
		if m%1000 == 999 {
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = s.tier1m.Appender(context.Background())
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	// Into blocks, as a month-old tier is.
	if err := s.tier1m.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	s.machines["m1"] = &watermark{maxTs: ms(now), done1m: ms(now), done1h: ms(now.Truncate(time.Hour))}
	s.mu.Unlock()
	q := Query{Machine: "m1", From: base, To: now}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	rows := 0
	for range b.N {
		rows = 0
		err := s.Export(context.Background(), q, func(string, metric.Labels, int64, float64) error { rows++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	close(done)
	if rows != nSeries*minutes {
		b.Fatalf("exported %d rows, want %d", rows, nSeries*minutes)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak.Load())-float64(before.HeapInuse), "peak-heap-growth-B")
}
