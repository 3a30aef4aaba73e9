// Package e2e holds process-level tests: they build the sysmonstm binary and
// run hubs and agents as real processes talking over loopback.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

var binary string

// minParallel is the least number of e2e tests run at once when -parallel
// is not given. The tests mostly wait on their child processes (a whole
// parallel run used about a quarter of two cores), so on a 2-core machine
// 4 at a time took the package from 195 s to 108 s.
const minParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < minParallel {
		_ = flag.Set("test.parallel", strconv.Itoa(minParallel))
	}
	os.Exit(testutil.RunWithBinary(m, "../cmd/sysmonstm", &binary))
}

// testEnvs holds, per test, the environment variables its processes start
// with on top of this process's own: the hub's agent token
// (prepareHubToken), an admin password. Tests run in parallel, so none of
// it goes through os.Setenv.
type testEnvs struct {
	mu   sync.Mutex          // protects vars
	vars map[string][]string // test name -> KEY=value, later ones win
}

var envs = testEnvs{vars: map[string][]string{}}

// setEnv sets key=value for the processes that t (and its subtests) start
// from now on.
func setEnv(t *testing.T, key, value string) {
	t.Helper()
	envs.mu.Lock()
	defer envs.mu.Unlock()
	name := t.Name()
	if _, ok := envs.vars[name]; !ok {
		t.Cleanup(func() {
			envs.mu.Lock()
			defer envs.mu.Unlock()
			delete(envs.vars, name)
		})
	}
	envs.vars[name] = append(envs.vars[name], key+"="+value)
}

// procEnv is the environment of a process t starts: this process's, then
// what setEnv gave t's parent tests, then t (exec uses the last value of a
// key).
func procEnv(t *testing.T) []string {
	env := os.Environ()
	envs.mu.Lock()
	defer envs.mu.Unlock()
	parts := strings.Split(t.Name(), "/")
	for i := range parts {
		env = append(env, envs.vars[strings.Join(parts[:i+1], "/")]...)
	}
	return env
}

// envValue is the value of key in the environment of a process t starts.
func envValue(t *testing.T, key string) string {
	env := procEnv(t)
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// command is exec.Command of the sysmonstm binary with t's environment.
func command(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = procEnv(t)
	return cmd
}

// commandContext is exec.CommandContext of the sysmonstm binary with t's
// environment.
func commandContext(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = procEnv(t)
	return cmd
}

// proc is a running sysmonstm process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the binary with args; the process is killed at test end and its
// output is logged if the test failed. Starting a hub first creates an agent
// token in its data directory (see prepareHubToken).
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	if len(args) > 0 && args[0] == "hub" {
		prepareHubToken(t, args)
	}
	p := &proc{t: t, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = command(t, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(p.cmd.Env, "SYSMONSTM_LOG_FORMAT=text")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// kill sends sig and waits for the process to end.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// hubReady matches the hub's "hub ready" log line (text format) and
// captures the addresses it serves on: the dashboard URL's host:port and
// the gRPC address.
var hubReady = regexp.MustCompile(`msg="hub ready" http=https?://([^/\s]+)/ grpc=(\S+)`)

// edgeReady matches the edge's "edge ready" log line and captures the
// host:port it serves on.
var edgeReady = regexp.MustCompile(`msg="edge ready" url=https?://([^/\s]+)/`)

// hubAddrs waits until p logs "hub ready" and returns the HTTP and gRPC
// addresses the hub bound: the harness starts hubs on port 0, so no two
// tests race for a free port.
func hubAddrs(t *testing.T, p *proc, timeout time.Duration) (httpAddr, grpcAddr string) {
	t.Helper()
	m := waitLog(t, p, timeout, hubReady)
	return m[1], m[2]
}

// waitLog waits until p's output matches re and returns the submatches;
// it fails at once if p exits first.
func waitLog(t *testing.T, p *proc, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	var gone error
	testutil.WaitFor(t, timeout, fmt.Sprintf("%s to log %s", p.name, re), func() error {
		if m = re.FindStringSubmatch(p.out.String()); m != nil {
			return nil
		}
		gone = p.exited()
		if gone != nil {
			return nil
		}
		return errors.New("not logged yet")
	})
	if m == nil {
		t.Fatalf("%s before logging %s", gone, re)
	}
	return m
}

// port is the port of a host:port address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// exited is an error once p has ended, nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v)", p.name, p.cmd.ProcessState)
	default:
		return nil
	}
}

// hubProc is a hub process and its addresses.
type hubProc struct {
	*proc
	http, grpc, dataDir string
	token               string // an agent token valid for any machine id
}

// prepareHubToken creates an agent token in the data directory of the hub
// about to start (with `sysmonstm token create`, before the hub opens the
// database) and puts it in SYSMONSTM_TOKEN for the processes the test
// starts from now on (setEnv), so agents and loadgen started by any means
// pass it. It also lifts the hub's
// per-token machine limit for loadgen's many machines. Tests that need
// other tokens pass --token explicitly (a flag beats the environment).
func prepareHubToken(t *testing.T, args []string) string {
	t.Helper()
	dataDir := ""
	for i, a := range args {
		if a == "--data-dir" && i+1 < len(args) {
			dataDir = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dataDir = v
		}
	}
	if dataDir == "" {
		t.Fatal("start hub: the harness needs an explicit --data-dir")
	}
	tok := createToken(t, dataDir, "--name", "e2e harness")
	setEnv(t, "SYSMONSTM_TOKEN", tok)
	setEnv(t, "SYSMONSTM_MAX_MACHINES_PER_TOKEN", "100000")
	return tok
}

// createToken runs `sysmonstm token create --data-dir dataDir extra…` and
// returns the token it printed.
func createToken(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	cmd := command(t, append([]string{"token", "create", "--data-dir", dataDir}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sysmonstm token create: %v\n%s", err, stderr.String())
	}
	tok := strings.TrimSpace(string(out))
	if !strings.HasPrefix(tok, "smt_") {
		t.Fatalf("sysmonstm token create printed %q", tok)
	}
	return tok
}

// startHub runs a hub on dataDir and waits until it is ready. An empty
// http or grpc address means 127.0.0.1:0: the hub picks a port and the
// harness reads it from the hub's ready log line.
func startHub(t *testing.T, dataDir string, http, grpc string, extra ...string) *hubProc {
	t.Helper()
	if http == "" {
		http = "127.0.0.1:0"
	}
	if grpc == "" {
		grpc = "127.0.0.1:0"
	}
	args := []string{"hub", "--listen-http", http, "--listen-grpc", grpc, "--data-dir", dataDir, "--log-level", "debug"}
	// SYSMONSTM_TEST_ENGINE=vm runs the hubs on the VM raw tier engine.
	if e := os.Getenv("SYSMONSTM_TEST_ENGINE"); e != "" {
		args = append(args, "--storage-engine", e)
	}
	args = append(args, extra...)
	h := &hubProc{proc: start(t, "hub", args...), dataDir: dataDir, token: envValue(t, "SYSMONSTM_TOKEN")}
	h.http, h.grpc = hubAddrs(t, h.proc, 20*time.Second)
	testutil.WaitFor(t, 20*time.Second, "hub ready", func() error {
		resp, err := httpGet("http://" + h.http + "/ready")
		if err != nil {
			return err
		}
		if resp != http200 {
			return fmt.Errorf("ready status %d", resp)
		}
		return nil
	})
	return h
}

// postIngest posts a JSON body to the hub's HTTP ingest with its agent
// token, as a script configured with the token would.
func (h *hubProc) postIngest(body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+h.http+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	return http.DefaultClient.Do(req)
}

const http200 = 200

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// startAgent starts an agent streaming to hub as id, with the hub's agent
// token unless extra passes --token.
func startAgent(t *testing.T, hub *hubProc, id string, extra ...string) *proc {
	t.Helper()
	args := []string{"agent", "--hub", hub.grpc, "--machine-id", id, "--interval", "250ms", "--log-level", "debug"}
	if !hasFlag(extra, "--token") {
		args = append(args, "--token", hub.token)
	}
	args = append(args, extra...)
	return start(t, "agent "+id, args...)
}

// hasFlag reports whether args set the flag name ("--token").
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// getJSON fetches url into v and returns the status code.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: decode %q: %v", url, truncate(string(body)), err)
		}
	}
	return resp.StatusCode
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// machine is the subset of GET /api/machines/{id} the tests read.
type machine struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Labels   map[string]string `json:"labels"`
	Online   bool              `json:"online"`
	LastSeen string            `json:"last_seen"`
	Info     map[string]any    `json:"info"`
	Metrics  []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
	} `json:"metrics"`
}

func (m *machine) value(name string, labels ...string) (float64, bool) {
outer:
	for _, v := range m.Metrics {
		if v.Name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if v.Labels[labels[i]] != labels[i+1] {
				continue outer
			}
		}
		return v.Value, true
	}
	return 0, false
}

// exportPoint is one row of GET /api/export?format=json.
type exportPoint struct {
	Timestamp string            `json:"timestamp"`
	Machine   string            `json:"machine"`
	Metric    string            `json:"metric"`
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value"`
}

func exportJSON(t *testing.T, hub *hubProc, machine, metric, from string) []exportPoint {
	t.Helper()
	var pts []exportPoint
	url := fmt.Sprintf("http://%s/api/export?machine=%s&metric=%s&from=%s&format=json", hub.http, machine, metric, from)
	if code := getJSON(t, url, &pts); code != 200 {
		t.Fatalf("export %s: status %d", url, code)
	}
	return pts
}

func containsAll(s string, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("missing %q", sub)
		}
	}
	return nil
}

// dialHubWS opens the hub's /ws with a generous read limit (the snapshot of
// many machines is large). The connection and ctx end with the test.
func dialHubWS(t *testing.T, hub *hubProc, timeout time.Duration) (*websocket.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, "ws://"+hub.http+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(16 << 20)
	return c, ctx
}
