package collect

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// intelVendor is the PCI vendor id of Intel, as in device/vendor.
const intelVendor = "0x8086"

// intelGPU is one Intel DRM card (i915 or xe) and its sysfs files. Every
// path is read-only and readable without root:
//
//   - idle: GT 0's idle-state residency in ms, monotonic (i915
//     gt/gt0/rc6_residency_ms or, before per-GT sysfs, power/rc6_residency_ms;
//     xe device/tile0/gt0/gtidle/idle_residency_ms);
//   - freq: GT 0's actual frequency in MHz (i915 gt/gt0/rps_act_freq_mhz or
//     gt_act_freq_mhz; xe device/tile0/gt0/freq0/act_freq);
//   - energy, temp: the device-level hwmon's energy1_input (µJ, discrete
//     cards) and, for xe, temp2_input (package, m°C);
//   - runtime: device/power/runtime_status. While it says "suspended" the
//     other files are not read, since reading them would wake the GPU.
//
// GT 0 is the render/compute GT in both drivers; the media GT (gt1 on
// Meteor Lake and later) idles on its own and is left out.
type intelGPU struct {
	card    string // e.g. "card0"
	labels  metric.Labels
	runtime *procFile // nil when the kernel has no runtime PM file
	idle    *procFile // nil when the card has no residency counter
	freq    *procFile // nil when absent
	energy  *procFile // nil when absent
	temp    *procFile // nil when absent

	// every paces the reads when the card runtime-suspends: each read
	// marks the device busy for runtime PM, so reading an idle card more
	// often than its autosuspend delay would keep it powered for ever.
	// Between reads the last values are reported again. 0: every tick.
	every time.Duration
	last  time.Time     // of the last read
	vals  []intelSample // of the last read

	// Previous counter readings; have* is false until a reading of the
	// previous read exists.
	prevIdle, prevEnergy uint64
	haveIdle, haveEnergy bool
}

// intelSample is one value of an Intel card's last read.
type intelSample struct {
	name string
	v    float64
}

// intelMaxEvery bounds the pacing of an Intel card's reads.
const intelMaxEvery = time.Minute

// intelEvery returns how often the card at dev (its device directory) may
// be read: with runtime PM on ("auto") and an autosuspend delay, once per
// delay plus a second, so an idle card suspends between reads (and a
// suspended one is not read, see collect); 0 (every tick) when runtime PM
// is off or suspend is not possible.
func intelEvery(dev string) time.Duration {
	if readSysString(filepath.Join(dev, "power", "control")) != "auto" {
		return 0
	}
	ms, err := strconv.ParseInt(readSysString(filepath.Join(dev, "power", "autosuspend_delay_ms")), 10, 64)
	if err != nil || ms < 0 { // no autosuspend delay file, or suspend prevented
		return 0
	}
	return min(time.Duration(ms)*time.Millisecond+time.Second, intelMaxEvery)
}

// scanIntel finds Intel DRM cards (card<N> directories whose device/vendor
// is 0x8086; connectors like card0-eDP-1 are skipped by name) and keeps the
// previous counter readings of cards whose files did not change.
func (c *GPU) scanIntel() {
	old := c.intel
	c.intel = nil
	cards, _ := filepath.Glob(filepath.Join(c.drmRoot, "card*"))
	slices.SortFunc(cards, compareNatural)
	for _, dir := range cards {
		card := filepath.Base(dir)
		if strings.Contains(card, "-") || readSysString(filepath.Join(dir, "device", "vendor")) != intelVendor {
			continue
		}
		g := newIntelGPU(dir)
		if g.idle == nil && g.freq == nil && g.energy == nil && g.temp == nil {
			continue
		}
		for _, o := range old {
			if o.card == g.card && samePath(o.idle, g.idle) && samePath(o.energy, g.energy) {
				g.prevIdle, g.haveIdle, g.prevEnergy, g.haveEnergy = o.prevIdle, o.haveIdle, o.prevEnergy, o.haveEnergy
				g.last, g.vals = o.last, o.vals
			}
		}
		c.intel = append(c.intel, g)
	}
}

// newIntelGPU resolves the files of the Intel card at dir (<sys>/class/drm/card<N>).
func newIntelGPU(dir string) *intelGPU {
	dev := filepath.Join(dir, "device")
	card := filepath.Base(dir)
	name := "Intel GPU"
	if id := readSysString(filepath.Join(dev, "device")); isPCIID(id) {
		name += " " + id
	}
	g := &intelGPU{card: card, labels: sortedLabels("gpu", strings.TrimPrefix(card, "card"), "name", name, "vendor", "intel")}
	first := func(paths ...string) *procFile {
		for _, p := range paths {
			if fileExists(p) {
				return &procFile{path: p, buf: make([]byte, 64)}
			}
		}
		return nil
	}
	g.runtime = first(filepath.Join(dev, "power", "runtime_status"))
	g.every = intelEvery(dev)
	xeGT := filepath.Join(dev, "tile0", "gt0")
	g.idle = first(
		filepath.Join(dir, "gt", "gt0", "rc6_residency_ms"), // i915, per GT
		filepath.Join(dir, "power", "rc6_residency_ms"),     // i915 before per-GT sysfs
		filepath.Join(xeGT, "gtidle", "idle_residency_ms"))  // xe
	g.freq = first(
		filepath.Join(dir, "gt", "gt0", "rps_act_freq_mhz"), // i915, per GT
		filepath.Join(dir, "gt_act_freq_mhz"),               // i915, card level
		filepath.Join(xeGT, "freq0", "act_freq"))            // xe
	hw, _ := filepath.Glob(filepath.Join(dev, "hwmon", "hwmon*"))
	slices.SortFunc(hw, compareNatural)
	for _, h := range hw {
		// i915 also registers per-GT hwmon devices ("i915_gt0"); only the
		// device-level one ("i915", "xe") covers the whole card.
		if n := readSysString(filepath.Join(h, "name")); n != "i915" && n != "xe" {
			continue
		}
		g.energy = first(filepath.Join(h, "energy1_input"))
		g.temp = first(filepath.Join(h, "temp2_input"))
		break
	}
	return g
}

// collect appends this card's samples at now: read afresh when the pacing
// allows (rates over the time since the previous read), else those of the
// last read.
func (g *intelGPU) collect(b *Batch, now time.Time) {
	if g.every > 0 && !g.last.IsZero() && now.Sub(g.last) < g.every {
		g.emit(b)
		return
	}
	var seconds float64
	if !g.last.IsZero() {
		seconds = now.Sub(g.last).Seconds()
	}
	g.last = now
	g.vals = g.vals[:0]
	g.read(seconds)
	g.emit(b)
}

func (g *intelGPU) emit(b *Batch) {
	for _, v := range g.vals {
		b.addShared(v.name, v.v, g.labels)
	}
}

// read fills g.vals; seconds is the time since the previous read (0 on
// the first).
func (g *intelGPU) read(seconds float64) {
	add := func(name string, v float64) { g.vals = append(g.vals, intelSample{name, v}) }
	if g.runtime != nil {
		if st, err := g.runtime.read(); err == nil && bytes.Equal(bytes.TrimSpace(st), []byte("suspended")) {
			// Powered down: nothing runs on it. The counters are not read
			// (that would wake it) and rates restart after it resumes.
			if g.idle != nil {
				add("gpu_utilization_percent", 0)
			}
			g.haveIdle, g.haveEnergy = false, false
			return
		}
	}
	if g.idle != nil {
		cur, ok := readSysUint(g.idle)
		if ok && g.haveIdle {
			// ms of idle per second of wall time: 1000 = fully idle.
			if idle, ok := perSecond(g.prevIdle, cur, seconds); ok {
				add("gpu_utilization_percent", round2(min(max(100-idle/10, 0), 100)))
			}
		}
		g.prevIdle, g.haveIdle = cur, ok
	}
	if g.freq != nil {
		if v, ok := readSysUint(g.freq); ok {
			add("gpu_frequency_mhz", float64(v))
		}
	}
	if g.energy != nil {
		cur, ok := readSysUint(g.energy)
		if ok && g.haveEnergy {
			if uw, ok := perSecond(g.prevEnergy, cur, seconds); ok {
				add("gpu_power_watts", round2(uw/1e6))
			}
		}
		g.prevEnergy, g.haveEnergy = cur, ok
	}
	if g.temp != nil {
		if v, ok := readSysUint(g.temp); ok {
			add("gpu_temperature_celsius", round2(float64(v)/1000))
		}
	}
}

// isPCIID reports whether s looks like a PCI id as sysfs writes it ("0x56a0").
func isPCIID(s string) bool {
	if len(s) != 6 || !strings.HasPrefix(s, "0x") {
		return false
	}
	for _, c := range s[2:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// samePath reports whether a and b read the same file (both nil counts).
func samePath(a, b *procFile) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.path == b.path
}

// fileExists reports whether path exists and is not a directory.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// intelAvailable reports whether a DRM card with PCI vendor Intel exists.
func intelAvailable(drmRoot string) bool {
	vs, _ := filepath.Glob(filepath.Join(drmRoot, "card*", "device", "vendor"))
	for _, v := range vs {
		if !strings.Contains(filepath.Base(filepath.Dir(filepath.Dir(v))), "-") && readSysString(v) == intelVendor {
			return true
		}
	}
	return false
}
