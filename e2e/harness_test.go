// Package e2e holds process-level tests: they build the sysmonstm binary and
// run hubs and agents as real processes talking over loopback.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sysmonstm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sysmonstm")
	build := exec.Command("go", "build", "-o", binary, "../cmd/sysmonstm")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sysmonstm:", err)
		os.Exit(1)
	}
	http.DefaultTransport = ingestAuth{http.DefaultTransport}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ingestAuth adds the current hub's agent token (SYSMONSTM_TOKEN, see
// prepareHubToken) to HTTP ingest requests that carry no Authorization
// header, as a script configured with the token would.
type ingestAuth struct{ next http.RoundTripper }

func (a ingestAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/api/v1/ingest" && r.Header.Get("Authorization") == "" {
		if tok := os.Getenv("SYSMONSTM_TOKEN"); tok != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return a.next.RoundTrip(r)
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
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "SYSMONSTM_LOG_FORMAT=text")
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

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// hubProc is a hub process and its addresses.
type hubProc struct {
	*proc
	http, grpc, dataDir string
	token               string // an agent token valid for any machine id
}

// prepareHubToken creates an agent token in the data directory of the hub
// about to start (with `sysmonstm token create`, before the hub opens the
// database) and puts it in SYSMONSTM_TOKEN for the rest of the test, so
// agents and loadgen started by any means pass it. It also lifts the hub's
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
	t.Setenv("SYSMONSTM_TOKEN", tok)
	t.Setenv("SYSMONSTM_MAX_MACHINES_PER_TOKEN", "100000")
	return tok
}

// createToken runs `sysmonstm token create --data-dir dataDir extra…` and
// returns the token it printed.
func createToken(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"token", "create", "--data-dir", dataDir}, extra...)...)
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

func startHub(t *testing.T, dataDir string, http, grpc string, extra ...string) *hubProc {
	t.Helper()
	if http == "" {
		http = freePort(t)
	}
	if grpc == "" {
		grpc = freePort(t)
	}
	args := append([]string{"hub", "--listen-http", http, "--listen-grpc", grpc, "--data-dir", dataDir, "--log-level", "debug"}, extra...)
	h := &hubProc{proc: start(t, "hub", args...), http: http, grpc: grpc, dataDir: dataDir, token: os.Getenv("SYSMONSTM_TOKEN")}
	waitFor(t, 20*time.Second, "hub ready", func() error {
		resp, err := httpGet("http://" + http + "/ready")
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

// waitFor polls f until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
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
