package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// edgeKey is the publish key of the test edges.
const edgeKey = "e2e-edge-key-0123456789abcdef"

// edgeProc is a `sysmonstm edge` process.
type edgeProc struct {
	*proc
	http string
}

// startEdgeRelay runs `sysmonstm edge` on addr (port 0 when "": the
// address comes from its ready log line) and waits for /health.
func startEdgeRelay(t *testing.T, addr string, extra ...string) *edgeProc {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := append([]string{"edge", "--listen-http", addr, "--key", edgeKey, "--log-level", "debug"}, extra...)
	e := &edgeProc{proc: start(t, "edge", args...)}
	addr = waitLog(t, e.proc, 10*time.Second, edgeReady)[1]
	e.http = addr
	testutil.WaitFor(t, 10*time.Second, "edge up", func() error {
		code, err := httpGet("http://" + addr + "/health")
		if err == nil && code != 200 {
			err = fmt.Errorf("health %d", code)
		}
		return err
	})
	return e
}

// edgeHubFlags are the hub flags that forward to e.
func edgeHubFlags(e *edgeProc, extra ...string) []string {
	return append([]string{"--edge-url", "ws://" + e.http + "/api/publish", "--edge-key", edgeKey}, extra...)
}

// edgeMachine is a machine of the edge's GET /api/machines.
type edgeMachine struct {
	ID      string            `json:"id"`
	Labels  map[string]string `json:"labels"`
	Online  bool              `json:"online"`
	LastTs  int64             `json:"last_ts"`
	Metrics []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
	} `json:"metrics"`
}

func edgeMachines(t *testing.T, e *edgeProc) map[string]edgeMachine {
	t.Helper()
	var list []edgeMachine
	if code := getJSON(t, "http://"+e.http+"/api/machines", &list); code != 200 {
		t.Fatalf("edge /api/machines: %d", code)
	}
	out := map[string]edgeMachine{}
	for _, m := range list {
		out[m.ID] = m
	}
	return out
}

// promValue reads one sample of a Prometheus text endpoint; series is the
// name with its labels as printed, e.g. `x_total{reason="dial"}`.
func promValue(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, v)
			}
			return f
		}
	}
	t.Fatalf("%s has no %s", url, series)
	return 0
}

// rssMiB is a process's resident memory.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

var edgePublic = []string{"cpu_usage_percent", "filesystem_usage_percent", "load1", "load15", "load5", "memory_usage_percent", "network_receive_bytes_per_second", "network_transmit_bytes_per_second", "uptime_seconds"}

// TestEdgeRelay: a hub forwards to a real edge; the edge shows the public
// machines with only the public metrics and labels; killed and restarted,
// the edge gets the stream back without touching the hub.
func TestEdgeRelay(t *testing.T) {
	t.Parallel()
	e := startEdgeRelay(t, "")
	hub := startHub(t, t.TempDir(), "", "", edgeHubFlags(e, "--edge-machines", "*,!private-*", "--edge-machine-labels", "env")...)
	startAgent(t, hub, "pub-1", "--labels", "env=prod,owner=alice")
	startAgent(t, hub, "private-db", "--labels", "env=prod")
	waitOnline(t, hub, "pub-1", "private-db")

	testutil.WaitFor(t, 15*time.Second, "pub-1 at the edge with values", func() error {
		m, ok := edgeMachines(t, e)["pub-1"]
		if !ok || !m.Online || len(m.Metrics) < 5 {
			return fmt.Errorf("pub-1: %+v", m)
		}
		return nil
	})
	ms := edgeMachines(t, e)
	if _, ok := ms["private-db"]; ok || len(ms) != 1 {
		t.Fatalf("edge machines %v: private-db must stay on the hub", slices.Sorted(maps.Keys(ms)))
	}
	m := ms["pub-1"]
	if len(m.Labels) != 1 || m.Labels["env"] != "prod" {
		t.Errorf("labels %v, want env only", m.Labels)
	}
	for _, v := range m.Metrics {
		if !slices.Contains(edgePublic, v.Name) || v.Name == "cpu_usage_percent" && v.Labels["cpu"] != "total" {
			t.Errorf("private series %s%v at the edge", v.Name, v.Labels)
		}
	}
	var hubM machine
	getJSON(t, "http://"+hub.http+"/api/machines/pub-1", &hubM)
	t.Logf("pub-1: %d series on the hub, %d at the edge", len(hubM.Metrics), len(m.Metrics))
	if len(hubM.Metrics) <= len(m.Metrics) {
		t.Errorf("the hub has %d series, the edge %d: nothing filtered?", len(hubM.Metrics), len(m.Metrics))
	}
	hubMetrics := "http://" + hub.http + "/metrics"
	if v := promValue(t, hubMetrics, "sysmonstm_edge_connected"); v != 1 {
		t.Fatalf("sysmonstm_edge_connected = %v", v)
	}

	// The publish endpoint wants the key; browsers read only.
	code, _ := httpGet("http://" + e.http + "/api/publish")
	if code != 401 {
		t.Errorf("publish without key: %d", code)
	}

	// Kill the edge: the hub notices, keeps going, and reconnects (with a
	// fresh snapshot) to the edge started again on the same address.
	e.kill(syscall.SIGKILL)
	testutil.WaitFor(t, 15*time.Second, "hub sees the edge gone", func() error {
		if v := promValue(t, hubMetrics, "sysmonstm_edge_connected"); v != 0 {
			return fmt.Errorf("connected %v", v)
		}
		return nil
	})
	e = startEdgeRelay(t, e.http)
	restarted := time.Now()
	testutil.WaitFor(t, 45*time.Second, "pub-1 back at the restarted edge", func() error {
		m, ok := edgeMachines(t, e)["pub-1"]
		if !ok || !m.Online || len(m.Metrics) < 5 {
			return fmt.Errorf("pub-1: %+v", m)
		}
		return nil
	})
	t.Logf("stream back %s after the edge restarted", time.Since(restarted).Round(100*time.Millisecond))
	if v := promValue(t, hubMetrics, `sysmonstm_edge_reconnects_total{reason="closed"}`) + promValue(t, hubMetrics, `sysmonstm_edge_reconnects_total{reason="write"}`); v < 1 {
		t.Errorf("reconnects after the kill: %v", v)
	}
	if v := promValue(t, hubMetrics, "sysmonstm_edge_connected"); v != 1 {
		t.Errorf("sysmonstm_edge_connected = %v after the restart", v)
	}
	if _, ok := edgeMachines(t, e)["private-db"]; ok {
		t.Error("private-db at the restarted edge")
	}
}

// TestEdgeOverTLS: the edge serves HTTPS/wss from --tls-cert; the hub
// trusts its private CA with --edge-tls-ca, and refuses it without.
func TestEdgeOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeTestPKI(t, dir)
	edge := start(t, "tls edge", "edge", "--listen-http", "127.0.0.1:0", "--key", edgeKey, "--tls-cert", certFile, "--tls-key", keyFile)
	addr := waitLog(t, edge, 10*time.Second, edgeReady)[1]
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	machines := func() ([]edgeMachine, error) {
		resp, err := client.Get("https://" + addr + "/api/machines")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var list []edgeMachine
		return list, json.NewDecoder(resp.Body).Decode(&list)
	}
	hub := startHub(t, filepath.Join(dir, "data"), "", "", "--edge-url", "wss://"+addr+"/api/publish", "--edge-key", edgeKey, "--edge-tls-ca", caFile)
	startAgent(t, hub, "tls-1")
	testutil.WaitFor(t, 20*time.Second, "tls-1 at the edge over wss", func() error {
		list, err := machines()
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].ID != "tls-1" || len(list[0].Metrics) == 0 {
			return fmt.Errorf("machines %+v", list)
		}
		return nil
	})

	// Without the CA the hub does not trust the edge and sends nothing.
	other := startHub(t, filepath.Join(dir, "data2"), "", "", "--edge-url", "wss://"+addr+"/api/publish", "--edge-key", edgeKey)
	testutil.WaitFor(t, 15*time.Second, "untrusted edge refused", func() error {
		if v := promValue(t, "http://"+other.http+"/metrics", `sysmonstm_edge_reconnects_total{reason="dial"}`); v < 1 {
			return fmt.Errorf("dial failures %v", v)
		}
		return nil
	})
	if !strings.Contains(other.out.String(), "certificate") {
		t.Errorf("hub log does not name the certificate problem:\n%s", truncate(other.out.String()))
	}
}

// TestEdgeStartupErrors: no key, a short key, a clear-text URL to a remote
// host: each refuses to start with a precise message.
func TestEdgeStartupErrors(t *testing.T) {
	t.Parallel()
	f := func(want string, args ...string) {
		t.Helper()
		cmd := command(t, args...)
		cmd.Env = append(cmd.Env, "SYSMONSTM_KEY=", "SYSMONSTM_EDGE_KEY=")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%v started:\n%s", args, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("%v: output %q lacks %q", args, out, want)
		}
	}
	f("no publish key configured: set --key", "edge", "--listen-http", "127.0.0.1:0")
	f("--key is 9 characters, need at least 16", "edge", "--listen-http", "127.0.0.1:0", "--key", "too-short")
	f("--window 1s: must be between 30s and 24h", "edge", "--key", edgeKey, "--window", "1s")
	f("ws:// would send the key and the data in clear text", "hub", "--data-dir", t.TempDir(), "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0",
		"--edge-url", "ws://status.example.com/api/publish", "--edge-key", edgeKey)
	f("--edge-key: the edge's publish key is required", "hub", "--data-dir", t.TempDir(), "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0",
		"--edge-url", "wss://status.example.com/api/publish")
	f(`--edge-metrics: selector cpu{…}: missing }`, "hub", "--data-dir", t.TempDir(), "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0",
		"--edge-url", "wss://status.example.com/api/publish", "--edge-key", edgeKey, "--edge-metrics", `cpu{cpu="x"`)
}

// loadgenRun runs loadgen against hub and returns its JSON summary.
func loadgenRun(t *testing.T, hub *hubProc, machines, series int, d time.Duration) map[string]float64 {
	t.Helper()
	cmd := command(t, "loadgen", "--hub", hub.grpc, "--machines", strconv.Itoa(machines), "--series", strconv.Itoa(series),
		"--interval", "1s", "--duration", d.String(), "--log-level", "warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("loadgen summary %q: %v", lines[len(lines)-1], err)
	}
	nums := map[string]float64{}
	for k, v := range res {
		if f, ok := v.(float64); ok {
			nums[k] = f
		}
	}
	return nums
}

// viewer is one browser-like WebSocket client of the edge.
type viewer struct {
	last  atomic.Int64 // unix ns of the newest metrics message
	msgs  atomic.Int64
	ended atomic.Bool
}

// TestEdgeManyViewersAndAStuckOne: 200 viewers read the edge's stream and
// one never reads; the edge keeps every reader fresh, cuts the stuck one,
// stays small; the hub's ingest keeps up the same whether the edge has no
// viewers, 201, or is frozen (SIGSTOP) altogether.
func TestEdgeManyViewersAndAStuckOne(t *testing.T) {
	const machines, series, viewers = 50, 60, 200
	const phase = 10 * time.Second
	e := startEdgeRelay(t, "")
	hub := startHub(t, t.TempDir(), "", "", edgeHubFlags(e)...)
	hubMetrics := "http://" + hub.http + "/metrics"
	type result struct {
		name string
		sps  float64 // acked samples per second (loadgen)
		ack  float64 // acked / sent
	}
	run := func(name string) result {
		before := promValue(t, hubMetrics, "sysmonstm_ingested_samples_total")
		res := loadgenRun(t, hub, machines, series, phase)
		ingested := promValue(t, hubMetrics, "sysmonstm_ingested_samples_total") - before
		r := result{name, res["samples_per_second"], res["acked_samples"] / max(res["sent_samples"], 1)}
		t.Logf("%-28s loadgen %7.0f samples/s acked %.3f of sent; hub ingested %.0f samples", name, r.sps, r.ack, ingested)
		return r
	}
	base := run("edge, no viewers")
	testutil.WaitFor(t, 10*time.Second, "machines at the edge", func() error {
		if n := len(edgeMachines(t, e)); n != machines {
			return fmt.Errorf("%d machines", n)
		}
		return nil
	})

	// 200 readers and one client with a tiny receive buffer that never reads.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vs := make([]*viewer, viewers)
	var wg sync.WaitGroup
	for i := range vs {
		v := &viewer{}
		vs[i] = v
		c, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", nil)
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		c.SetReadLimit(64 << 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseNow()
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					v.ended.Store(true)
					return
				}
				if bytes.HasPrefix(b, []byte(`{"type":"metrics"`)) {
					v.last.Store(time.Now().UnixNano())
					v.msgs.Add(1)
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	stuck, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.CloseNow()
	stuckAt := time.Now()

	withViewers := run(fmt.Sprintf("edge, %d viewers + 1 stuck", viewers))
	now := time.Now()
	var stale, ended int
	var total int64
	for _, v := range vs {
		total += v.msgs.Load()
		if v.ended.Load() {
			ended++
		} else if now.Sub(time.Unix(0, v.last.Load())) > 3*time.Second {
			stale++
		}
	}
	var health map[string]any
	getJSON(t, "http://"+e.http+"/health", &health)
	rss := rssMiB(t, e.cmd.Process.Pid)
	t.Logf("viewers: %d metrics messages in all, %d stale, %d cut; edge /health %v; edge RSS %.1f MiB", total, stale, ended, health, rss)
	if stale > 0 || ended > 0 {
		t.Errorf("%d readers without fresh data, %d cut", stale, ended)
	}
	testutil.WaitFor(t, 20*time.Second, "the stuck viewer cut", func() error {
		getJSON(t, "http://"+e.http+"/health", &health)
		if health["dropped_clients"].(float64) < 1 {
			return fmt.Errorf("health %v", health)
		}
		return nil
	})
	t.Logf("stuck viewer cut %s after it connected", time.Since(stuckAt).Round(100*time.Millisecond))
	if rss > 150 {
		t.Errorf("edge RSS %.1f MiB with %d machines and %d viewers", rss, machines, viewers)
	}

	// Freeze the edge: the forwarder's writes stall, the hub does not.
	e.cmd.Process.Signal(syscall.SIGSTOP)
	frozen := run("edge frozen (SIGSTOP)")
	e.cmd.Process.Signal(syscall.SIGCONT)
	testutil.WaitFor(t, 45*time.Second, "fresh data at the edge after SIGCONT", func() error {
		for id, m := range edgeMachines(t, e) {
			if age := time.Since(time.UnixMilli(m.LastTs)); age > 5*time.Second {
				return fmt.Errorf("%s is %s old", id, age)
			}
		}
		return nil
	})

	for _, r := range []result{withViewers, frozen} {
		if r.sps < 0.85*base.sps || r.ack < 0.98 {
			t.Errorf("%s: %.0f samples/s (acked %.3f) vs %.0f with an idle edge", r.name, r.sps, r.ack, base.sps)
		}
	}
}
