package collect

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Thermal reports thermal_zone_temperature_celsius{zone,type} from
// /sys/class/thermal/thermal_zone*/temp and type.
type Thermal struct {
	root    string // <sys>/class/thermal
	now     func() time.Time
	scanned time.Time
	zones   []sysValue
}

// NewThermal returns the thermal zone collector.
func NewThermal(opts Options) *Thermal {
	opts = opts.withDefaults()
	return &Thermal{root: filepath.Join(opts.SysPath, "class", "thermal"), now: time.Now}
}

// Name implements Collector.
func (*Thermal) Name() string { return "thermal" }

// Collect implements Collector. Zones that cannot be read (disabled, or
// ENODATA from firmware) are left out.
func (c *Thermal) Collect(_ context.Context, b *Batch) error {
	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= rescanEvery {
		c.scan()
		c.scanned = t
	}
	for i := range c.zones {
		if v, ok := c.zones[i].readInt(); ok {
			b.addShared("thermal_zone_temperature_celsius", math.Round(float64(v))/1000, c.zones[i].labels)
		}
	}
	return nil
}

func (c *Thermal) scan() {
	c.zones = c.zones[:0]
	dirs, _ := filepath.Glob(filepath.Join(c.root, "thermal_zone*"))
	slices.SortFunc(dirs, compareNatural)
	for _, d := range dirs {
		zone := strings.TrimPrefix(filepath.Base(d), "thermal_zone")
		typ := readSysString(filepath.Join(d, "type"))
		c.zones = append(c.zones, sysValue{file: newProcFile(filepath.Join(d, "temp")), labels: sortedLabels("type", typ, "zone", zone)})
	}
}
