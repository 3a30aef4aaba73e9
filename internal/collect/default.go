package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// CoreCollectors returns the names of the collectors every Linux agent runs
// (SPEC §3), in registration order.
func CoreCollectors() []string {
	return []string{"cpu", "load", "memory", "filesystem", "disk", "network", "processes", "uptime"}
}

// ExtraCollectors returns the names of the deeper collectors NewDefault
// adds when their source exists on the host, in registration order.
func ExtraCollectors() []string {
	return []string{"pressure", "hwmon", "thermal", "battery", "systemd", "containers", "smart", "gpu", "textfile", "dirsize"}
}

// CheckCollectorNames returns an error naming any entry of names that is
// not a collector.
func CheckCollectorNames(names []string) error {
	var bad []string
	for _, n := range names {
		if !slices.Contains(CoreCollectors(), n) && !slices.Contains(ExtraCollectors(), n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown collector %s; known: %s", strings.Join(bad, ", "),
			strings.Join(append(CoreCollectors(), ExtraCollectors()...), ", "))
	}
	return nil
}

// NewDefault returns a Set of the core collectors every Linux agent runs
// (SPEC §3), in a fixed order, followed by the deeper collectors whose
// source exists on this host (a PSI kernel, hwmon chips, thermal zones, a
// battery, systemd, cgroup v2, smartctl, a GPU, a textfile directory).
// Names in opts.Disable are left out.
func NewDefault(opts Options) *Set {
	opts = opts.withDefaults()
	var cs []Collector
	add := func(name string, ok func() bool, mk func() Collector) {
		if slices.Contains(opts.Disable, name) || !ok() {
			return
		}
		cs = append(cs, mk())
	}
	yes := func() bool { return true }
	exists := func(p string) func() bool {
		return func() bool { _, err := os.Stat(p); return err == nil }
	}
	globs := func(p string) func() bool {
		return func() bool { m, _ := filepath.Glob(p); return len(m) > 0 }
	}
	add("cpu", yes, func() Collector { return NewCPU(opts) })
	add("load", yes, func() Collector { return NewLoad(opts) })
	add("memory", yes, func() Collector { return NewMemory(opts) })
	add("filesystem", yes, func() Collector { return NewFilesystem(opts) })
	add("disk", yes, func() Collector { return NewDisk(opts) })
	add("network", yes, func() Collector { return NewNetwork(opts) })
	add("processes", yes, func() Collector { return NewProcesses(opts) })
	add("uptime", yes, func() Collector { return NewUptime(opts) })

	add("pressure", exists(filepath.Join(opts.ProcPath, "pressure", "cpu")), func() Collector { return NewPressure(opts) })
	add("hwmon", globs(filepath.Join(opts.SysPath, "class", "hwmon", "hwmon*")), func() Collector { return NewHwmon(opts) })
	add("thermal", globs(filepath.Join(opts.SysPath, "class", "thermal", "thermal_zone*")), func() Collector { return NewThermal(opts) })
	add("battery", func() bool { return batteryAvailable(opts) }, func() Collector { return NewBattery(opts) })
	add("systemd", func() bool { return systemdAvailable(opts) }, func() Collector { return NewSystemd(opts) })
	add("containers", func() bool { return containersAvailable(opts) }, func() Collector { return NewContainers(opts) })
	add("smart", func() bool { return lookPath("smartctl") != "" }, func() Collector { return NewSmart(opts) })
	add("gpu", func() bool { return gpuAvailable(opts) }, func() Collector { return NewGPU(opts) })
	add("textfile", func() bool { return opts.TextfileDir != "" }, func() Collector { return NewTextfile(opts.TextfileDir, opts) })
	add("dirsize", func() bool { return len(opts.DirSizes) > 0 }, func() Collector { return NewDirSize(opts) })
	return NewSet(opts, cs...)
}
