package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// fixedNow is the clock of every model test.
var fixedNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func samples(cpu float64, cores []float64, mem, fsPct, load, rx, tx float64) []metric.Sample {
	l := func(kv ...string) metric.Labels {
		var ls metric.Labels
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, metric.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	ss := []metric.Sample{
		{Name: "cpu_usage_percent", Labels: l("cpu", "total"), Value: cpu},
		{Name: "load1", Value: load}, {Name: "load5", Value: load * 0.9}, {Name: "load15", Value: load * 0.8},
		{Name: "memory_usage_percent", Value: mem},
		{Name: "memory_total_bytes", Value: 16 << 30}, {Name: "memory_used_bytes", Value: mem / 100 * (16 << 30)},
		{Name: "swap_total_bytes", Value: 2 << 30}, {Name: "swap_used_bytes", Value: 0},
		{Name: "filesystem_usage_percent", Labels: l("device", "/dev/sda1", "fstype", "ext4", "mountpoint", "/"), Value: fsPct},
		{Name: "filesystem_size_bytes", Labels: l("device", "/dev/sda1", "fstype", "ext4", "mountpoint", "/"), Value: 100 << 30},
		{Name: "filesystem_used_bytes", Labels: l("device", "/dev/sda1", "fstype", "ext4", "mountpoint", "/"), Value: fsPct / 100 * (100 << 30)},
		{Name: "filesystem_usage_percent", Labels: l("device", "/dev/sdb1", "fstype", "xfs", "mountpoint", "/data"), Value: fsPct / 2},
		{Name: "filesystem_size_bytes", Labels: l("device", "/dev/sdb1", "fstype", "xfs", "mountpoint", "/data"), Value: 2 << 40},
		{Name: "filesystem_used_bytes", Labels: l("device", "/dev/sdb1", "fstype", "xfs", "mountpoint", "/data"), Value: fsPct / 200 * (2 << 40)},
		{Name: "disk_read_bytes_per_second", Labels: l("device", "sda"), Value: rx / 3},
		{Name: "disk_write_bytes_per_second", Labels: l("device", "sda"), Value: tx / 3},
		{Name: "network_receive_bytes_per_second", Labels: l("interface", "eth0"), Value: rx},
		{Name: "network_transmit_bytes_per_second", Labels: l("interface", "eth0"), Value: tx},
		{Name: "network_receive_bytes_per_second", Labels: l("interface", "lo"), Value: 1e9},
		{Name: "network_transmit_bytes_per_second", Labels: l("interface", "lo"), Value: 1e9},
		{Name: "processes_total", Value: 200 + load*10},
		{Name: "uptime_seconds", Value: 3*86400 + 4*3600},
		{Name: "app_requests", Labels: l("app", "x"), Value: 5},
	}
	for i, c := range cores {
		ss = append(ss, metric.Sample{Name: "cpu_usage_percent", Labels: l("cpu", fmt.Sprint(i)), Value: c})
	}
	return ss
}

// fixtureFleet builds a fleet of n machines with deterministic values and
// 30 samples of history each; machine 3 is offline and machine 5 has a
// hostile hostname and labels.
func fixtureFleet(n int) *Fleet {
	f := NewFleet()
	f.Update(func(w FleetWriter) {
		for i := range n {
			id := fmt.Sprintf("web-%02d", i)
			if i%4 == 1 {
				id = fmt.Sprintf("db-%02d", i)
			}
			m := w.Machine(id)
			host := id + ".example"
			labels := map[string]string{"env": "prod"}
			if i == 5 {
				host = "evil\x1b]0;pwned\x07\x1b[2J"
				labels = map[string]string{"role\r": "x\u009b31m", "bad": "\xff\xfe"}
			}
			m.SetMeta(host, labels, i != 3, i != 3, fixedNow.Add(-2*time.Second))
			m.Info = Info{OS: "linux", Platform: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-18-amd64", Arch: "amd64",
				CPUModel: "AMD EPYC 7B13", CPUCores: 2, CPUThreads: 4, MemoryTotal: 16 << 30, AgentVersion: "0.1.0", IntervalMs: 1000}
			for t := range 30 {
				wave := math.Sin(float64(t+i) / 4)
				cpu := math.Mod(float64(i*37), 100)*0.9 + 5*wave
				cpu = min(max(cpu, 0), 100)
				cores := []float64{cpu, cpu / 2, min(cpu*1.1, 100), 3}
				applySamples(m, samples(cpu, cores, math.Mod(float64(i*53), 97), math.Mod(float64(20+i*29), 99), float64(i%7)*0.8, float64((i+1)*12345)*(1.5+wave), float64((i+1)*2345)))
			}
		}
	})
	f.SetConn(ConnState{Connected: true})
	f.SetAlertsUnavailable(ErrNoAlerts.Error() + " (GET /api/alerts: 404)")
	return f
}

// fixtureAlerts are alerts for the alerts view.
func fixtureAlerts() []Alert {
	return []Alert{
		{ID: "a1", RuleID: "r1", Rule: "cpu high", Machine: "web-08", State: "firing", Severity: "critical", Value: 97.5, StartedAt: fixedNow.Add(-5 * time.Minute)},
		{ID: "a2", RuleID: "r2", Rule: "disk full", Machine: "db-05", State: "pending", Severity: "warning", Value: 91, StartedAt: fixedNow.Add(-30 * time.Second)},
		{ID: "a3", RuleID: "r1", Rule: "cpu high", Machine: "web-02", State: "resolved", Severity: "critical", Value: 40, StartedAt: fixedNow.Add(-2 * time.Hour), Acknowledged: true},
		{ID: "a4", RuleID: "r3", Rule: "evil\x1b[2J", Machine: "web-00", State: "firing", Severity: "warning", Value: 80, StartedAt: fixedNow.Add(-10 * time.Minute)},
	}
}

func lines(s string) []string { return strings.Split(s, "\n") }
