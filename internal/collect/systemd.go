package collect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// DefaultServiceInterval is how often the systemd collector asks systemctl
// for unit states and looks for new unit cgroups.
const DefaultServiceInterval = 10 * time.Second

// unitState is one service's state as systemctl shows it.
type unitState struct {
	unit, load, active, sub string
	restarts                uint64
	hasRestarts             bool
}

// parseSystemctlShow parses `systemctl show --property=Id,LoadState,
// ActiveState,SubState,NRestarts PATTERN` output: Key=Value blocks separated
// by blank lines. Units that are not found are left out; the result is
// sorted by unit.
func parseSystemctlShow(b []byte) []unitState {
	var out []unitState
	var cur unitState
	flush := func() {
		if cur.unit != "" && cur.load != "not-found" {
			out = append(out, cur)
		}
		cur = unitState{}
	}
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			flush()
			continue
		}
		k, v, ok := strings.Cut(string(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "Id":
			cur.unit = v
		case "LoadState":
			cur.load = v
		case "ActiveState":
			cur.active = v
		case "SubState":
			cur.sub = v
		case "NRestarts":
			cur.restarts, cur.hasRestarts = parseUint([]byte(v))
		}
	}
	flush()
	slices.SortFunc(out, func(a, b unitState) int { return strings.Compare(a.unit, b.unit) })
	return slices.CompactFunc(out, func(a, b unitState) bool { return a.unit == b.unit })
}

// unitCgroup is a service's cgroup and its previous reading.
type unitCgroup struct {
	unit  string
	ls    metric.Labels // unit
	r     *cgroupReader
	prev  cgroupUsage
	valid bool
}

// Systemd reports systemd services: state from `systemctl show` (exec'd in
// the background every Interval, never on the tick) and resource use from
// each service's cgroup (every tick). See docs/metrics.md for the series.
type Systemd struct {
	Interval  time.Duration
	Systemctl string  // path of systemctl; "" skips unit states
	run       runFunc // execRun; tests substitute fixture output

	cgRoot  string // <sys>/fs/cgroup
	v2      bool
	now     func() time.Time
	clock   rateClock
	scanned time.Time
	units   []*unitCgroup // sorted by unit
	state   *slowSource[[]metric.Sample]
}

// NewSystemd returns the systemd collector. Unit states need systemd running
// (RootFS/run/systemd/system) and systemctl installed.
func NewSystemd(opts Options) *Systemd {
	opts = opts.withDefaults()
	c := &Systemd{Interval: opts.ServiceInterval, run: execRun, now: time.Now,
		cgRoot: filepath.Join(opts.SysPath, "fs", "cgroup")}
	c.v2 = cgroupV2(c.cgRoot)
	if _, err := os.Stat(filepath.Join(opts.RootFS, "run", "systemd", "system")); err == nil {
		c.Systemctl = lookPath("systemctl")
	}
	c.state = &slowSource[[]metric.Sample]{interval: c.Interval, timeout: min(c.Interval, 30*time.Second),
		fetch: c.fetchStates, log: opts.Logger, what: "systemctl"}
	return c
}

// systemdAvailable reports whether the host runs systemd or has service
// cgroups the collector could read.
func systemdAvailable(opts Options) bool {
	if _, err := os.Stat(filepath.Join(opts.RootFS, "run", "systemd", "system")); err == nil {
		return true
	}
	for _, d := range []string{"system.slice", "cpu,cpuacct/system.slice", "cpuacct/system.slice"} {
		if _, err := os.Stat(filepath.Join(opts.SysPath, "fs", "cgroup", d)); err == nil {
			return true
		}
	}
	return false
}

// Name implements Collector.
func (*Systemd) Name() string { return "systemd" }

func (c *Systemd) fetchStates(ctx context.Context) ([]metric.Sample, error) {
	out, err := c.run(ctx, c.Systemctl, "show", "--no-pager",
		"--property=Id,LoadState,ActiveState,SubState,NRestarts", "*.service")
	if err != nil {
		return nil, err
	}
	units := parseSystemctlShow(out)
	if len(units) == 0 {
		return nil, errors.New("systemctl show listed no services")
	}
	return unitStateSamples(units), nil
}

// unitStateSamples turns unit states into the systemd_unit_* state series
// and the systemd_units_failed and systemd_units_active totals.
func unitStateSamples(units []unitState) []metric.Sample {
	out := make([]metric.Sample, 0, 4*len(units)+2)
	failed, active := 0, 0
	for _, u := range units {
		isActive := u.active == "active" || u.active == "reloading"
		isFailed := u.active == "failed"
		ls := metric.Labels{{Name: "unit", Value: u.unit}}
		out = append(out,
			metric.Sample{Name: "systemd_unit_active", Labels: ls, Value: b01(isActive)},
			metric.Sample{Name: "systemd_unit_failed", Labels: ls, Value: b01(isFailed)},
			metric.Sample{Name: "systemd_unit_info", Value: 1, Labels: metric.Labels{
				{Name: "active_state", Value: u.active}, {Name: "sub_state", Value: u.sub}, {Name: "unit", Value: u.unit}}})
		if u.hasRestarts {
			out = append(out, metric.Sample{Name: "systemd_unit_restarts_total", Labels: ls, Value: float64(u.restarts)})
		}
		if isFailed {
			failed++
		}
		if isActive {
			active++
		}
	}
	return append(out,
		metric.Sample{Name: "systemd_units_failed", Value: float64(failed)},
		metric.Sample{Name: "systemd_units_active", Value: float64(active)})
}

// Collect implements Collector.
func (c *Systemd) Collect(_ context.Context, b *Batch) error {
	if c.Systemctl != "" {
		if ss, ok, _ := c.state.get(); ok {
			b.Samples = append(b.Samples, ss...)
		}
	}

	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= c.Interval {
		c.scan()
		c.scanned = t
	}
	secs := c.clock.advance()
	gone := false
	for _, u := range c.units {
		cur, ok := u.r.read()
		if !ok {
			gone = true // stopped: its cgroup was removed
			u.valid = false
			continue
		}
		unitCgroupNames.emit(b, u.ls, u.prev, u.valid, cur, secs)
		u.prev, u.valid = cur, true
	}
	if gone {
		c.scanned = time.Time{} // look again next tick
	}
	return nil
}

func b01(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// scan finds the service cgroups: system.slice/*.service and one level of
// sub-slices (system.slice/system-getty.slice/getty@tty1.service); on a v1
// host, the same names under the cpuacct and memory hierarchies.
func (c *Systemd) scan() {
	base := filepath.Join(c.cgRoot, "system.slice")
	var cpuBase, memBase string
	if !c.v2 {
		for _, d := range []string{"cpu,cpuacct", "cpuacct"} {
			if p := filepath.Join(c.cgRoot, d, "system.slice"); dirExists(p) {
				cpuBase = p
				break
			}
		}
		memBase = filepath.Join(c.cgRoot, "memory", "system.slice")
		base = cpuBase
		if base == "" {
			c.units = c.units[:0]
			return
		}
	}
	var rels []string
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		n := e.Name()
		switch {
		case !e.IsDir():
		case strings.HasSuffix(n, ".service"):
			rels = append(rels, n)
		case strings.HasSuffix(n, ".slice"):
			sub, _ := os.ReadDir(filepath.Join(base, n))
			for _, s := range sub {
				if s.IsDir() && strings.HasSuffix(s.Name(), ".service") {
					rels = append(rels, filepath.Join(n, s.Name()))
				}
			}
		}
	}
	old := map[string]*unitCgroup{}
	for _, u := range c.units {
		old[u.unit] = u
	}
	c.units = c.units[:0]
	for _, rel := range rels {
		unit := filepath.Base(rel)
		if u, ok := old[unit]; ok {
			c.units = append(c.units, u)
			continue
		}
		var r *cgroupReader
		if c.v2 {
			r = newCgroupV2Reader(filepath.Join(base, rel), false)
		} else {
			r = newCgroupV1Reader(filepath.Join(cpuBase, rel), filepath.Join(memBase, rel))
		}
		c.units = append(c.units, &unitCgroup{unit: unit, ls: metric.Labels{{Name: "unit", Value: unit}}, r: r})
	}
	slices.SortFunc(c.units, func(a, b *unitCgroup) int { return strings.Compare(a.unit, b.unit) })
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
