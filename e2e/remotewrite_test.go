package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// needVictoriaMetrics returns the victoria-metrics binary (Debian's
// package, 1.79); the test skips without it, except in CI (CI=true) where
// it fails.
func needVictoriaMetrics(t *testing.T) string {
	t.Helper()
	return testutil.NeedBinary(t, "victoria-metrics", "apt-get install victoria-metrics")
}

// freeAddr returns a loopback address with a port free right now, for a
// peer that must come back on the same port after a restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startVM runs VictoriaMetrics on addr with its data in dir (and extra
// flags) and waits until it answers /health.
func startVM(t *testing.T, bin, addr, dir string, extra ...string) *proc {
	t.Helper()
	p := startEngine(t, "victoria-metrics", exec.Command(bin, append([]string{"-httpListenAddr", addr, "-storageDataPath", dir, "-retentionPeriod", "100y", "-loggerLevel", "WARN"}, extra...)...))
	testutil.WaitFor(t, 30*time.Second, "victoria-metrics healthy", func() error {
		if err := p.exited(); err != nil {
			t.Fatal(err)
		}
		code, err := httpGet("http://" + addr + "/health")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	return p
}

// hubMetric returns the sum of a metric's samples in the hub's /metrics.
func hubMetric(t *testing.T, h *hubProc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + h.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// hubSamples returns every raw sample the hub stores in the last span, by
// series (labels as PromQL shows them), read with a range-vector query.
func hubSamples(t *testing.T, h *hubProc, at time.Time, span string) map[string][]int64 {
	t.Helper()
	q := url.Values{"query": {`{__name__=~".+"}[` + span + `]`}, "time": {strconv.FormatInt(at.Unix(), 10)}}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	if code := getJSON(t, "http://"+h.http+"/api/v1/query?"+q.Encode(), &r); code != 200 {
		t.Fatalf("hub query: status %d", code)
	}
	out := map[string][]int64{}
	for _, s := range r.Data.Result {
		key := seriesKey(s.Metric)
		for _, v := range s.Values {
			f, _ := v[0].(float64)
			out[key] = append(out[key], int64(f*1000+0.5))
		}
	}
	return out
}

// vmSamples returns every raw sample VictoriaMetrics holds (duplicates
// included), by series, from /api/v1/export.
func vmSamples(t *testing.T, addr string) map[string][]int64 {
	t.Helper()
	if _, err := httpGet("http://" + addr + "/internal/force_flush"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/api/v1/export?" + url.Values{"match[]": {`{__name__=~".+"}`}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string][]int64{}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Metric     map[string]string
			Timestamps []int64
		}
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		key := seriesKey(line.Metric)
		out[key] = append(out[key], line.Timestamps...)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

func seriesKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, m[k])
	}
	return b.String()
}

var hubAgain = regexp.MustCompile(`remote write: resuming with queued samples.*samples=(\d+)`)

// TestRemoteWriteToVictoriaMetrics: a hub fed by loadgen forwards to a real
// VictoriaMetrics. VictoriaMetrics stops for 20 s; during the outage the
// hub is killed (SIGKILL) and started again with its queue pending; then
// VictoriaMetrics comes back on the same port and data. Every sample the
// hub stored is in VictoriaMetrics exactly once, and the queue drains.
func TestRemoteWriteToVictoriaMetrics(t *testing.T) {
	vmBin := needVictoriaMetrics(t)
	vmAddr, vmDir := freeAddr(t), t.TempDir()
	vm := startVM(t, vmBin, vmAddr, vmDir)

	dataDir := t.TempDir()
	grpcAddr := freeAddr(t)
	rw := "http://" + vmAddr + "/api/v1/write"
	start0 := time.Now()
	hub := startHub(t, dataDir, "", grpcAddr, "--remote-write", rw)
	loadgen := func(prefix string) *proc {
		return start(t, "loadgen "+prefix, "loadgen", "--hub", grpcAddr, "--machines", "5", "--series", "20",
			"--interval", "1s", "--duration", "0", "--machine-prefix", prefix, "--log-level", "warn")
	}
	lg := loadgen("rw-a-")
	testutil.WaitFor(t, 30*time.Second, "samples sent to VictoriaMetrics", func() error {
		if v := hubMetric(t, hub, "sysmonstm_remote_write_sent_samples_total"); v < 500 {
			return fmt.Errorf("sent %v", v)
		}
		return nil
	})

	// Outage: VictoriaMetrics stops; the hub queues and retries.
	vm.kill(syscall.SIGTERM)
	outage := time.Now()
	testutil.WaitFor(t, 20*time.Second, "retries and a pending queue", func() error {
		if r, p := hubMetric(t, hub, "sysmonstm_remote_write_retries_total"), hubMetric(t, hub, "sysmonstm_remote_write_pending_samples"); r < 1 || p < 200 {
			return fmt.Errorf("retries %v, pending %v", r, p)
		}
		return nil
	})
	if lag := hubMetric(t, hub, "sysmonstm_remote_write_lag_seconds"); lag <= 0 {
		t.Fatalf("lag %v during the outage", lag)
	}
	// The hub dies with its queue pending and comes back.
	lg.kill(syscall.SIGKILL)
	time.Sleep(2 * time.Second) // a few commits after loadgen's last acks
	hub.kill(syscall.SIGKILL)
	hub = startHub(t, dataDir, "", grpcAddr, "--remote-write", rw)
	m := waitLog(t, hub.proc, 10*time.Second, hubAgain)
	if n, _ := strconv.Atoi(m[1]); n < 200 {
		t.Fatalf("resumed with %s queued samples", m[1])
	}
	lg = loadgen("rw-b-")
	// HTTP ingest goes through the same store commit, so it is forwarded
	// too (the comparison below covers it).
	now := time.Now().UnixMilli()
	ingestPoints(t, hub, "rw-http", []pointSample{
		{Name: "room_temperature_celsius", Labels: map[string]string{"room": "lab"}, Value: 21.5, TS: now - 2000},
		{Name: "room_temperature_celsius", Labels: map[string]string{"room": "lab"}, Value: 21.75, TS: now - 1000},
	})
	time.Sleep(max(0, 20*time.Second-time.Since(outage)))

	// VictoriaMetrics returns on the same port and data.
	startVM(t, vmBin, vmAddr, vmDir)
	time.Sleep(5 * time.Second)
	// Stop the load so that the hub's store and the queue settle.
	lg.kill(syscall.SIGTERM)
	testutil.WaitFor(t, 60*time.Second, "the queue drained", func() error {
		if p := hubMetric(t, hub, "sysmonstm_remote_write_pending_samples"); p != 0 {
			return fmt.Errorf("pending %v", p)
		}
		return nil
	})
	end := time.Now().Add(time.Second)
	span := fmt.Sprintf("%ds", int(end.Sub(start0).Seconds())+60)
	want := hubSamples(t, hub, end, span)
	got := vmSamples(t, vmAddr)
	var total int
	for k, ts := range want {
		total += len(ts)
		if !slices.Equal(ts, got[k]) {
			t.Errorf("series %s: hub has %d samples, VictoriaMetrics %d (first hub %v, vm %v)", k, len(ts), len(got[k]), head(ts), head(got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("VictoriaMetrics has a series the hub does not show: %s", k)
		}
	}
	if n := len(want[seriesKey(map[string]string{"__name__": "room_temperature_celsius", "machine": "rw-http", "room": "lab"})]); n != 2 {
		t.Errorf("the HTTP-ingested series has %d samples in the hub, want 2", n)
	}
	if total < 2000 {
		t.Fatalf("only %d samples compared", total)
	}
	t.Logf("%d series, %d samples: identical in the hub and VictoriaMetrics", len(want), total)
	if d := hubMetric(t, hub, "sysmonstm_remote_write_dropped_samples_total") + hubMetric(t, hub, "sysmonstm_remote_write_failed_samples_total"); d != 0 {
		t.Fatalf("dropped or failed samples: %v", d)
	}
}

func head(ts []int64) []int64 { return ts[:min(len(ts), 3)] }
