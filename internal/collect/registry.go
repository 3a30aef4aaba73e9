package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Descriptor describes one collector of the default set: a new collector is
// its own file plus one row in Registry.
type Descriptor struct {
	Name string // as Collector.Name returns it and Options.Disable names it
	// Core collectors run on every Linux host (SPEC §3); the others only
	// where Available finds their source.
	Core bool
	// Available reports whether the collector's source exists on the host
	// opts describe (a PSI kernel, a hwmon chip, smartctl on PATH); nil
	// means always. It is called once, when the set is built.
	Available func(opts Options) bool
	New       func(opts Options) Collector // opts already have their defaults
}

// Registry returns every collector of the default set in registration
// order: the core collectors first, then the deeper ones. Each call returns
// a new slice.
func Registry() []Descriptor {
	return []Descriptor{
		{Name: "cpu", Core: true, New: func(o Options) Collector { return NewCPU(o) }},
		{Name: "load", Core: true, New: func(o Options) Collector { return NewLoad(o) }},
		{Name: "memory", Core: true, New: func(o Options) Collector { return NewMemory(o) }},
		{Name: "filesystem", Core: true, New: func(o Options) Collector { return NewFilesystem(o) }},
		{Name: "disk", Core: true, New: func(o Options) Collector { return NewDisk(o) }},
		{Name: "network", Core: true, New: func(o Options) Collector { return NewNetwork(o) }},
		{Name: "processes", Core: true, New: func(o Options) Collector { return NewProcesses(o) }},
		{Name: "uptime", Core: true, New: func(o Options) Collector { return NewUptime(o) }},

		{Name: "pressure", Available: func(o Options) bool { return exists(filepath.Join(o.ProcPath, "pressure", "cpu")) },
			New: func(o Options) Collector { return NewPressure(o) }},
		{Name: "hwmon", Available: func(o Options) bool { return globs(filepath.Join(o.SysPath, "class", "hwmon", "hwmon*")) },
			New: func(o Options) Collector { return NewHwmon(o) }},
		{Name: "thermal", Available: func(o Options) bool { return globs(filepath.Join(o.SysPath, "class", "thermal", "thermal_zone*")) },
			New: func(o Options) Collector { return NewThermal(o) }},
		{Name: "battery", Available: batteryAvailable, New: func(o Options) Collector { return NewBattery(o) }},
		{Name: "systemd", Available: systemdAvailable, New: func(o Options) Collector { return NewSystemd(o) }},
		{Name: "containers", Available: containersAvailable, New: func(o Options) Collector { return NewContainers(o) }},
		{Name: "smart", Available: func(Options) bool { return lookPath("smartctl") != "" },
			New: func(o Options) Collector { return NewSmart(o) }},
		{Name: "gpu", Available: gpuAvailable, New: func(o Options) Collector { return NewGPU(o) }},
		{Name: "textfile", Available: func(o Options) bool { return o.TextfileDir != "" },
			New: func(o Options) Collector { return NewTextfile(o.TextfileDir, o) }},
		{Name: "dirsize", Available: func(o Options) bool { return len(o.DirSizes) > 0 },
			New: func(o Options) Collector { return NewDirSize(o) }},
	}
}

// exists reports whether path exists.
func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// globs reports whether pattern matches at least one path.
func globs(pattern string) bool { m, _ := filepath.Glob(pattern); return len(m) > 0 }

// registryNames returns the names of the rows of Registry with Core == core.
func registryNames(core bool) []string {
	var names []string
	for _, d := range Registry() {
		if d.Core == core {
			names = append(names, d.Name)
		}
	}
	return names
}

// CoreCollectors returns the names of the collectors every Linux agent runs
// (SPEC §3), in registration order.
func CoreCollectors() []string { return registryNames(true) }

// ExtraCollectors returns the names of the deeper collectors NewDefault
// adds when their source exists on the host, in registration order.
func ExtraCollectors() []string { return registryNames(false) }

// CheckCollectorNames returns an error naming any entry of names that is
// not a collector.
func CheckCollectorNames(names []string) error {
	known := append(CoreCollectors(), ExtraCollectors()...)
	var bad []string
	for _, n := range names {
		if !slices.Contains(known, n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown collector %s; known: %s", strings.Join(bad, ", "), strings.Join(known, ", "))
	}
	return nil
}

// NewDefault returns a Set of the collectors of Registry, in its order:
// every core collector, then each deeper collector whose source exists on
// this host (a PSI kernel, hwmon chips, thermal zones, a battery, systemd,
// cgroup v2, smartctl, a GPU, a textfile directory). Names in opts.Disable
// are left out.
func NewDefault(opts Options) *Set {
	opts = opts.withDefaults()
	var cs []Collector
	for _, d := range Registry() {
		if slices.Contains(opts.Disable, d.Name) || (d.Available != nil && !d.Available(opts)) {
			continue
		}
		cs = append(cs, d.New(opts))
	}
	return NewSet(opts, cs...)
}
