package collect

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// batteryFiles are one battery's sysfs files.
type batteryFiles struct {
	name   string
	labels metric.Labels
	status *procFile
	vals   map[string]*sysValue // capacity, energy_now, energy_full, charge_now, charge_full, power_now, current_now, voltage_now
}

var batteryAttrs = []string{"capacity", "energy_now", "energy_full", "charge_now", "charge_full", "power_now", "current_now", "voltage_now"}

// Battery reports laptop batteries from /sys/class/power_supply (supplies
// of type Battery whose scope is not Device, which leaves out mice and
// headsets): battery_capacity_percent, battery_charging (0/1),
// battery_energy_joules and battery_energy_full_joules (or
// battery_charge_coulombs and battery_charge_full_coulombs for batteries
// that report charge), battery_power_watts.
type Battery struct {
	root    string
	now     func() time.Time
	scanned time.Time
	bats    []batteryFiles
}

// NewBattery returns the battery collector.
func NewBattery(opts Options) *Battery {
	opts = opts.withDefaults()
	return &Battery{root: filepath.Join(opts.SysPath, "class", "power_supply"), now: time.Now}
}

// batteryAvailable reports whether any power supply is a battery.
func batteryAvailable(opts Options) bool {
	b := NewBattery(opts)
	b.scan()
	return len(b.bats) > 0
}

// Name implements Collector.
func (*Battery) Name() string { return "battery" }

func (c *Battery) scan() {
	c.bats = c.bats[:0]
	dirs, _ := filepath.Glob(filepath.Join(c.root, "*"))
	slices.Sort(dirs)
	for _, d := range dirs {
		if readSysString(filepath.Join(d, "type")) != "Battery" || readSysString(filepath.Join(d, "scope")) == "Device" {
			continue
		}
		bf := batteryFiles{name: filepath.Base(d), labels: sortedLabels("battery", filepath.Base(d)), status: newProcFile(filepath.Join(d, "status")), vals: map[string]*sysValue{}}
		for _, a := range batteryAttrs {
			if readSysString(filepath.Join(d, a)) != "" {
				bf.vals[a] = &sysValue{file: newProcFile(filepath.Join(d, a)), labels: bf.labels}
			}
		}
		c.bats = append(c.bats, bf)
	}
}

// Collect implements Collector.
func (c *Battery) Collect(_ context.Context, b *Batch) error {
	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= rescanEvery {
		c.scan()
		c.scanned = t
	}
	for _, bat := range c.bats {
		read := func(a string) (float64, bool) {
			v := bat.vals[a]
			if v == nil {
				return 0, false
			}
			n, ok := v.readInt()
			return float64(n), ok
		}
		labels := bat.labels
		if v, ok := read("capacity"); ok {
			b.addShared("battery_capacity_percent", v, labels)
		}
		if st, err := bat.status.read(); err == nil {
			b.addShared("battery_charging", b01(strings.TrimSpace(string(st)) == "Charging"), labels)
		}
		// µWh × 3.6e-3 = J; µAh × 3.6e-3 = C.
		if v, ok := read("energy_now"); ok {
			b.addShared("battery_energy_joules", math.Round(v*3.6e-3), labels)
		}
		if v, ok := read("energy_full"); ok {
			b.addShared("battery_energy_full_joules", math.Round(v*3.6e-3), labels)
		}
		if v, ok := read("charge_now"); ok {
			b.addShared("battery_charge_coulombs", math.Round(v*3.6e-3), labels)
		}
		if v, ok := read("charge_full"); ok {
			b.addShared("battery_charge_full_coulombs", math.Round(v*3.6e-3), labels)
		}
		if v, ok := read("power_now"); ok {
			b.addShared("battery_power_watts", round2(math.Abs(v)/1e6), labels)
		} else if i, ok := read("current_now"); ok {
			if u, ok := read("voltage_now"); ok {
				b.addShared("battery_power_watts", round2(math.Abs(i*u)/1e12), labels)
			}
		}
	}
	return nil
}
