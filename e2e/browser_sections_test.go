package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Hostile strings an agent (or an ingest client) could send as label values.
const (
	evilUnit      = `evil<img src=x onerror=window.__pwned=1>.service`
	evilContainer = `web"><svg onload=window.__pwned=2>`
	evilModel     = `Samsung <b>990</b> PRO`
	evilSensor    = `Package <i>0</i>`
)

type ingestSample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// deepSamples is the set of deep metrics injected for the machine; gpuUtil
// changes between rounds to check live updates.
func deepSamples(gpuUtil float64) []ingestSample {
	ssh := map[string]string{"unit": "ssh.service"}
	evil := map[string]string{"unit": evilUnit}
	disk := map[string]string{"device": "nvme0", "model": evilModel}
	gpu := map[string]string{"gpu": "0", "name": "NVIDIA H100 80GB HBM3", "vendor": "nvidia"}
	igpu := map[string]string{"gpu": "1", "name": "Intel GPU 0x46a6", "vendor": "intel"}
	ctr := map[string]string{"container": evilContainer, "id": "0123456789ab", "runtime": "docker"}
	return []ingestSample{
		{"systemd_unit_active", ssh, 1},
		{"systemd_unit_failed", ssh, 0},
		{"systemd_unit_info", map[string]string{"unit": "ssh.service", "active_state": "active", "sub_state": "running"}, 1},
		{"systemd_unit_cpu_usage_percent", ssh, 2.5},
		{"systemd_unit_memory_bytes", ssh, 12 << 20},
		{"systemd_unit_restarts_total", ssh, 0},
		{"directory_size_bytes", map[string]string{"service": "ssh.service", "path": "/var/lib/ssh"}, 5 << 20},
		{"systemd_unit_active", evil, 0},
		{"systemd_unit_failed", evil, 1},
		{"systemd_unit_info", map[string]string{"unit": evilUnit, "active_state": "failed", "sub_state": "failed"}, 1},
		{"systemd_unit_restarts_total", evil, 3},
		{"smart_health_passed", disk, 1},
		{"smart_temperature_celsius", disk, 41},
		{"smart_power_on_seconds", disk, 93784},
		{"nvme_wear_percent", disk, 85},
		{"nvme_available_spare_percent", disk, 100},
		{"hwmon_temperature_celsius", map[string]string{"chip": "coretemp", "sensor": evilSensor}, 97},
		{"thermal_zone_temperature_celsius", map[string]string{"zone": "0", "type": "acpitz"}, 45},
		{"fan_speed_rpm", map[string]string{"chip": "nct6775", "sensor": "fan1"}, 1200},
		{"gpu_utilization_percent", gpu, gpuUtil},
		{"gpu_memory_used_bytes", gpu, 20 << 30},
		{"gpu_memory_total_bytes", gpu, 80 << 30},
		{"gpu_temperature_celsius", gpu, 63},
		{"gpu_power_watts", gpu, 312},
		{"gpu_power_limit_watts", gpu, 700},
		{"gpu_utilization_percent", igpu, 25},
		{"gpu_frequency_mhz", igpu, 1200},
		{"container_cpu_usage_percent", ctr, 12.5},
		{"container_memory_usage_bytes", ctr, 256 << 20},
		{"container_io_read_bytes_per_second", ctr, 1024},
		{"container_io_write_bytes_per_second", ctr, 2048},
		{"container_restarts_total", ctr, 3},
	}
}

func ingest(t *testing.T, hub *hubProc, machine string, samples []ingestSample) error {
	body, err := json.Marshal(map[string]any{"machine": machine, "metrics": samples})
	if err != nil {
		return err
	}
	resp, err := hub.postIngest(body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Accepted int      `json:"accepted"`
		Rejected int      `json:"rejected"`
		Errors   []string `json:"errors"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Rejected != 0 || r.Accepted != len(samples) {
		return fmt.Errorf("ingest: status %d: %s", resp.StatusCode, truncate(string(b)))
	}
	return nil
}

// keepIngesting posts samples() for machine now (failing the test on an
// error) and then every interval, as an agent would, until the test ends or
// the returned stop is called.
func keepIngesting(t *testing.T, hub *hubProc, machine string, every time.Duration, samples func() []ingestSample) (stop func()) {
	t.Helper()
	if err := ingest(t, hub, machine, samples()); err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(every):
				if err := ingest(t, hub, machine, samples()); err != nil {
					t.Log(err)
				}
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestBrowserMachineSections: the deep sections of the machine page (top
// processes, services, disk health, sensors, GPUs, containers) show injected
// deep metrics and the agent's live top-process list, literally and live.
func TestBrowserMachineSections(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1400, 1500, 120*time.Second)
	hub := startHub(t, t.TempDir(), "", "", "--offline-after", "2s")
	ag := startAgent(t, hub, "sect", "--top-processes", "5", "--processes-interval", "1s")
	waitOnline(t, hub, "sect")
	// Keep sending, as an agent would, with a value the page must pick up.
	var util atomic.Int64
	util.Store(42)
	stopIngest := keepIngesting(t, hub, "sect", time.Second, func() []ingestSample { return deepSamples(float64(util.Load())) })

	b.run("open machine", chromedp.Navigate("http://"+hub.http+"/machines/sect"))
	b.waitJS(15*time.Second, "machine page", `(document.documentElement.dataset.loaded || "").startsWith("live:")`)
	visible := func(id string) string {
		return `(() => { const s = document.querySelector('.section[data-section="` + id + `"]'); return s && !s.hidden; })()`
	}
	for _, id := range []string{"top-processes", "services", "disk-health", "sensors", "gpus", "containers"} {
		b.waitJS(10*time.Second, "section "+id, visible(id))
	}
	text := func(sel string) []string {
		return js[[]string](b, `[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.textContent)`)
	}

	// Top processes: rows from the agent, live; sortable by memory.
	b.waitJS(10*time.Second, "process rows", `document.querySelectorAll('[data-section="top-processes"] tbody tr').length >= 1`)
	ts0 := js[string](b, `document.querySelector('[data-section="top-processes"] .custom-section').dataset.ts`)
	b.waitJS(10*time.Second, "processes update", `document.querySelector('[data-section="top-processes"] .custom-section').dataset.ts !== `+jsString(ts0))
	cells := js[[]string](b, `[...document.querySelector('[data-section="top-processes"] tbody tr').children].map(e => e.textContent)`)
	if len(cells) != 7 || cells[0] == "" || !strings.HasSuffix(cells[4], "%") || !strings.Contains(cells[5], "B") {
		t.Errorf("first process row = %q", cells)
	}
	if n := js[int](b, `[...document.querySelectorAll('[data-section="top-processes"] td.cmd')].filter(e => !e.hasAttribute("title")).length`); n != 0 {
		t.Errorf("%d command cells without a title", n)
	}
	b.run("sort by memory", chromedp.Click(chromedp.CSS(`[data-section="top-processes"] button[data-sort="mem"]`)))
	b.waitJS(5*time.Second, "sorted by memory", `document.querySelector('[data-section="top-processes"] button[data-sort="mem"]').classList.contains("sorted")`)
	mem := js[[]float64](b, `[...document.querySelectorAll('[data-section="top-processes"] tbody tr')].map(r => { const [v, u] = r.children[5].textContent.split(" "); return Number(v) * ({B: 1, KiB: 1024, MiB: 1048576, GiB: 1073741824}[u] || 0); })`)
	for i := 1; i < len(mem); i++ {
		if mem[i] > mem[i-1]*1.01 {
			t.Errorf("memory column not descending: %v", mem)
			break
		}
	}

	// Services: failed first, hostile unit name literal, count in the heading.
	units := text(`[data-section="services"] tbody td.name`)
	if len(units) != 2 || units[0] != evilUnit || units[1] != "ssh.service" {
		t.Errorf("service units = %q, want the failed %q first", units, evilUnit)
	}
	if h := text(`[data-section="services"] h2`); len(h) != 1 || h[0] != "Services · 1 failed / 2 units" {
		t.Errorf("services heading = %q", h)
	}
	if s := text(`[data-section="services"] .sbadge`); len(s) != 2 || s[0] != "failed" || s[1] != "active" {
		t.Errorf("service states = %q", s)
	}
	if r := text(`[data-section="services"] tbody tr:first-child td:last-child`); len(r) != 1 || r[0] != "3" {
		t.Errorf("failed unit restarts = %q", r)
	}
	if d := text(`[data-section="services"] tbody tr:nth-child(2) td:nth-child(6)`); len(d) != 1 || !strings.HasPrefix(d[0], "5") {
		t.Errorf("ssh.service data column (directory_size_bytes 5 MiB) = %q", d)
	}
	if c := js[[]string](b, `[...document.querySelectorAll('[data-section="services"] .sbadge')].map(e => e.className)`); len(c) != 2 || c[0] != "sbadge crit" || c[1] != "sbadge ok" {
		t.Errorf("service badge classes = %q", c)
	}

	// Disk health: one row, PASSED, wear 85 % in red.
	disk := js[[]string](b, `[...document.querySelector('[data-section="disk-health"] tbody tr').children].map(e => e.textContent)`)
	if len(disk) != 8 || disk[0] != "nvme0" || disk[1] != evilModel || disk[2] != "PASSED" || disk[3] != "41 °C" || disk[4] != "1 d 2 h" || disk[5] != "85 %" {
		t.Errorf("disk row = %q", disk)
	}
	b.waitJS(time.Second, "wear in red", `document.querySelector('[data-section="disk-health"] .wtxt').classList.contains("crit") && document.querySelector('[data-section="disk-health"] .dbar i').classList.contains("crit")`)

	// Sensors: temperatures with thresholds, the fan.
	temps := text(`[data-section="sensors"] [data-group="temps"] .tile`)
	if !contains(temps, "coretemp · "+evilSensor+"97 °C") || !contains(temps, "acpitz (zone 0)45 °C") {
		t.Errorf("temperature tiles = %q", temps)
	}
	b.waitJS(time.Second, "97 °C is critical", `[...document.querySelectorAll('[data-section="sensors"] .tile.crit .tl')].some(e => e.textContent.includes("coretemp"))`)
	if fans := text(`[data-section="sensors"] [data-group="fans"] .tile`); !contains(fans, "nct6775 · fan11200 RPM") {
		t.Errorf("fan tiles = %q", fans)
	}

	// GPU card, updated live.
	gpu := js[string](b, `document.querySelector('[data-section="gpus"] .gpu').textContent`)
	if err := containsAll(gpu, "GPU 0 · NVIDIA H100 80GB HBM3", "nvidia", "42 %", "20.0 GiB / 80.0 GiB", "63 °C", "312 W / 700 W"); err != nil {
		t.Errorf("GPU card %q: %v", gpu, err)
	}
	// The Intel card shows its GT frequency; the NVIDIA card has no such line.
	igpu := js[[]string](b, `[...document.querySelectorAll('[data-section="gpus"] .gpu')].map(e => [...e.querySelectorAll('.gline')].filter(l => !l.hidden).map(l => l.textContent).join("|"))`)
	if len(igpu) != 2 || strings.Contains(igpu[0], "Frequency") || !strings.Contains(igpu[1], "Frequency1200 MHz") {
		t.Errorf("GPU cards' lines = %q", igpu)
	}
	util.Store(77)
	b.waitJS(10*time.Second, "GPU utilisation updates", `document.querySelector('[data-section="gpus"] .gpu').textContent.includes("77 %")`)

	// Container with the hostile name, as text.
	ctr := js[[]string](b, `[...document.querySelector('[data-section="containers"] tbody tr').children].map(e => e.textContent)`)
	if len(ctr) != 8 || ctr[0] != evilContainer || ctr[1] != "docker" || ctr[2] != "0123456789ab" || ctr[3] != "13 %" || ctr[4] != "256 MiB" || ctr[7] != "3" {
		t.Errorf("container row = %q", ctr)
	}

	// Nothing injected; the sections survive the agent's own metrics events.
	b.waitJS(time.Second, "nothing injected", `document.querySelectorAll('main img, main svg, main b, main i:not(.bar i):not(.dbar i)').length === 0 && window.__pwned === undefined`)
	time.Sleep(1500 * time.Millisecond)
	for _, id := range []string{"services", "disk-health", "sensors", "gpus", "containers", "top-processes"} {
		b.waitJS(time.Second, "still shown: "+id, visible(id))
	}

	b.exec("scroll to the sections", `document.querySelector('[data-section="top-processes"]').scrollIntoView()`)
	time.Sleep(300 * time.Millisecond)
	b.screenshot("machine-deep") // e2e/artifacts/; docs/img/machine-deep.png is a copy made by hand

	// Offline: the top-process list goes away (the hub drops it).
	stopIngest()
	ag.kill(syscall.SIGTERM)
	b.waitJS(15*time.Second, "top processes hidden when offline", `document.querySelector('.state').textContent === "offline" && document.querySelector('.section[data-section="top-processes"]').hidden`)
	b.checkClean()
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
