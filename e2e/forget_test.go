package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestForgetMachineEndToEnd: a dead agent's machine raises its offline
// alert and a machine that only posts to /api/v1/ingest does not; an admin
// forgets the dead one with `sysmonstm machine forget`, which ends its
// alert and removes it from the list and the registry. A young hub exports
// what it has for from=-24h.
func TestForgetMachineEndToEnd(t *testing.T) {
	const password = "e2e-forget-admin-pw"
	t.Setenv("SYSMONSTM_ADMIN_PASSWORD", password)
	dir := t.TempDir()
	hub := startHub(t, dir, "", "", "--offline-after", "1s", "--alerts-group-wait", "100ms")
	api := newAlertsClient(t, hub, password)
	api.must(201, "POST", "/api/rules", map[string]any{"name": "gone", "kind": "offline", "for": "2s", "severity": "critical"}, nil)

	if err := ingest(t, hub, "sensor", []ingestSample{{Name: "e2e_temp_celsius", Labels: map[string]string{"room": "lab"}, Value: 21.5}}); err != nil {
		t.Fatal(err)
	}
	agent := startAgent(t, hub, "dead-1")
	waitOnline(t, hub, "dead-1")
	agent.kill(syscall.SIGKILL)

	firing := func(machine string) []e2eAlert {
		var as []e2eAlert
		api.must(200, "GET", "/api/alerts?state=firing", nil, &as)
		var out []e2eAlert
		for _, a := range as {
			if a.Machine == machine {
				out = append(out, a)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "dead-1's offline alert", func() error {
		if len(firing("dead-1")) == 0 {
			return fmt.Errorf("not firing")
		}
		return nil
	})
	// sensor has been silent for longer than `for` too.
	if as := firing("sensor"); len(as) != 0 {
		t.Fatalf("HTTP-ingest-only machine raised %+v", as)
	}

	// Forgetting needs an admin.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+hub.http+"/api/machines/dead-1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous DELETE: status %d", resp.StatusCode)
	}
	out, err := exec.Command(binary, "machine", "forget", "dead-1", "--hub", "http://"+hub.http, "--token", api.token).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "forgot machine dead-1") {
		t.Fatalf("machine forget: %v\n%s", err, out)
	}

	var ms []machine
	getJSON(t, "http://"+hub.http+"/api/machines", &ms)
	if len(ms) != 1 || ms[0].ID != "sensor" || ms[0].Info["source"] != "http" {
		t.Fatalf("machines after forget: %+v", ms)
	}
	if code := getJSON(t, "http://"+hub.http+"/api/machines/dead-1", nil); code != http.StatusNotFound {
		t.Fatalf("GET forgotten machine: status %d", code)
	}
	if as := firing("dead-1"); len(as) != 0 {
		t.Fatalf("still firing after forget: %+v", as)
	}
	var resolved []struct {
		Machine        string `json:"machine"`
		ResolvedReason string `json:"resolved_reason"`
	}
	api.must(200, "GET", "/api/alerts?state=resolved", nil, &resolved)
	if len(resolved) != 1 || resolved[0].Machine != "dead-1" || resolved[0].ResolvedReason != "machine forgotten" {
		t.Fatalf("resolved alerts: %+v", resolved)
	}
	reg, err := os.ReadFile(filepath.Join(dir, "machines.json"))
	if err != nil || strings.Contains(string(reg), "dead-1") || !strings.Contains(string(reg), "sensor") {
		t.Fatalf("machines.json after forget (%v):\n%s", err, reg)
	}
	out, err = exec.Command(binary, "machine", "list", "--hub", "http://"+hub.http).CombinedOutput()
	if err != nil || strings.Contains(string(out), "dead-1") || !strings.Contains(string(out), "sensor") {
		t.Fatalf("machine list: %v\n%s", err, out)
	}

	// A hub younger than the range exports what it has.
	if pts := exportJSON(t, hub, "sensor", "e2e_temp_celsius", "-24h"); len(pts) != 1 || pts[0].Value != 21.5 {
		t.Fatalf("export from=-24h on a young hub: %+v", pts)
	}
}
