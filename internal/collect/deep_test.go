package collect

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// fixtureRun returns a runFunc that answers each argv (joined by spaces,
// program path left out) with a fixture file.
func fixtureRun(t *testing.T, files map[string]string) runFunc {
	return func(_ context.Context, argv ...string) ([]byte, error) {
		key := strings.Join(argv[1:], " ")
		f, ok := files[key]
		if !ok {
			t.Errorf("unexpected exec %q", key)
			return nil, errors.New("not found")
		}
		return os.ReadFile(filepath.Join("testdata", f))
	}
}

func TestHwmonFixture(t *testing.T) {
	c := NewHwmon(Options{SysPath: filepath.Join("testdata", "sys")})
	wantSamples(t, "hwmon", collectOnce(t, c),
		`hwmon_temperature_celsius{chip="coretemp",sensor="Package id 0"} 45`,
		`hwmon_temperature_celsius{chip="coretemp",sensor="Core 0"} 43`,
		`hwmon_temperature_celsius{chip="coretemp",sensor="Core 8"} 44`,
		`hwmon_temperature_celsius{chip="nvme_hwmon1",sensor="Composite"} 38.85`,
		`hwmon_temperature_celsius{chip="nvme_hwmon3",sensor="Composite"} 41.85`,
		`hwmon_temperature_celsius{chip="nct6775",sensor="temp1"} -5`,
		`fan_speed_rpm{chip="nct6775",sensor="CPU Fan"} 1215`,
		`fan_speed_rpm{chip="nct6775",sensor="fan2"} 0`,
	)
}

func TestThermalFixture(t *testing.T) {
	c := NewThermal(Options{SysPath: filepath.Join("testdata", "sys")})
	wantSamples(t, "thermal", collectOnce(t, c),
		`thermal_zone_temperature_celsius{type="acpitz",zone="0"} 27.8`,
		`thermal_zone_temperature_celsius{type="x86_pkg_temp",zone="1"} 47`,
	)
}

func TestPressureFixture(t *testing.T) {
	c := NewPressure(Options{ProcPath: filepath.Join("testdata", "proc")})
	got := collectOnce(t, c)
	if len(got) != 24 {
		t.Fatalf("%d samples, want 24: %q", len(got), got)
	}
	for _, want := range []string{
		`pressure_some_avg10_percent{resource="cpu"} 1.53`,
		`pressure_some_avg60_percent{resource="cpu"} 0.87`,
		`pressure_some_avg300_percent{resource="cpu"} 0.35`,
		`pressure_some_seconds_total{resource="cpu"} 123.457`,
		`pressure_full_seconds_total{resource="memory"} 1.001`,
		`pressure_full_avg10_percent{resource="io"} 10.01`,
		`pressure_some_seconds_total{resource="io"} 98765.432`,
	} {
		if !contains(got, want) {
			t.Errorf("missing %s in %q", want, got)
		}
	}
	// cpu without a full line (Linux < 5.13).
	some, _, hasFull, err := parsePressure([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"))
	if err != nil || hasFull || some.total != 5 {
		t.Fatalf("parsePressure = %+v %v %v", some, hasFull, err)
	}
	for _, bad := range []string{"", "some avg10=x avg60=0 avg300=0 total=1", "other avg10=0", "some avg10=0 avg60=0 avg300=0"} {
		if _, _, _, err := parsePressure([]byte(bad)); err == nil {
			t.Errorf("parsePressure(%q) accepted", bad)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestBatteryFixture(t *testing.T) {
	c := NewBattery(Options{SysPath: filepath.Join("testdata", "sys")})
	wantSamples(t, "battery", collectOnce(t, c),
		`battery_capacity_percent{battery="BAT0"} 87`,
		`battery_charging{battery="BAT0"} 0`,
		`battery_energy_joules{battery="BAT0"} 156816`,
		`battery_energy_full_joules{battery="BAT0"} 180000`,
		`battery_power_watts{battery="BAT0"} 8.12`,
		`battery_capacity_percent{battery="BAT1"} 40`,
		`battery_charging{battery="BAT1"} 1`,
		`battery_charge_coulombs{battery="BAT1"} 7200`,
		`battery_charge_full_coulombs{battery="BAT1"} 18000`,
		`battery_power_watts{battery="BAT1"} 18`,
	)
}

func TestSystemdFixture(t *testing.T) {
	root := copyFixture(t)
	clock := newFakeClock()
	c := NewSystemd(Options{SysPath: filepath.Join(root, "sys"), RootFS: root})
	c.Systemctl = "/usr/bin/systemctl"
	c.run = fixtureRun(t, map[string]string{
		"show --no-pager --property=Id,LoadState,ActiveState,SubState,NRestarts *.service": "systemctl-show.txt",
	})
	c.now, c.clock.now, c.state.now = clock.now, clock.now, clock.now
	// Tick 1 starts systemctl in the background and does not wait for it.
	wantSamples(t, "tick 1", collectOnce(t, c),
		`systemd_unit_memory_bytes{unit="nginx.service"} 52428800`,
		`systemd_unit_memory_bytes{unit="getty@tty1.service"} 1048576`)
	c.state.wait()

	clock.advance(2 * time.Second)
	cg := filepath.Join(root, "sys", "fs", "cgroup", "system.slice", "nginx.service")
	writeFile(t, filepath.Join(cg, "cpu.stat"), "usage_usec 1500000\nuser_usec 1\nsystem_usec 2\n")
	writeFile(t, filepath.Join(cg, "io.stat"), "8:0 rbytes=6144 wbytes=8192 rios=11 wios=20\n259:0 rbytes=1000 wbytes=4000 rios=1 wios=1\n")
	wantSamples(t, "tick 2", collectOnce(t, c),
		`systemd_unit_active{unit="nginx.service"} 1`,
		`systemd_unit_failed{unit="nginx.service"} 0`,
		`systemd_unit_info{active_state="active",sub_state="running",unit="nginx.service"} 1`,
		`systemd_unit_restarts_total{unit="nginx.service"} 2`,
		`systemd_unit_active{unit="backup.service"} 0`,
		`systemd_unit_failed{unit="backup.service"} 1`,
		`systemd_unit_info{active_state="failed",sub_state="failed",unit="backup.service"} 1`,
		`systemd_unit_restarts_total{unit="backup.service"} 0`,
		`systemd_unit_active{unit="getty@tty1.service"} 1`,
		`systemd_unit_failed{unit="getty@tty1.service"} 0`,
		`systemd_unit_info{active_state="reloading",sub_state="reload",unit="getty@tty1.service"} 1`,
		`systemd_unit_restarts_total{unit="getty@tty1.service"} 0`,
		`systemd_unit_active{unit="cups.service"} 0`,
		`systemd_unit_failed{unit="cups.service"} 0`,
		`systemd_unit_info{active_state="inactive",sub_state="dead",unit="cups.service"} 1`,
		`systemd_units_failed{} 1`,
		`systemd_units_active{} 2`,
		`systemd_unit_memory_bytes{unit="nginx.service"} 52428800`,
		`systemd_unit_memory_bytes{unit="getty@tty1.service"} 1048576`,
		// nginx: +0.5 s CPU in 2 s = 25% of one core; +2048 B read, +4000 B written.
		`systemd_unit_cpu_usage_percent{unit="nginx.service"} 25`,
		`systemd_unit_io_read_bytes_per_second{unit="nginx.service"} 1024`,
		`systemd_unit_io_write_bytes_per_second{unit="nginx.service"} 2000`,
		`systemd_unit_cpu_usage_percent{unit="getty@tty1.service"} 0`,
		`systemd_unit_io_read_bytes_per_second{unit="getty@tty1.service"} 0`,
		`systemd_unit_io_write_bytes_per_second{unit="getty@tty1.service"} 0`,
	)

	// A stopped unit's cgroup disappears: it is dropped without an error.
	if err := os.RemoveAll(cg); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	got := collectOnce(t, c)
	for _, s := range got {
		if strings.Contains(s, "systemd_unit_memory_bytes") && strings.Contains(s, "nginx") {
			t.Fatalf("removed unit still reported: %s", s)
		}
	}
}

func TestSystemdCommandFails(t *testing.T) {
	logs := &syncBuffer{}
	c := NewSystemd(Options{SysPath: t.TempDir(), RootFS: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	c.Systemctl = "/usr/bin/systemctl"
	c.run = func(context.Context, ...string) ([]byte, error) { return nil, errors.New("Failed to connect to bus") }
	wantSamples(t, "tick 1", collectOnce(t, c))
	c.state.wait()
	c.state.refreshSoon()
	wantSamples(t, "tick 2", collectOnce(t, c))
	c.state.wait()
	if n := strings.Count(logs.String(), "Failed to connect to bus"); n != 1 {
		t.Fatalf("logged the same failure %d times, want once:\n%s", n, logs)
	}
}

const (
	dockerID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
	podmanID = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
)

// serveDockerAPI serves GET /containers/json on a unix socket in a
// temporary directory and returns the socket's path.
func serveDockerAPI(t *testing.T, body string) string {
	t.Helper()
	return serveDockerAPIFunc(t, func() string { return body })
}

// serveDockerAPIFunc is serveDockerAPI with the body of each answer from
// body.
func serveDockerAPIFunc(t *testing.T, body func() string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/containers/json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestContainersFixture(t *testing.T) {
	root := copyFixture(t)
	sock := serveDockerAPI(t, `[{"Id":"`+dockerID+`","Names":["/web"],"Image":"nginx:1.27","State":"running"},`+
		`{"Id":"ffff","Names":["/elsewhere"]}]`)
	clock := newFakeClock()
	c := NewContainers(Options{SysPath: filepath.Join(root, "sys"), ProcPath: filepath.Join(root, "ctproc"), RootFS: root})
	c.DockerSocket, c.PodmanSocket = sock, ""
	c.now, c.clock.now, c.names.now = clock.now, clock.now, clock.now

	// Tick 1: containers found; their series wait for the API's answer.
	wantSamples(t, "tick 1", collectOnce(t, c))
	c.names.wait()
	clock.advance(time.Second)
	wantSamples(t, "tick 2", collectOnce(t, c),
		// 200 MiB current − 100 MiB inactive_file (the docker stats definition).
		`container_memory_usage_bytes{container="web",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_memory_usage_bytes{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 10485760`,
		`container_restarts_total{container="web",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_restarts_total{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
	)
	clock.advance(2 * time.Second)
	cg := filepath.Join(root, "sys", "fs", "cgroup", "system.slice", "docker-"+dockerID+".scope")
	writeFile(t, filepath.Join(cg, "cpu.stat"), "usage_usec 5000000\n")
	writeFile(t, filepath.Join(cg, "io.stat"), "8:0 rbytes=5000 wbytes=2000\n259:0 rbytes=1000 wbytes=4000\n")
	writeFile(t, filepath.Join(root, "ctproc", "4242", "net", "dev"), "Inter-|\n face |\n    lo: 9999 1 0 0 0 0 0 0 9999 1 0 0 0 0 0 0\n  eth0: 12000 1 0 0 0 0 0 0 5000 1 0 0 0 0 0 0\n")
	wantSamples(t, "tick 3", collectOnce(t, c),
		`container_memory_usage_bytes{container="web",id="3f4e5d6c7b8a",runtime="docker"} 104857600`,
		`container_cpu_usage_percent{container="web",id="3f4e5d6c7b8a",runtime="docker"} 150`,
		`container_io_read_bytes_per_second{container="web",id="3f4e5d6c7b8a",runtime="docker"} 2000`,
		`container_io_write_bytes_per_second{container="web",id="3f4e5d6c7b8a",runtime="docker"} 2000`,
		`container_network_receive_bytes_per_second{container="web",id="3f4e5d6c7b8a",runtime="docker"} 1000`,
		`container_network_transmit_bytes_per_second{container="web",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_memory_usage_bytes{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 10485760`,
		`container_cpu_usage_percent{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_io_read_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_io_write_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_network_receive_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_network_transmit_bytes_per_second{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
		`container_restarts_total{container="web",id="3f4e5d6c7b8a",runtime="docker"} 0`,
		`container_restarts_total{container="0a1b2c3d4e5f",id="0a1b2c3d4e5f",runtime="podman"} 0`,
	)
}

func TestParseContainerCgroup(t *testing.T) {
	f := func(parent, name, wantID, wantRT string) {
		t.Helper()
		id, rt, ok := parseContainerCgroup(parent, name)
		if id != wantID || rt != wantRT || ok != (wantID != "") {
			t.Errorf("parseContainerCgroup(%q, %q) = %q %q %v", parent, name, id, rt, ok)
		}
	}
	f("system.slice", "docker-"+dockerID+".scope", dockerID, "docker")
	f("machine.slice", "libpod-"+podmanID+".scope", podmanID, "podman")
	f("docker", dockerID, dockerID, "docker")
	f("system.slice", "docker-short.scope", "", "")
	f("system.slice", "nginx.service", "", "")
	f("system.slice", "docker-"+strings.ToUpper(dockerID)+".scope", "", "")
}

func TestSmartFixture(t *testing.T) {
	c := NewSmart(Options{})
	c.Smartctl = "/usr/sbin/smartctl"
	c.run = fixtureRun(t, map[string]string{
		"--scan-open --json": "smartctl/scan-open.json",
		"--json --all --nocheck=standby --device=sat /dev/sda":    "smartctl/sda.json",
		"--json --all --nocheck=standby --device=nvme /dev/nvme0": "smartctl/nvme0.json",
	})
	wantSamples(t, "tick 1 (smartctl running)", collectOnce(t, c))
	c.src.wait()
	want := []string{
		`smart_health_passed{device="sda",model="WDC WD40EFRX-68N32N0"} 1`,
		`smart_temperature_celsius{device="sda",model="WDC WD40EFRX-68N32N0"} 37`,
		`smart_power_on_seconds{device="sda",model="WDC WD40EFRX-68N32N0"} 129297600`,
		`smart_reallocated_sectors{device="sda",model="WDC WD40EFRX-68N32N0"} 8`,
		`smart_pending_sectors{device="sda",model="WDC WD40EFRX-68N32N0"} 2`,
		`smart_offline_uncorrectable_sectors{device="sda",model="WDC WD40EFRX-68N32N0"} 0`,
		`smart_health_passed{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 1`,
		`smart_temperature_celsius{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 41`,
		`smart_power_on_seconds{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 31536000`,
		`nvme_wear_percent{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 3`,
		`nvme_available_spare_percent{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 100`,
		`nvme_media_errors_total{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 0`,
		`nvme_critical_warning{device="nvme0",model="Samsung SSD 980 PRO 1TB"} 0`,
	}
	wantSamples(t, "tick 2 (cached)", collectOnce(t, c), want...)
	// Later ticks emit the cached values without running smartctl again.
	c.run = func(context.Context, ...string) ([]byte, error) {
		t.Error("smartctl ran again before the interval passed")
		return nil, errors.New("no")
	}
	wantSamples(t, "tick 3 (cached)", collectOnce(t, c), want...)
}

// TestSmartHungNeverBlocksTick runs in a synctest bubble, so "never
// blocks" is exact: the ticks take no (fake) time at all.
func TestSmartHungNeverBlocksTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewSmart(Options{})
		c.Smartctl = "/usr/sbin/smartctl"
		release := make(chan struct{})
		c.run = func(ctx context.Context, _ ...string) ([]byte, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, errors.New("killed")
		}
		s := NewSet(Options{Timeout: 50 * time.Millisecond}, c)
		begin := time.Now()
		for range 3 {
			s.Collect(context.Background())
		}
		if d := time.Since(begin); d != 0 {
			t.Fatalf("3 ticks took %v with a hung smartctl", d)
		}
		if st := s.Stats()[0]; st.Skipped || st.Err != nil {
			t.Fatalf("stats %+v", st)
		}
		close(release)
		c.src.wait()
	})
}

func TestGPUFixture(t *testing.T) {
	c := NewGPU(Options{SysPath: filepath.Join("testdata", "sys")})
	c.NvidiaSMI = "/usr/bin/nvidia-smi"
	c.run = fixtureRun(t, map[string]string{
		"--query-gpu=" + nvidiaQuery + " --format=csv,noheader,nounits":               "nvidia-smi/query-gpu.csv",
		"--query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,nounits": "nvidia-smi/query-compute-apps.csv",
	})
	amd := []string{
		`gpu_utilization_percent{gpu="1",name="AMD Radeon RX 7800 XT",vendor="amd"} 37`,
		`gpu_memory_used_bytes{gpu="1",name="AMD Radeon RX 7800 XT",vendor="amd"} 1073741824`,
		`gpu_memory_total_bytes{gpu="1",name="AMD Radeon RX 7800 XT",vendor="amd"} 17163091968`,
		`gpu_temperature_celsius{gpu="1",name="AMD Radeon RX 7800 XT",vendor="amd"} 52`,
		`gpu_power_watts{gpu="1",name="AMD Radeon RX 7800 XT",vendor="amd"} 35.12`,
	}
	wantSamples(t, "tick 1 (nvidia-smi running)", collectOnce(t, c), amd...)
	c.src.wait()
	h := `{gpu="%s",name="NVIDIA H100 80GB HBM3",vendor="nvidia"}`
	l := func(gpu string) string { return strings.Replace(h, "%s", gpu, 1) }
	wantSamples(t, "tick 2", collectOnce(t, c), append(amd,
		"gpu_utilization_percent"+l("0")+" 87",
		"gpu_memory_utilization_percent"+l("0")+" 42",
		"gpu_memory_used_bytes"+l("0")+" 64431849472",
		"gpu_memory_total_bytes"+l("0")+" 85520809984",
		"gpu_temperature_celsius"+l("0")+" 64",
		"gpu_power_watts"+l("0")+" 512.34",
		"gpu_power_limit_watts"+l("0")+" 700",
		"gpu_utilization_percent"+l("1")+" 0",
		"gpu_memory_utilization_percent"+l("1")+" 0",
		"gpu_memory_used_bytes"+l("1")+" 1048576",
		"gpu_memory_total_bytes"+l("1")+" 85520809984",
		"gpu_temperature_celsius"+l("1")+" 31",
		"gpu_power_watts"+l("1")+" 69.88",
		"gpu_power_limit_watts"+l("1")+" 700",
		// GPU 2 reports [N/A] and [Not Supported]: only the numbers.
		"gpu_memory_used_bytes"+l("2")+" 1048576",
		"gpu_memory_total_bytes"+l("2")+" 85520809984",
		`gpu_process_memory_bytes{gpu="0",pid="31337"} 64424509440`,
	)...)
	if _, _, err := parseNvidiaGPUs([]byte("0, GPU-x, name, 1\n")); err == nil {
		t.Error("short row accepted")
	}
}

func TestTextfileFixture(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"backup.prom", "escape.prom", "bad.prom", "machine.prom", "dup.prom", "README.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", "textfile", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	mtime := time.Unix(1795629000, 500e6)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.Chtimes(filepath.Join(dir, e.Name()), mtime, mtime)
	}
	logs := &syncBuffer{}
	c := NewTextfile(dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	want := []string{
		`backup_last_success_timestamp_seconds{job="nightly",target="s3://bucket/db"} 1795629000`,
		`backup_size_bytes{job="nightly"} 1234500000`,
		`backup_files_total{} 42`,
		`app_info{multi="a\nb",path="C:\\data",quote="say \"hi\""} 1`,
	}
	for _, f := range []string{"backup.prom", "escape.prom", "bad.prom", "machine.prom", "dup.prom"} {
		failed := "0"
		if f == "bad.prom" || f == "machine.prom" || f == "dup.prom" { // dup: backup_files_total is in backup.prom (earlier)
			failed = "1"
		}
		want = append(want, `textfile_scrape_error{file="`+f+`"} `+failed, `textfile_mtime_seconds{file="`+f+`"} 1795629000.5`)
	}
	wantSamples(t, "tick 1", collectOnce(t, c), want...)
	wantSamples(t, "tick 2 (cached)", collectOnce(t, c), want...)
	for _, f := range []string{"bad.prom", "machine.prom", "dup.prom"} {
		if n := strings.Count(logs.String(), f); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", f, n, logs)
		}
	}
	// Fixing a file brings its samples in.
	writeFile(t, filepath.Join(dir, "bad.prom"), "good_metric 1\n")
	got := collectOnce(t, c)
	if !contains(got, `good_metric{} 1`) || !contains(got, `textfile_scrape_error{file="bad.prom"} 0`) {
		t.Fatalf("fixed file not picked up: %q", got)
	}
	// A missing directory is an error (it was configured explicitly).
	if err := NewTextfile(filepath.Join(dir, "nope"), Options{}).Collect(context.Background(), &Batch{}); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func TestParseTextfile(t *testing.T) {
	ok := func(in string, want ...string) {
		t.Helper()
		ss, err := parseTextfile([]byte(in))
		if err != nil {
			t.Fatalf("parseTextfile(%q): %v", in, err)
		}
		wantSamples(t, in, formatSamples(ss), want...)
	}
	bad := func(in string) {
		t.Helper()
		if ss, err := parseTextfile([]byte(in)); err == nil {
			t.Errorf("parseTextfile(%q) accepted: %v", in, ss)
		}
	}
	ok("")
	ok("# just a comment\n\n")
	ok("a 1\nb{x=\"1\"} -2.5e3\n", `a{} 1`, `b{x="1"} -2500`)
	ok("a{ z = \"1\" , b=\"2\" } 3 123\n", `a{b="2",z="1"} 3`)
	ok("#TYPE not a directive\na 1\n", `a{} 1`)
	ok("a:b_c 0\r\n", `a:b_c{} 0`)
	bad("1abc 1")
	bad("a{x=1} 1")
	bad(`a{x="1"`)
	bad(`a{x="1" 1`)
	bad(`a{x="1",x="2"} 1`)
	bad(`a{__name__="x"} 1`)
	bad(`a{machine="m"} 1`)
	bad(`a{x="\q"} 1`)
	bad("a NaN")
	bad("a +Inf")
	bad("a -Inf")
	bad("a 0x10")
	bad("a 1_000")
	bad("a")
	bad("a 1 notatime")
	bad("a 1 2 3")
	bad("a 1\na 2")
	bad("# TYPE a gauge\n# TYPE a counter\na 1")
	bad("# TYPE a bogus\n")
	bad("# HELP 1a text\n")
	bad("a{x=\"\xff\"} 1")
	bad("a 1e999")
}

// FuzzTextfile checks that the parser never panics and that whatever it
// accepts is valid for the hub.
func FuzzTextfile(f *testing.F) {
	for _, name := range []string{"backup.prom", "escape.prom", "bad.prom", "machine.prom"} {
		b, err := os.ReadFile(filepath.Join("testdata", "textfile", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a{b=\"c\\\\\\\"\\n\",} 1 2\n# HELP a x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := parseTextfile(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range ss {
			if err := metric.DefaultLimits.ValidateSeries(s.Name, s.Labels); err != nil {
				t.Fatalf("accepted invalid series: %v", err)
			}
			if err := metric.ValidateValue(s.Value); err != nil {
				t.Fatalf("accepted invalid value %v", s.Value)
			}
			if seen[s.Key()] {
				t.Fatalf("accepted duplicate series %s", s.Name)
			}
			seen[s.Key()] = true
		}
	})
}

// TestDeepCollectorsQuietWithoutSource runs every deep collector against an
// empty root: no samples, no error, no log line above debug.
func TestDeepCollectorsQuietWithoutSource(t *testing.T) {
	empty := t.TempDir()
	logs := &syncBuffer{}
	opts := Options{ProcPath: empty, SysPath: empty, RootFS: empty, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	sm := NewSmart(opts)
	sm.Smartctl = ""
	g := NewGPU(opts)
	g.NvidiaSMI = ""
	sd := NewSystemd(opts)
	ct := NewContainers(opts)
	for _, c := range []Collector{NewPressure(opts), NewHwmon(opts), NewThermal(opts), NewBattery(opts), sd, ct, sm, g} {
		for range 2 {
			wantSamples(t, c.Name(), collectOnce(t, c))
		}
	}
	ct.names.wait()
	if logs.String() != "" {
		t.Fatalf("logged on a host without the sources:\n%s", logs)
	}
	opts.Disable = []string{"smart", "gpu"} // these look for host binaries, not the root
	s := NewDefault(opts)
	if got := strings.Join(s.Names(), ","); got != strings.Join(CoreCollectors(), ",") {
		t.Fatalf("NewDefault on an empty root registered %s", got)
	}
	s = NewDefault(Options{ProcPath: "testdata/proc", SysPath: "testdata/sys", RootFS: empty, TextfileDir: empty,
		Disable: []string{"uptime", "smart", "gpu"}})
	for _, n := range []string{"pressure", "hwmon", "thermal", "battery", "systemd", "containers", "textfile"} {
		if !contains(s.Names(), n) {
			t.Errorf("NewDefault on the fixture root lacks %s: %v", n, s.Names())
		}
	}
	if contains(s.Names(), "uptime") || contains(s.Names(), "smart") {
		t.Errorf("disabled collectors registered: %v", s.Names())
	}
	if CheckCollectorNames([]string{"smart", "nope"}) == nil {
		t.Error("unknown collector name accepted")
	}
}
