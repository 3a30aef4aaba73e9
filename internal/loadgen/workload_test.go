package loadgen

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// coreNames is the core set every Linux agent produces (SPEC §3).
var coreNames = []string{
	"cpu_usage_percent", "load1", "load5", "load15",
	"memory_total_bytes", "memory_used_bytes", "memory_available_bytes", "memory_usage_percent",
	"swap_total_bytes", "swap_used_bytes",
	"filesystem_size_bytes", "filesystem_used_bytes", "filesystem_usage_percent",
	"disk_read_bytes_per_second", "disk_write_bytes_per_second",
	"network_receive_bytes_per_second", "network_transmit_bytes_per_second",
	"processes_total", "uptime_seconds",
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestWorkloadCoreSetAndLabels(t *testing.T) {
	for machine := range 4 {
		w := NewWorkload(machine, 100, 7)
		samples := w.Tick(t0)
		if len(samples) != 100 || w.Series() != 100 {
			t.Fatalf("machine %d: %d samples, want 100", machine, len(samples))
		}
		names := map[string]int{}
		keys := map[string]bool{}
		var cpus []string
		for _, s := range samples {
			names[s.Name]++
			if err := metric.DefaultLimits.ValidateSeries(s.Name, s.Labels); err != nil {
				t.Errorf("invalid series: %v", err)
			}
			if k := s.Key(); keys[k] {
				t.Errorf("series %s repeated", k)
			} else {
				keys[k] = true
			}
			switch {
			case s.Name == "cpu_usage_percent":
				cpus = append(cpus, s.Labels.Get("cpu"))
			case strings.HasPrefix(s.Name, "filesystem_"):
				if s.Labels.Get("mountpoint") == "" || s.Labels.Get("device") == "" || s.Labels.Get("fstype") == "" {
					t.Errorf("%s labels %v", s.Name, s.Labels)
				}
			case strings.HasPrefix(s.Name, "disk_"):
				if s.Labels.Get("device") == "" {
					t.Errorf("%s labels %v", s.Name, s.Labels)
				}
			case strings.HasPrefix(s.Name, "network_"):
				if s.Labels.Get("interface") == "" {
					t.Errorf("%s labels %v", s.Name, s.Labels)
				}
			case strings.HasPrefix(s.Name, "app_"):
				if s.Labels.Get("app") == "" {
					t.Errorf("%s labels %v", s.Name, s.Labels)
				}
			}
		}
		for _, n := range coreNames {
			if names[n] == 0 {
				t.Errorf("machine %d: core metric %s missing", machine, n)
			}
		}
		wantCPUs := []string{"total"}
		for i := range len(cpus) - 1 {
			wantCPUs = append(wantCPUs, strconv.Itoa(i))
		}
		if !reflect.DeepEqual(cpus, wantCPUs) || len(cpus) < 3 {
			t.Errorf("machine %d: cpu labels %v", machine, cpus)
		}
	}
}

func TestWorkloadSeriesCount(t *testing.T) {
	for _, n := range []int{1, 10, 25, 60, 100, 1000} {
		w := NewWorkload(3, n, 1)
		if got := len(w.Tick(t0)); got != n {
			t.Errorf("series %d: got %d samples", n, got)
		}
	}
}

func TestWorkloadValues(t *testing.T) {
	w := NewWorkload(5, 120, 42)
	isMultiple := func(v, unit float64) bool {
		q := v / unit
		return math.Abs(q-math.Round(q)) < 1e-6
	}
	var prevUptime float64
	for i := range 600 {
		ts := t0.Add(time.Duration(i) * time.Second)
		vals := map[string]float64{}
		for _, s := range w.Tick(ts) {
			v := s.Value
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("tick %d: %s%v = %v", i, s.Name, s.Labels, v)
			}
			switch {
			case strings.HasSuffix(s.Name, "_percent"):
				if v > 100 || !isMultiple(v, 0.01) {
					t.Fatalf("tick %d: %s%v = %v: want 0..100 in steps of 0.01", i, s.Name, s.Labels, v)
				}
			case strings.HasSuffix(s.Name, "_bytes"), strings.HasSuffix(s.Name, "_bytes_per_second"),
				s.Name == "processes_total", s.Name == "uptime_seconds", s.Name == "app_queue_depth":
				if v != math.Trunc(v) {
					t.Fatalf("tick %d: %s%v = %v: want an integer", i, s.Name, s.Labels, v)
				}
			case strings.HasPrefix(s.Name, "load"):
				if v > 64 || !isMultiple(v, 0.01) {
					t.Fatalf("tick %d: %s = %v", i, s.Name, v)
				}
			case s.Name == "app_error_ratio":
				if v > 1 {
					t.Fatalf("tick %d: %s = %v", i, s.Name, v)
				}
			}
			if len(s.Labels) == 0 {
				vals[s.Name] = v
			}
		}
		if vals["memory_used_bytes"]+vals["memory_available_bytes"] != vals["memory_total_bytes"] {
			t.Fatalf("tick %d: used + available != total: %v", i, vals)
		}
		if vals["swap_used_bytes"] > vals["swap_total_bytes"] {
			t.Fatalf("tick %d: swap used > total", i)
		}
		if i > 0 && vals["uptime_seconds"] != prevUptime+1 {
			t.Fatalf("tick %d: uptime %v after %v", i, vals["uptime_seconds"], prevUptime)
		}
		prevUptime = vals["uptime_seconds"]
	}
}

func TestWorkloadDisksMostlyIdle(t *testing.T) {
	w := NewWorkload(0, 30, 3)
	var idle, busy int
	for i := range 1000 {
		for _, s := range w.Tick(t0.Add(time.Duration(i) * time.Second)) {
			if s.Name != "disk_read_bytes_per_second" {
				continue
			}
			switch {
			case s.Value <= 64*4096:
				idle++
			case s.Value >= 1<<20:
				busy++
			}
		}
	}
	if idle < 700 || busy == 0 {
		t.Errorf("disk reads: %d idle and %d busy ticks of 1000: want mostly idle with bursts", idle, busy)
	}
}

func TestWorkloadDeterministic(t *testing.T) {
	a, b, c := NewWorkload(2, 80, 9), NewWorkload(2, 80, 9), NewWorkload(2, 80, 10)
	differs := false
	for i := range 100 {
		ts := t0.Add(time.Duration(i) * time.Second)
		sa, sb, sc := a.Tick(ts), b.Tick(ts), c.Tick(ts)
		if !reflect.DeepEqual(sa, sb) {
			t.Fatalf("tick %d: same seed, different samples", i)
		}
		if !reflect.DeepEqual(sa, sc) {
			differs = true
		}
	}
	if !differs {
		t.Error("different seeds gave identical samples")
	}
}

func BenchmarkWorkloadTick(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("series="+strconv.Itoa(n), func(b *testing.B) {
			w := NewWorkload(1, n, 1)
			ts := t0
			b.ReportAllocs()
			for b.Loop() {
				ts = ts.Add(time.Second)
				w.Tick(ts)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
		})
	}
}
