package collect

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// DefaultGPUInterval is how often nvidia-smi runs.
const DefaultGPUInterval = 5 * time.Second

// nvidiaQuery is the --query-gpu field list parseNvidiaGPUs expects.
const nvidiaQuery = "index,uuid,name,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw,power.limit"

// nvidiaValue parses one CSV field; false for "[N/A]", "[Not Supported]",
// "N/A" and anything else that is not a number.
func nvidiaValue(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}

// parseNvidiaGPUs parses `nvidia-smi --query-gpu=<nvidiaQuery>
// --format=csv,noheader,nounits` into samples and a uuid → index map.
func parseNvidiaGPUs(b []byte) ([]metric.Sample, map[string]string, error) {
	var out []metric.Sample
	uuids := map[string]string{}
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		f := strings.Split(string(line), ",")
		if len(f) != 10 {
			return nil, nil, fmt.Errorf("nvidia-smi: %d fields in %q, want 10", len(f), line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, uuid, name := f[0], f[1], f[2]
		uuids[uuid] = idx
		ls := metric.Labels{{Name: "gpu", Value: idx}, {Name: "name", Value: name}, {Name: "vendor", Value: "nvidia"}}
		add := func(metricName, field string, scale float64, round func(float64) float64) {
			if v, ok := nvidiaValue(field); ok {
				out = append(out, metric.Sample{Name: metricName, Labels: ls, Value: round(v * scale)})
			}
		}
		add("gpu_utilization_percent", f[3], 1, round2)
		add("gpu_memory_utilization_percent", f[4], 1, round2)
		add("gpu_memory_used_bytes", f[5], 1<<20, math.Round)
		add("gpu_memory_total_bytes", f[6], 1<<20, math.Round)
		add("gpu_temperature_celsius", f[7], 1, round2)
		add("gpu_power_watts", f[8], 1, round2)
		add("gpu_power_limit_watts", f[9], 1, round2)
	}
	return out, uuids, nil
}

// parseNvidiaApps parses `nvidia-smi --query-compute-apps=gpu_uuid,pid,
// used_memory --format=csv,noheader,nounits` into
// gpu_process_memory_bytes{gpu,pid}; rows of unknown GPUs or without a
// number are skipped.
func parseNvidiaApps(b []byte, uuids map[string]string) []metric.Sample {
	var out []metric.Sample
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		f := strings.Split(string(line), ",")
		if len(f) != 3 {
			continue
		}
		idx, ok := uuids[strings.TrimSpace(f[0])]
		pid := strings.TrimSpace(f[1])
		mib, okV := nvidiaValue(f[2])
		if !ok || !okV {
			continue
		}
		if _, err := strconv.ParseUint(pid, 10, 32); err != nil {
			continue
		}
		out = append(out, metric.Sample{Name: "gpu_process_memory_bytes",
			Labels: metric.Labels{{Name: "gpu", Value: idx}, {Name: "pid", Value: pid}}, Value: mib * (1 << 20)})
	}
	return out
}

// amdGPU is one amdgpu card's sysfs files.
type amdGPU struct {
	busy, used, total, temp, power *sysValue
}

// GPU reports NVIDIA GPUs through nvidia-smi (in the background every
// Interval, cached), AMD GPUs through amdgpu's sysfs files and Intel GPUs
// through i915's and xe's sysfs files (both every tick).
type GPU struct {
	NvidiaSMI string  // path of nvidia-smi; "" skips NVIDIA
	run       runFunc // execRun; tests substitute fixture output
	src       *slowSource[[]metric.Sample]

	drmRoot string // <sys>/class/drm
	now     func() time.Time
	scanned time.Time
	amd     []amdGPU
	intel   []*intelGPU
}

// NewGPU returns the GPU collector.
func NewGPU(opts Options) *GPU {
	opts = opts.withDefaults()
	c := &GPU{NvidiaSMI: lookPath("nvidia-smi"), run: execRun, now: time.Now,
		drmRoot: filepath.Join(opts.SysPath, "class", "drm")}
	c.src = &slowSource[[]metric.Sample]{interval: opts.GPUInterval, timeout: min(opts.GPUInterval, 10*time.Second),
		fetch: c.fetchNvidia, log: opts.Logger, what: "nvidia-smi"}
	return c
}

// gpuAvailable reports whether nvidia-smi is installed or an amdgpu or
// Intel card is present.
func gpuAvailable(opts Options) bool {
	if lookPath("nvidia-smi") != "" {
		return true
	}
	drm := filepath.Join(opts.SysPath, "class", "drm")
	m, _ := filepath.Glob(filepath.Join(drm, "card*", "device", "gpu_busy_percent"))
	return len(m) > 0 || intelAvailable(drm)
}

// Name implements Collector.
func (*GPU) Name() string { return "gpu" }

func (c *GPU) fetchNvidia(ctx context.Context) ([]metric.Sample, error) {
	out, err := c.run(ctx, c.NvidiaSMI, "--query-gpu="+nvidiaQuery, "--format=csv,noheader,nounits")
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi --query-gpu: %w", err)
	}
	ss, uuids, err := parseNvidiaGPUs(out)
	if err != nil {
		return nil, err
	}
	if apps, err := c.run(ctx, c.NvidiaSMI, "--query-compute-apps=gpu_uuid,pid,used_memory", "--format=csv,noheader,nounits"); err == nil {
		ss = append(ss, parseNvidiaApps(apps, uuids)...)
	}
	return ss, nil
}

// Collect implements Collector.
func (c *GPU) Collect(_ context.Context, b *Batch) error {
	if c.NvidiaSMI != "" {
		if ss, ok, _ := c.src.get(); ok {
			b.Samples = append(b.Samples, ss...)
		}
	}
	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= rescanEvery {
		c.scanAMD()
		c.scanIntel()
		c.scanned = t
	}
	for _, g := range c.amd {
		if v, ok := g.busy.readInt(); ok {
			b.addShared("gpu_utilization_percent", float64(v), g.busy.labels)
		}
		if v, ok := g.used.readInt(); ok {
			b.addShared("gpu_memory_used_bytes", float64(v), g.used.labels)
		}
		if v, ok := g.total.readInt(); ok {
			b.addShared("gpu_memory_total_bytes", float64(v), g.total.labels)
		}
		if g.temp != nil {
			if v, ok := g.temp.readInt(); ok {
				b.addShared("gpu_temperature_celsius", float64(v)/1000, g.temp.labels)
			}
		}
		if g.power != nil {
			if v, ok := g.power.readInt(); ok {
				b.addShared("gpu_power_watts", round2(float64(v)/1e6), g.power.labels)
			}
		}
	}
	if len(c.intel) > 0 {
		now := c.now()
		for _, g := range c.intel {
			g.collect(b, now)
		}
	}
	return nil
}

// scanAMD finds amdgpu cards (drm card directories with gpu_busy_percent;
// connectors like card0-DP-1 have none).
func (c *GPU) scanAMD() {
	c.amd = c.amd[:0]
	busy, _ := filepath.Glob(filepath.Join(c.drmRoot, "card*", "device", "gpu_busy_percent"))
	slices.SortFunc(busy, compareNatural)
	for _, p := range busy {
		dev := filepath.Dir(p)
		card := filepath.Base(filepath.Dir(dev))
		if strings.Contains(card, "-") {
			continue
		}
		name := readSysString(filepath.Join(dev, "product_name"))
		if name == "" {
			name = "AMD GPU"
		}
		labels := sortedLabels("gpu", strings.TrimPrefix(card, "card"), "name", name, "vendor", "amd")
		val := func(path string) *sysValue { return &sysValue{file: newProcFile(path), labels: labels} }
		g := amdGPU{busy: val(p), used: val(filepath.Join(dev, "mem_info_vram_used")), total: val(filepath.Join(dev, "mem_info_vram_total"))}
		if hw, _ := filepath.Glob(filepath.Join(dev, "hwmon", "hwmon*")); len(hw) > 0 {
			g.temp = val(filepath.Join(hw[0], "temp1_input"))
			for _, pf := range []string{"power1_average", "power1_input"} {
				if readSysString(filepath.Join(hw[0], pf)) != "" {
					g.power = val(filepath.Join(hw[0], pf))
					break
				}
			}
		}
		c.amd = append(c.amd, g)
	}
}
