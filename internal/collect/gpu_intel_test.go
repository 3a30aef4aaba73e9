package collect

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGPUIntelFixture runs the GPU collector against testdata/intelgpu: an
// i915 integrated card with per-GT sysfs (card0, plus its eDP connector), an
// xe discrete card (card1), an i915 discrete card with device and per-GT
// hwmon (card2), an i915 card of a kernel before per-GT sysfs (card3) and an
// AMD card carrying the same file names (card4).
func TestGPUIntelFixture(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "intelgpu", "sys")
	drm := filepath.Join(sys, "class", "drm")
	clock := newFakeClock()
	c := NewGPU(Options{SysPath: sys})
	c.NvidiaSMI = ""
	c.now = clock.now
	set := func(rel, v string) { writeFile(t, filepath.Join(drm, rel), v+"\n") }
	l := func(gpu, id string) string {
		name := "Intel GPU"
		if id != "" {
			name += " " + id
		}
		return `{gpu="` + gpu + `",name="` + name + `",vendor="intel"}`
	}
	igpu, xe, dg2, old := l("0", "0x46a6"), l("1", "0xe20b"), l("2", "0x56a0"), l("3", "0x5916")

	// Tick 1: gauges only; every rate needs a second reading.
	freqs := []string{
		"gpu_frequency_mhz" + igpu + " 300",
		"gpu_frequency_mhz" + xe + " 2850",
		"gpu_frequency_mhz" + dg2 + " 2400",
		"gpu_frequency_mhz" + old + " 300",
	}
	wantSamples(t, "tick 1", collectOnce(t, c), append(freqs, "gpu_temperature_celsius"+xe+" 47")...)

	// Tick 2, 2 s later.
	clock.advance(2 * time.Second)
	set("card0/gt/gt0/rc6_residency_ms", "8124956")                   // +1500 ms idle: 25 % busy
	set("card1/device/tile0/gt0/gtidle/idle_residency_ms", "5000500") // +500: 75 %
	set("card1/device/tile0/gt1/gtidle/idle_residency_ms", "7002000") // media GT, not used
	set("card1/device/hwmon/hwmon5/energy1_input", "123756789012")    // +300 J: 150 W
	set("card2/gt/gt0/rc6_residency_ms", "402000")                    // +2000: idle
	set("card2/device/hwmon/hwmon4/energy1_input", "5090000000")      // +90 J: 45 W
	set("card2/device/hwmon/hwmon3/energy1_input", "3010000000")      // GT 0 only, not used
	set("card3/power/rc6_residency_ms", "602100")                     // more idle than wall time: clamped
	set("card4/gt/gt0/rc6_residency_ms", "1500")                      // AMD, not reported
	set("card0-eDP-1/gt/gt0/rc6_residency_ms", "2")                   // connector, not reported
	set("card1/device/hwmon/hwmon5/temp2_input", "")                  // unreadable: left out
	wantSamples(t, "tick 2", collectOnce(t, c), append(freqs,
		"gpu_utilization_percent"+igpu+" 25",
		"gpu_utilization_percent"+xe+" 75",
		"gpu_utilization_percent"+dg2+" 0",
		"gpu_utilization_percent"+old+" 0",
		"gpu_power_watts"+xe+" 150",
		"gpu_power_watts"+dg2+" 45",
	)...)

	// Tick 3: card0's counter goes backwards (no rate for it), card2 is
	// runtime-suspended (0 %, nothing else read), card1's frequency reads 0
	// in its idle state.
	clock.advance(time.Second)
	set("card0/gt/gt0/rc6_residency_ms", "100")
	set("card1/device/tile0/gt0/gtidle/idle_residency_ms", "5001400") // +900: 10 %
	set("card1/device/tile0/gt0/freq0/act_freq", "0")
	set("card1/device/hwmon/hwmon5/energy1_input", "123776789012") // +20 J: 20 W
	set("card1/device/hwmon/hwmon5/temp2_input", "51500")
	set("card2/device/power/runtime_status", "suspended")
	set("card2/gt/gt0/rps_act_freq_mhz", "not a number") // would be left out anyway
	set("card3/power/rc6_residency_ms", "603000")        // +900: 10 %
	wantSamples(t, "tick 3", collectOnce(t, c),
		"gpu_frequency_mhz"+igpu+" 300",
		"gpu_frequency_mhz"+xe+" 0",
		"gpu_frequency_mhz"+old+" 300",
		"gpu_utilization_percent"+xe+" 10",
		"gpu_utilization_percent"+dg2+" 0",
		"gpu_utilization_percent"+old+" 10",
		"gpu_power_watts"+xe+" 20",
		"gpu_temperature_celsius"+xe+" 51.5",
	)

	// Tick 4, past rescanEvery: the rescan keeps the readings of tick 3, so
	// card0 (new baseline 100) and card1 have rates; card2 just resumed and
	// has only a baseline again.
	clock.advance(rescanEvery)
	secs := rescanEvery.Seconds()
	set("card0/gt/gt0/rc6_residency_ms", strconv.Itoa(100+int(secs*1000/2))) // 50 %
	set("card1/device/tile0/gt0/gtidle/idle_residency_ms", "5001400")        // no idle: 100 %
	set("card2/device/power/runtime_status", "active")
	set("card2/gt/gt0/rps_act_freq_mhz", "2350")
	wantSamples(t, "tick 4", collectOnce(t, c),
		"gpu_frequency_mhz"+igpu+" 300",
		"gpu_frequency_mhz"+xe+" 0",
		"gpu_frequency_mhz"+dg2+" 2350",
		"gpu_frequency_mhz"+old+" 300",
		"gpu_utilization_percent"+igpu+" 50",
		"gpu_utilization_percent"+xe+" 100",
		"gpu_utilization_percent"+old+" 100",
		"gpu_power_watts"+xe+" 0",
		"gpu_temperature_celsius"+xe+" 51.5",
	)

	// Tick 5: card2 has two readings since it resumed.
	clock.advance(time.Second)
	set("card2/gt/gt0/rc6_residency_ms", "402250")               // +250: 75 %
	set("card2/device/hwmon/hwmon4/energy1_input", "5090000000") // unchanged: 0 W
	got := strings.Join(collectOnce(t, c), "\n")
	for _, want := range []string{"gpu_utilization_percent" + dg2 + " 75", "gpu_power_watts" + dg2 + " 0"} {
		if !strings.Contains(got, want) {
			t.Fatalf("tick 5: no %s in\n%s", want, got)
		}
	}
}

// TestGPUIntelDevice covers card names and detection.
func TestGPUIntelDevice(t *testing.T) {
	for id, ok := range map[string]bool{"0x56a0": true, "0xE20B": false, "0x56a": false, "56a0ab": false, "": false, "0x56g0": false} {
		if isPCIID(id) != ok {
			t.Errorf("isPCIID(%q) = %v", id, !ok)
		}
	}
	root := copyFixture(t)
	drm := filepath.Join(root, "intelgpu", "sys", "class", "drm")
	if !intelAvailable(drm) {
		t.Fatal("Intel cards not detected")
	}
	if !gpuAvailable(Options{SysPath: filepath.Join(root, "intelgpu", "sys")}) {
		t.Fatal("gpuAvailable false with Intel cards")
	}
	// A device id that is not one gives the plain name.
	writeFile(t, filepath.Join(drm, "card3", "device", "device"), "garbage\n")
	if g := newIntelGPU(filepath.Join(drm, "card3")); g.labels.Get("name") != "Intel GPU" {
		t.Fatalf("name %q", g.labels.Get("name"))
	}
	for _, card := range []string{"card0", "card1", "card2", "card3"} {
		writeFile(t, filepath.Join(drm, card, "device", "vendor"), "0x1002\n")
	}
	if intelAvailable(drm) {
		t.Fatal("detected Intel with only AMD vendor ids and a connector")
	}
	c := NewGPU(Options{SysPath: filepath.Join(root, "intelgpu", "sys")})
	c.NvidiaSMI = ""
	wantSamples(t, "no Intel", collectOnce(t, c))
}

// TestGPUIntelRuntimePMPacing: a card with runtime PM on and a 10 s
// autosuspend delay is read at most every 11 s, so reading never keeps an
// idle GPU from suspending; in between the last values are reported again,
// and the utilisation covers the whole time since the previous read.
func TestGPUIntelRuntimePMPacing(t *testing.T) {
	sys := t.TempDir()
	card := filepath.Join(sys, "class", "drm", "card0")
	set := func(rel, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(card, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(card, rel), v+"\n")
	}
	set("device/vendor", "0x8086")
	set("device/device", "0x46a6")
	set("device/power/control", "auto")
	set("device/power/autosuspend_delay_ms", "10000")
	set("device/power/runtime_status", "active")
	set("gt/gt0/rc6_residency_ms", "1000")
	set("gt/gt0/rps_act_freq_mhz", "300")
	clock := newFakeClock()
	c := NewGPU(Options{SysPath: sys})
	c.NvidiaSMI = ""
	c.now = clock.now
	const l = `{gpu="0",name="Intel GPU 0x46a6",vendor="intel"}`

	wantSamples(t, "first read", collectOnce(t, c), "gpu_frequency_mhz"+l+" 300")
	// Within the pacing the files are not read: a new frequency and
	// residency go unseen, the last values are reported.
	set("gt/gt0/rc6_residency_ms", "6500") // 5.5 s idle of the 11 s to come
	set("gt/gt0/rps_act_freq_mhz", "1200")
	for i := range 10 {
		clock.advance(time.Second)
		wantSamples(t, fmt.Sprintf("paced tick %d", i), collectOnce(t, c), "gpu_frequency_mhz"+l+" 300")
	}
	clock.advance(time.Second) // 11 s after the first read
	wantSamples(t, "second read", collectOnce(t, c),
		"gpu_frequency_mhz"+l+" 1200", "gpu_utilization_percent"+l+" 50")
	// Suspended since: reported idle, counters not read.
	set("device/power/runtime_status", "suspended")
	set("gt/gt0/rps_act_freq_mhz", "999")
	clock.advance(11 * time.Second)
	wantSamples(t, "suspended", collectOnce(t, c), "gpu_utilization_percent"+l+" 0")

	// Runtime PM off ("on"): every tick is read.
	set("device/power/control", "on")
	set("device/power/runtime_status", "active")
	c.scanned = time.Time{} // rescan: the pacing follows the card's settings
	clock.advance(time.Second)
	collectOnce(t, c)
	set("gt/gt0/rps_act_freq_mhz", "700")
	clock.advance(time.Second)
	if got := strings.Join(collectOnce(t, c), "\n"); !strings.Contains(got, "gpu_frequency_mhz"+l+" 700") {
		t.Fatalf("runtime PM off, not read every tick: %s", got)
	}
	if g := c.intel[0]; g.every != 0 {
		t.Fatalf("every = %v with runtime PM off", g.every)
	}
}

func TestIntelEvery(t *testing.T) {
	dev := t.TempDir()
	if err := os.Mkdir(filepath.Join(dev, "power"), 0o755); err != nil {
		t.Fatal(err)
	}
	set := func(name, v string) { writeFile(t, filepath.Join(dev, "power", name), v+"\n") }
	for _, c := range []struct {
		control, delay string
		want           time.Duration
	}{
		{"auto", "10000", 11 * time.Second},
		{"auto", "0", time.Second},
		{"auto", "600000", intelMaxEvery},
		{"auto", "-1", 0}, // suspend prevented
		{"auto", "x", 0},
		{"on", "10000", 0},
	} {
		set("control", c.control)
		set("autosuspend_delay_ms", c.delay)
		if got := intelEvery(dev); got != c.want {
			t.Errorf("control %s delay %s: %v, want %v", c.control, c.delay, got, c.want)
		}
	}
}
