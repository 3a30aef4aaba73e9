package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAlertsCPUBenchmark measures what rule evaluation adds to the hub's CPU
// (issue #4: 1,000 machines × 10 rules at 1 s must add ≤ 10 %): a hub with no
// rules and a hub with 11 (the 9 defaults plus 2 windowed ones), each fed by
// `loadgen --machines 1000` at 1 s, alternated twice so drift on a shared
// machine hits both. Env-gated: SYSMONSTM_ALERTS_BENCH=1 (takes ~5 min);
// SYSMONSTM_ALERTS_BENCH_MACHINES overrides the fleet size.
func TestAlertsCPUBenchmark(t *testing.T) {
	if os.Getenv("SYSMONSTM_ALERTS_BENCH") == "" {
		t.Skip("benchmark: set SYSMONSTM_ALERTS_BENCH=1 to run it")
	}
	machines := os.Getenv("SYSMONSTM_ALERTS_BENCH_MACHINES")
	if machines == "" {
		machines = "1000"
	}
	rules := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - id: load-high
    name: Load high
    metric: load1
    op: ">"
    threshold: 8
    for: 2m
    aggregation: avg
    window: 1m
    severity: warning
  - id: memory-peak
    name: Memory peak
    metric: memory_usage_percent
    op: ">"
    threshold: 97
    for: 1m
    aggregation: max
    window: 5m
    severity: critical
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const warm, measure = 20 * time.Second, 40 * time.Second
	phase := func(name string, extra ...string) float64 {
		hub := startHub(t, t.TempDir(), "", "", append([]string{"--log-level", "info"}, extra...)...)
		lg := start(t, "loadgen", "loadgen", "--hub", hub.grpc, "--machines", machines, "--interval", "1s",
			"--duration", (warm + measure + 10*time.Second).String())
		time.Sleep(warm)
		pid := hub.cmd.Process.Pid
		t0, c0 := time.Now(), cpuTicks(t, pid)
		time.Sleep(measure)
		c1, el := cpuTicks(t, pid), time.Since(t0)
		pct := float64(c1-c0) / 100 / el.Seconds() * 100 // ticks are 1/100 s
		var n int
		var list []map[string]any
		getJSON(t, "http://"+hub.http+"/api/rules", &list)
		n = len(list)
		t.Logf("%-9s rules=%2d  hub CPU %.1f %% of one core over %s (rss %d MB)", name, n, pct, el.Round(time.Second), rssKB(t, pid)/1024)
		lg.kill(9)
		hub.kill(9)
		return pct
	}
	var none, with []float64
	for i := 0; i < 2; i++ {
		none = append(none, phase("no rules", "--alerts-defaults=false"))
		with = append(with, phase("11 rules", "--alerts-config", rules))
	}
	avg := func(v []float64) float64 { return (v[0] + v[1]) / 2 }
	t.Logf("machines %s: no rules %.1f %%, 11 rules %.1f %%: rules add %.1f %% of the hub's CPU",
		machines, avg(none), avg(with), (avg(with)/avg(none)-1)*100)
}
