package alert

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/loadgen"
)

// fleet is a simulated fleet's batches: per machine the same *live.Series
// every batch (as ingest passes them) and the values of one tick.
type fleet struct {
	ids    []string
	series [][]*live.Series
	values [][]float64
}

func newFleet(machines, series int) *fleet {
	f := &fleet{}
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range machines {
		w := loadgen.NewWorkload(i, series, 1)
		samples := w.Tick(ts)
		ss := make([]*live.Series, len(samples))
		vs := make([]float64, len(samples))
		for j, s := range samples {
			ss[j] = live.NewSeries(s.Name, s.Labels)
			vs[j] = s.Value
		}
		f.ids = append(f.ids, fmt.Sprintf("loadgen-%04d", i))
		f.series = append(f.series, ss)
		f.values = append(f.values, vs)
	}
	return f
}

// benchRules are two aggregating rules on series the workload has, added
// to the defaults.
var benchRules = []string{
	`{"name":"app errors","metric":"app_error_ratio","op":">","threshold":0.5,"aggregation":"avg","window":"1m","for":"1m"}`,
	`{"name":"nic saturated","metric":"network_receive_bytes_per_second{interface=\"eth*\"}","op":">","threshold":1e9,"aggregation":"max","window":"30s"}`,
}

func benchEngine(b *testing.B) *Engine {
	h := newHarness(b, Options{Defaults: true})
	h.e.now = time.Now // the real clock: its cost is part of Observe
	for _, js := range benchRules {
		h.createRule(js)
	}
	if n, want := len(h.e.Rules()), len(DefaultRules())+len(benchRules); n != want {
		b.Fatalf("%d rules, want %d", n, want)
	}
	return h.e
}

// BenchmarkObserve measures the engine's cost per sample on a fleet of
// 1,000 machines × 1,300 series with the default rules plus two windowed
// ones, one batch per iteration, machines in turn.
func BenchmarkObserve(b *testing.B) {
	const machines, series = 1000, 1300
	f := newFleet(machines, series)
	e := benchEngine(b)
	ts := time.Now().UnixMilli()
	for i := range machines { // warm the caches: steady state
		e.Observe(f.ids[i], ts, f.series[i], f.values[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := i % machines
		if m == 0 {
			ts += 1000
		}
		e.Observe(f.ids[m], ts, f.series[m], f.values[m])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/sample")
	e.stopWorkers()
}

// BenchmarkObserveParallel is BenchmarkObserve from GOMAXPROCS goroutines
// (ingest's writers call Observe concurrently).
func BenchmarkObserveParallel(b *testing.B) {
	const machines, series = 1000, 1300
	f := newFleet(machines, series)
	e := benchEngine(b)
	ts := time.Now().UnixMilli()
	for i := range machines {
		e.Observe(f.ids[i], ts, f.series[i], f.values[i])
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			m := int(n % machines)
			e.Observe(f.ids[m], ts+n/machines*1000, f.series[m], f.values[m])
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/sample")
	e.stopWorkers()
}

// BenchmarkLiveUpdate is the live state's cost for the same batches, for
// scale: the engine's budget is a fraction of the hub's per-sample work.
func BenchmarkLiveUpdate(b *testing.B) {
	const machines, series = 1000, 1300
	f := newFleet(machines, series)
	st, err := live.New(live.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	for i := range machines {
		st.Update(f.ids[i], ts, f.series[i], f.values[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := i % machines
		if m == 0 {
			ts += 1000
		}
		st.Update(f.ids[m], ts, f.series[m], f.values[m])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/sample")
}

// TestObserveAllocations keeps the hot path allocation-free in steady
// state.
func TestObserveAllocations(t *testing.T) {
	f := newFleet(20, 1300)
	h := newHarness(t, Options{Defaults: true})
	for _, js := range benchRules {
		h.createRule(js)
	}
	ts := t0.UnixMilli()
	for i := range f.ids {
		h.e.Observe(f.ids[i], ts, f.series[i], f.values[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		m := i % len(f.ids)
		i++
		ts += 10
		h.e.Observe(f.ids[m], ts, f.series[m], f.values[m])
	})
	if allocs > 0 {
		t.Fatalf("Observe allocates %.1f times per batch in steady state", allocs)
	}
}
