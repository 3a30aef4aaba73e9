package store

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// workload makes one synthetic host's ~100 series at 1 s, shaped like a real
// Linux agent's: per-core CPU random walks, slow load averages, memory in
// 4 KiB pages, constant sizes, creeping filesystems, bursty disk and network
// rates that are mostly 0, uptime +1/s, a process count moving by a few.
type workload struct {
	rnd    *rand.Rand
	exact  bool // values rounded to their real precision, integers as integers
	series []labels.Labels
	gens   []func() float64
}

func newWorkload(machine string, seed uint64, exact bool) *workload {
	w := &workload{rnd: rand.New(rand.NewPCG(seed, 7)), exact: exact}
	add := func(g func() float64, name string, kv ...string) {
		w.series = append(w.series, series(name, machine, kv...))
		w.gens = append(w.gens, g)
	}
	// CPU: total and 16 cores, % with 0.01 precision.
	for c := -1; c < 16; c++ {
		cpu := "total"
		if c >= 0 {
			cpu = strconv.Itoa(c)
		}
		add(w.walk(w.rnd.Float64()*30, 3, 0, 100, 0.01), "cpu_usage_percent", "cpu", cpu)
		if c >= 0 {
			add(w.walk(45, 0.3, 30, 90, 1), "temperature_celsius", "sensor", "core"+cpu)
		}
	}
	add(w.walk(1.2, 0.02, 0, 64, 0.01), "load1")
	add(w.walk(1.1, 0.005, 0, 64, 0.01), "load5")
	add(w.walk(1.0, 0.002, 0, 64, 0.01), "load15")
	const memTotal = 64 << 30
	used := w.walk(20<<30, 1<<20, 1<<30, memTotal-(1<<30), 4096)
	var lastUsed float64
	add(w.constant(memTotal), "memory_total_bytes")
	add(func() float64 { lastUsed = used(); return lastUsed }, "memory_used_bytes")
	add(func() float64 { return memTotal - lastUsed }, "memory_available_bytes")
	add(func() float64 { return w.round(lastUsed/memTotal*100, 0.01) }, "memory_usage_percent")
	add(w.walk(8<<30, 256<<10, 1<<30, 30<<30, 4096), "memory_cached_bytes")
	add(w.walk(512<<20, 16<<10, 64<<20, 1<<30, 4096), "memory_buffers_bytes")
	add(w.walk(4<<30, 1<<20, 1<<28, 16<<30, 4096), "memory_free_bytes")
	add(w.constant(8<<30), "swap_total_bytes")
	add(w.bursty(0.001, 1<<20, 4096, 100<<20), "swap_used_bytes")
	for i, mnt := range []string{"/", "/home", "/var", "/boot"} {
		size := float64(int64(100+200*i) << 30)
		fsUsed := w.creep(size*0.4, 4096, 0.2)
		var lastFS float64
		kv := []string{"device", "sd" + string(rune('a'+i)), "fstype", "ext4", "mountpoint", mnt}
		add(w.constant(size), "filesystem_size_bytes", kv...)
		add(func() float64 { lastFS = fsUsed(); return lastFS }, "filesystem_used_bytes", kv...)
		add(func() float64 { return w.round(lastFS/size*100, 0.01) }, "filesystem_usage_percent", kv...)
	}
	for i := range 4 {
		dev := "nvme" + strconv.Itoa(i) + "n1"
		add(w.bursty(0.05, 4<<20, 512, 0), "disk_read_bytes_per_second", "device", dev)
		add(w.bursty(0.1, 8<<20, 512, 0), "disk_write_bytes_per_second", "device", dev)
		add(w.bursty(0.1, 40, 1, 0), "disk_io_ops_per_second", "device", dev)
		add(w.bursty(0.1, 20, 0.01, 0), "disk_io_time_percent", "device", dev)
	}
	for i, ifc := range []string{"eth0", "eth1", "lo", "docker0"} {
		p := 0.02
		if i == 0 {
			p = 0.9 // the main interface always has some traffic
		}
		add(w.bursty(p, 200<<10, 1, 0), "network_receive_bytes_per_second", "interface", ifc)
		add(w.bursty(p, 100<<10, 1, 0), "network_transmit_bytes_per_second", "interface", ifc)
		add(w.bursty(p, 300, 1, 0), "network_receive_packets_per_second", "interface", ifc)
		add(w.bursty(p, 200, 1, 0), "network_transmit_packets_per_second", "interface", ifc)
	}
	add(w.walk(350, 2, 200, 2000, 1), "processes_total")
	for _, st := range []string{"running", "blocked", "sleeping", "zombie"} {
		add(w.walk(3, 0.5, 0, 50, 1), "processes_state", "state", st)
	}
	add(w.walk(12000, 20, 1000, 1e6, 1), "context_switches_per_second")
	add(w.walk(5000, 15, 100, 1e6, 1), "interrupts_per_second")
	add(w.walk(2048, 3, 100, 1e5, 1), "file_descriptors_open")
	add(w.walk(40, 1, 0, 1e4, 1), "tcp_connections", "state", "established")
	uptime := 86400.0 * float64(1+seed%30)
	add(func() float64 { uptime++; return uptime }, "uptime_seconds")
	return w
}

// next fills vals (len(w.series)) with the next tick's values.
func (w *workload) next(vals []float64) {
	for i, g := range w.gens {
		vals[i] = g()
	}
}

// round rounds v to a multiple of prec, or adds float noise below it when
// the workload is not exact.
func (w *workload) round(v, prec float64) float64 {
	if w.exact {
		if prec < 1 {
			// As the agent rounds (collect.round2): the double nearest
			// k·prec, not k times the double nearest prec (12.34, not
			// 12.340000000000002).
			inv := math.Round(1 / prec)
			return math.Round(v*inv) / inv
		}
		return math.Round(v/prec) * prec
	}
	return v + (w.rnd.Float64()-0.5)*prec
}

func (w *workload) constant(v float64) func() float64 { return func() float64 { return v } }

// walk is a clamped random walk with steps of up to ±step.
func (w *workload) walk(start, step, lo, hi, prec float64) func() float64 {
	v := start
	return func() float64 {
		v = min(hi, max(lo, v+(w.rnd.Float64()*2-1)*step))
		return w.round(v, prec)
	}
}

// creep grows slowly: most seconds unchanged, sometimes a few pages more,
// with probability p per second.
func (w *workload) creep(start, prec, p float64) func() float64 {
	v := start
	return func() float64 {
		if w.rnd.Float64() < p {
			v += float64(1+w.rnd.IntN(64)) * prec
		}
		return w.round(v, prec)
	}
}

// bursty is idle most of the time: with probability p a second has a burst
// of up to peak.
func (w *workload) bursty(p, peak, prec, idle float64) func() float64 {
	return func() float64 {
		if w.rnd.Float64() >= p {
			return idle
		}
		return w.round(w.rnd.Float64()*peak, prec)
	}
}
