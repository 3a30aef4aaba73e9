package metric

import (
	"math"
	"testing"
)

func TestRoundAverage(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
		want float64
	}{
		{"cpu_usage_percent", 9.548499999999995, 9.55},
		{"cpu_usage_percent", (0.1 + 0.2 + 0.2) / 3, 0.17},
		{"load1", 3699.0 / 3600, 1.03}, // 1.0275: a decimal half rounds away from zero
		{"memory_used_bytes", 5.0 / 3, 2},
		{"network_receive_bytes_per_second", 1e15 + 0.4, 1e15},
		{"filesystem_size_bytes", 123456789012345.4, 123456789012345}, // every real digit kept
		{"hwmon_temperature_celsius", 41.123456, 41.123},
		{"battery_power_watts", 7.005, 7.01},
		{"processes_running", 7.0 / 3, 2.33},
		{"uptime_seconds", 1e9 / 3, 333333333.333},
		{"app_latency_seconds", (0.0001 + 0.0002 + 0.0002) / 3, 0.000166666666667},
		{"custom_gauge", 9.548499999999995, 9.5485},
		{"cpu_usage_percent", math.MaxFloat64, math.MaxFloat64},
	} {
		if got := RoundAverage(c.name, c.v); got != c.want {
			t.Errorf("RoundAverage(%s, %v) = %v, want %v", c.name, c.v, got, c.want)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := RoundAverage("cpu_usage_percent", v); !(got == v || (math.IsNaN(v) && math.IsNaN(got))) {
			t.Errorf("RoundAverage(%v) = %v", v, got)
		}
	}
	if d, ok := Decimals("cpu_usage_percent"); !ok || d != 2 {
		t.Errorf("Decimals(cpu_usage_percent) = %d %v", d, ok)
	}
	if _, ok := Decimals("custom_gauge"); ok {
		t.Error("a custom metric has a family precision")
	}
}
