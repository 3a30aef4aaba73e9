package store

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRawChunksWrittenOutAsTheyFinish: a head chunk the raw tier has
// finished is written out to chunks_head within a few seconds
// (rawReloadInterval), not at the TSDB's once-a-minute pass, so that a fleet
// whose series finish chunks over tens of seconds writes them in small
// pieces.
func TestRawChunksWrittenOutAsTheyFinish(t *testing.T) {
	if os.Getenv("SYSMONSTM_TEST_ENGINE") == EngineVM {
		t.Skip("the VM engine has no head chunks")
	}
	reg := prometheus.NewRegistry()
	s, _ := openTest(t, "", base.Add(time.Hour), func(o *Options) { o.Registerer = reg })
	// 1,500 samples at 1 s: more than one chunk of rawSamplesPerChunk.
	appendRange(t, s, series("cpu_usage_percent", "m1", "cpu", "0"), base, 1500, time.Second, func(i int) float64 { return float64(i % 97) })
	start := time.Now()
	deadline := start.Add(3 * rawReloadInterval)
	for {
		if n := mmappedRawChunks(t, reg); n > 0 {
			t.Logf("%v finished chunks written out %v after the commit", n, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no raw head chunk written out %v after the commit (pass every %v)", time.Since(start).Round(time.Millisecond), rawReloadInterval)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mmappedRawChunks reads prometheus_tsdb_mmap_chunks_total of the raw tier.
func mmappedRawChunks(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "prometheus_tsdb_mmap_chunks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tier" && l.GetValue() == TierRaw {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no prometheus_tsdb_mmap_chunks_total{tier=\"raw\"} in the registry")
	return 0
}
