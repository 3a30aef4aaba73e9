package collect

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// rescanEvery is how often sysfs collectors look for new devices.
const rescanEvery = time.Minute

// Hwmon reports hwmon_temperature_celsius{chip,sensor} and
// fan_speed_rpm{chip,sensor} from /sys/class/hwmon/hwmon*/temp*_input and
// fan*_input. chip is the driver's `name` (made unique with the device name
// when two chips share it); sensor is the kernel's *_label, else the file
// stem (temp1).
type Hwmon struct {
	root    string // <sys>/class/hwmon
	now     func() time.Time
	scanned time.Time
	temps   []sysValue
	fans    []sysValue
}

// NewHwmon returns the hwmon collector.
func NewHwmon(opts Options) *Hwmon {
	opts = opts.withDefaults()
	return &Hwmon{root: filepath.Join(opts.SysPath, "class", "hwmon"), now: time.Now}
}

// Name implements Collector.
func (*Hwmon) Name() string { return "hwmon" }

// Collect implements Collector. Sensors that cannot be read this tick are
// left out; a host without hwmon yields nothing.
func (c *Hwmon) Collect(_ context.Context, b *Batch) error {
	if t := c.now(); c.scanned.IsZero() || t.Sub(c.scanned) >= rescanEvery {
		c.scan()
		c.scanned = t
	}
	for i := range c.temps {
		if v, ok := c.temps[i].readInt(); ok {
			b.addShared("hwmon_temperature_celsius", math.Round(float64(v))/1000, c.temps[i].labels)
		}
	}
	for i := range c.fans {
		if v, ok := c.fans[i].readInt(); ok && v >= 0 {
			b.addShared("fan_speed_rpm", float64(v), c.fans[i].labels)
		}
	}
	return nil
}

type hwmonChip struct {
	dir, name, dev string
}

func (c *Hwmon) scan() {
	c.temps, c.fans = c.temps[:0], c.fans[:0]
	dirs, _ := filepath.Glob(filepath.Join(c.root, "hwmon*"))
	var chips []hwmonChip
	count := map[string]int{}
	for _, d := range dirs {
		name := readSysString(filepath.Join(d, "name"))
		if name == "" {
			name = filepath.Base(d)
		}
		dev := ""
		if l, err := os.Readlink(filepath.Join(d, "device")); err == nil {
			dev = filepath.Base(l)
		}
		chips = append(chips, hwmonChip{dir: d, name: name, dev: dev})
		count[name]++
	}
	for _, ch := range chips {
		chip := ch.name
		if count[ch.name] > 1 {
			suffix := ch.dev
			if suffix == "" {
				suffix = filepath.Base(ch.dir)
			}
			chip = ch.name + "_" + suffix
		}
		c.temps = appendHwmonInputs(c.temps, ch.dir, "temp", chip)
		c.fans = appendHwmonInputs(c.fans, ch.dir, "fan", chip)
	}
}

// appendHwmonInputs adds the <kind>N_input files of dir, sorted by N.
func appendHwmonInputs(dst []sysValue, dir, kind, chip string) []sysValue {
	inputs, _ := filepath.Glob(filepath.Join(dir, kind+"*_input"))
	slices.SortFunc(inputs, func(a, b string) int { return compareNatural(filepath.Base(a), filepath.Base(b)) })
	used := map[string]bool{}
	for _, in := range inputs {
		stem := strings.TrimSuffix(filepath.Base(in), "_input")
		sensor := readSysString(filepath.Join(dir, stem+"_label"))
		if sensor == "" || used[sensor] {
			sensor = stem
		}
		used[sensor] = true
		dst = append(dst, sysValue{file: newProcFile(in), labels: sortedLabels("chip", chip, "sensor", sensor)})
	}
	return dst
}

// compareNatural orders "temp2_input" before "temp10_input".
func compareNatural(a, b string) int {
	if len(a) != len(b) {
		na, nb := strings.TrimRight(a, "abcdefghijklmnopqrstuvwxyz_"), strings.TrimRight(b, "abcdefghijklmnopqrstuvwxyz_")
		if len(na) != len(nb) {
			return len(na) - len(nb)
		}
	}
	return strings.Compare(a, b)
}
