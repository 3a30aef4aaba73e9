package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

const (
	kib  = 1024.0
	mib  = 1024 * kib
	gib  = 1024 * mib
	page = 4096.0 // memory and filesystem values move in whole pages/blocks
)

// Workload generates one simulated machine's samples: the agent's core set
// (see docs/metrics.md) with realistic values, padded with further network
// interfaces, a disk and app_* gauges up to the requested series count. Its
// values are random walks that depend only on the seed, the machine index
// and the sequence of Tick calls, so a seed replays exactly. Not safe for
// concurrent use.
type Workload struct {
	r      *rand.Rand
	series []wseries
	boot   int64 // unix seconds the simulated host booted
	lastTs time.Time

	cores     []walk
	cpuTotal  float64
	load      [3]float64 // 1, 5, 15 minutes
	memTotal  float64    // bytes
	mem       walk       // used bytes
	swapTotal float64
	swap      walk
	fs        []fsState
	disks     []diskState
	nics      []nicState
	procs     walk
	apps      []appState
	loadInit  bool
}

// wseries is one output series; value reads the machine state after update.
type wseries struct {
	name   string
	labels metric.Labels
	value  func(ts time.Time) float64
}

// walk is a mean-reverting random walk clamped to [lo, hi].
type walk struct {
	v, mean, sigma, pull, lo, hi float64
}

func (w *walk) step(r *rand.Rand, dt float64) float64 {
	s := math.Sqrt(dt)
	w.v += r.NormFloat64()*w.sigma*s + (w.mean-w.v)*min(1, w.pull*dt)
	w.v = max(w.lo, min(w.hi, w.v))
	return w.v
}

type fsState struct {
	mount, device, fstype string
	size                  float64 // bytes
	used                  float64 // bytes
	growth                float64 // mean bytes/s written and kept
}

type diskState struct {
	device      string
	read, write float64 // bytes/s this tick
	burst       int     // ticks of burst left
	burstRate   float64
}

type nicState struct {
	name   string
	rx, tx walk // bytes/s
}

type appState struct {
	name                             string
	rps, errRatio, queue, lat, conns walk
}

// NewWorkload builds the generator for machine (0-based) with series series
// (at least the first series of the core set when series is smaller than it).
func NewWorkload(machine int, series int, seed int64) *Workload {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(machine)))
	w := &Workload{r: r}
	ncores := []int{2, 4, 8, 16}[machine%4]
	w.memTotal = []float64{4, 8, 16, 32, 64}[machine%5]*gib - 96*mib // minus kernel reservations
	if machine%3 != 0 {
		w.swapTotal = 2 * gib
	}
	busy := 3 + r.Float64()*35 // this host's typical CPU busy %
	for range ncores {
		w.cores = append(w.cores, walk{v: busy, mean: busy * (0.6 + 0.8*r.Float64()), sigma: 4, pull: 0.2, lo: 0, hi: 100})
	}
	memMean := w.memTotal * (0.25 + 0.5*r.Float64())
	w.mem = walk{v: memMean, mean: memMean, sigma: w.memTotal * 0.002, pull: 0.01, lo: 256 * mib, hi: w.memTotal * 0.97}
	swapMean := w.swapTotal * 0.05 * r.Float64()
	w.swap = walk{v: swapMean, mean: swapMean, sigma: 64 * kib, pull: 0.001, lo: 0, hi: w.swapTotal}
	rootSize := []float64{64, 128, 256, 512, 1024}[r.IntN(5)] * 1e9
	w.fs = []fsState{
		{mount: "/", device: "/dev/nvme0n1p2", fstype: "ext4", size: roundTo(rootSize, page), used: roundTo(rootSize*(0.2+0.5*r.Float64()), page), growth: 2 * kib},
		{mount: "/boot", device: "/dev/nvme0n1p1", fstype: "ext4", size: roundTo(1e9, page), used: roundTo(2.6e8, page)},
		{mount: "/var/lib/data", device: "/dev/sda1", fstype: "xfs", size: roundTo(2e12, page), used: roundTo(2e12*(0.1+0.6*r.Float64()), page), growth: 64 * kib},
	}
	w.disks = []diskState{{device: "nvme0n1"}}
	nicBase := math.Exp(9 + 5*r.Float64()) // ~8 KB/s … 1 MB/s
	w.nics = []nicState{newNIC("eth0", nicBase)}
	w.procs = walk{v: 180 + float64(r.IntN(250)), sigma: 2, pull: 0.01, lo: 50, hi: 5000}
	w.procs.mean = w.procs.v
	w.boot = 1767225600 - int64(r.IntN(90*86400)) // up to 90 days before 2026-01-01
	w.cpuTotal = busy

	w.addCore(ncores)
	// Padding: more interfaces and a disk, then app gauges.
	for _, name := range []string{"docker0", "wg0", "eth1"} {
		if len(w.series) >= series {
			break
		}
		w.nics = append(w.nics, newNIC(name, nicBase*0.1*r.Float64()))
		w.addNIC(len(w.nics) - 1)
	}
	if len(w.series) < series {
		w.disks = append(w.disks, diskState{device: "sda"})
		w.addDisk(len(w.disks) - 1)
	}
	for i := 0; len(w.series) < series; i++ {
		w.addApp(fmt.Sprintf("svc-%d", i))
	}
	w.series = w.series[:min(len(w.series), max(series, 1))]
	return w
}

func newNIC(name string, base float64) nicState {
	return nicState{
		name: name,
		rx:   walk{v: base, mean: base, sigma: base * 0.3, pull: 0.3, lo: 0, hi: 1.25e9},
		tx:   walk{v: base * 0.4, mean: base * 0.4, sigma: base * 0.15, pull: 0.3, lo: 0, hi: 1.25e9},
	}
}

// Series returns how many series each Tick produces.
func (w *Workload) Series() int { return len(w.series) }

func (w *Workload) add(name string, ls metric.Labels, value func(time.Time) float64) {
	w.series = append(w.series, wseries{name: name, labels: ls, value: value})
}

func (w *Workload) addCore(ncores int) {
	w.add("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: "total"}}, func(time.Time) float64 { return w.cpuTotal })
	for i := range ncores {
		w.add("cpu_usage_percent", metric.Labels{{Name: "cpu", Value: fmt.Sprint(i)}}, func(time.Time) float64 { return round(w.cores[i].v, 0.01) })
	}
	for i, name := range []string{"load1", "load5", "load15"} {
		w.add(name, nil, func(time.Time) float64 { return round(w.load[i], 0.01) })
	}
	w.add("memory_total_bytes", nil, func(time.Time) float64 { return w.memTotal })
	w.add("memory_used_bytes", nil, func(time.Time) float64 { return roundTo(w.mem.v, page) })
	w.add("memory_available_bytes", nil, func(time.Time) float64 { return w.memTotal - roundTo(w.mem.v, page) })
	w.add("memory_usage_percent", nil, func(time.Time) float64 { return round(roundTo(w.mem.v, page)/w.memTotal*100, 0.01) })
	w.add("swap_total_bytes", nil, func(time.Time) float64 { return w.swapTotal })
	w.add("swap_used_bytes", nil, func(time.Time) float64 { return roundTo(w.swap.v, page) })
	for i := range w.fs {
		f := &w.fs[i]
		ls := metric.Labels{{Name: "device", Value: f.device}, {Name: "fstype", Value: f.fstype}, {Name: "mountpoint", Value: f.mount}}
		w.add("filesystem_size_bytes", ls, func(time.Time) float64 { return f.size })
		w.add("filesystem_used_bytes", ls, func(time.Time) float64 { return f.used })
		w.add("filesystem_usage_percent", ls, func(time.Time) float64 { return round(f.used/f.size*100, 0.01) })
	}
	w.addDisk(0)
	w.addNIC(0)
	w.add("processes_total", nil, func(time.Time) float64 { return math.Round(w.procs.v) })
	w.add("uptime_seconds", nil, func(ts time.Time) float64 { return float64(max(0, ts.Unix()-w.boot)) })
}

func (w *Workload) addDisk(i int) {
	ls := metric.Labels{{Name: "device", Value: w.disks[i].device}}
	w.add("disk_read_bytes_per_second", ls, func(time.Time) float64 { return w.disks[i].read })
	w.add("disk_write_bytes_per_second", ls, func(time.Time) float64 { return w.disks[i].write })
}

func (w *Workload) addNIC(i int) {
	ls := metric.Labels{{Name: "interface", Value: w.nics[i].name}}
	w.add("network_receive_bytes_per_second", ls, func(time.Time) float64 { return math.Round(w.nics[i].rx.v) })
	w.add("network_transmit_bytes_per_second", ls, func(time.Time) float64 { return math.Round(w.nics[i].tx.v) })
}

func (w *Workload) addApp(name string) {
	r := w.r
	rps := math.Exp(2 + 5*r.Float64())
	w.apps = append(w.apps, appState{
		name:     name,
		rps:      walk{v: rps, mean: rps, sigma: rps * 0.1, pull: 0.1, lo: 0, hi: 1e6},
		errRatio: walk{v: 0.001, mean: 0.001, sigma: 0.0005, pull: 0.2, lo: 0, hi: 1},
		queue:    walk{v: 0, mean: 2, sigma: 2, pull: 0.3, lo: 0, hi: 1e4},
		lat:      walk{v: 0.02, mean: 0.005 + 0.1*r.Float64(), sigma: 0.005, pull: 0.2, lo: 0.0005, hi: 30},
		conns:    walk{v: rps / 5, mean: rps / 5, sigma: 2, pull: 0.1, lo: 0, hi: 1e5},
	})
	idx := len(w.apps) - 1
	ls := metric.Labels{{Name: "app", Value: name}}
	for _, s := range []struct {
		name string
		val  func() float64
	}{
		{"app_requests_per_second", func() float64 { return round(w.apps[idx].rps.v, 0.01) }},
		{"app_error_ratio", func() float64 { return round(w.apps[idx].errRatio.v, 0.0001) }},
		{"app_queue_depth", func() float64 { return math.Round(w.apps[idx].queue.v) }},
		{"app_latency_seconds", func() float64 { return round(w.apps[idx].lat.v, 0.0001) }},
		{"app_open_connections", func() float64 { return math.Round(w.apps[idx].conns.v) }},
	} {
		w.add(s.name, ls, func(time.Time) float64 { return s.val() })
	}
}

// Tick advances the simulated machine to ts and returns its samples. The
// slice is new on every call; label sets are shared between calls and must
// not be modified.
func (w *Workload) Tick(ts time.Time) []metric.Sample {
	dt := 1.0
	if !w.lastTs.IsZero() {
		dt = max(0.001, min(3600, ts.Sub(w.lastTs).Seconds()))
	}
	w.lastTs = ts
	w.update(dt)
	out := make([]metric.Sample, len(w.series))
	for i := range w.series {
		s := &w.series[i]
		out[i] = metric.Sample{Name: s.name, Labels: s.labels, Value: s.value(ts)}
	}
	return out
}

func (w *Workload) update(dt float64) {
	r := w.r
	var sum float64
	for i := range w.cores {
		c := &w.cores[i]
		c.step(r, dt)
		if r.Float64() < 0.01*dt { // a short spike on one core
			c.v = min(100, c.v+20+40*r.Float64())
		}
		sum += round(c.v, 0.01)
	}
	w.cpuTotal = round(sum/float64(len(w.cores)), 0.01)
	target := w.cpuTotal / 100 * float64(len(w.cores)) * (1 + 0.2*r.Float64())
	for i, tau := range []float64{60, 300, 900} {
		if !w.loadInit {
			w.load[i] = target
		}
		w.load[i] += (target - w.load[i]) * (1 - math.Exp(-dt/tau))
	}
	w.loadInit = true
	w.mem.step(r, dt)
	w.swap.step(r, dt)
	for i := range w.fs {
		f := &w.fs[i]
		if f.growth == 0 {
			continue
		}
		f.used += roundTo(f.growth*dt*2*r.Float64(), page)
		if r.Float64() < 0.001*dt { // log rotation, a cleanup job
			f.used -= roundTo(f.used*0.01*r.Float64(), page)
		}
		f.used = min(f.used, f.size)
	}
	for i := range w.disks {
		d := &w.disks[i]
		if d.burst == 0 && r.Float64() < 0.03*dt {
			d.burst = 1 + r.IntN(8)
			d.burstRate = roundTo(math.Exp(14+4*r.Float64()), page) // ~1 … 60 MB/s
		}
		if d.burst > 0 {
			d.burst--
			d.read = roundTo(d.burstRate*r.Float64(), page)
			d.write = roundTo(d.burstRate*(0.2+r.Float64()), page)
			continue
		}
		d.read = 0
		if r.Float64() < 0.1 {
			d.read = page * float64(1+r.IntN(16))
		}
		d.write = 0
		if r.Float64() < 0.5 { // journal commits
			d.write = page * float64(1+r.IntN(32))
		}
	}
	for i := range w.nics {
		w.nics[i].rx.step(r, dt)
		w.nics[i].tx.step(r, dt)
	}
	w.procs.step(r, dt)
	for i := range w.apps {
		a := &w.apps[i]
		a.rps.step(r, dt)
		a.errRatio.step(r, dt)
		a.queue.step(r, dt)
		a.lat.step(r, dt)
		a.conns.step(r, dt)
	}
}

// round rounds v to a multiple of unit (0.01 for percentages).
func round(v, unit float64) float64 {
	return math.Round(v/unit) / math.Round(1/unit)
}

// roundTo rounds v down to a whole multiple of unit (bytes in pages).
func roundTo(v, unit float64) float64 {
	return math.Floor(v/unit) * unit
}
