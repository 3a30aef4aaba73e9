package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestForgetMachineEndToEnd: a dead agent's machine raises its offline
// alert and a machine that only posts to /api/v1/ingest does not; an admin
// forgets the dead one with `sysmonstm machine forget`, which ends its
// alert and removes it from the list and the registry. A young hub exports
// what it has for from=-24h.
func TestForgetMachineEndToEnd(t *testing.T) {
	t.Parallel()
	const password = "e2e-forget-admin-pw"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
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
	testutil.WaitFor(t, 30*time.Second, "dead-1's offline alert", func() error {
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
	out, err := command(t, "machine", "forget", "dead-1", "--hub", "http://"+hub.http, "--token", api.token).CombinedOutput()
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
	out, err = command(t, "machine", "list", "--hub", "http://"+hub.http).CombinedOutput()
	if err != nil || strings.Contains(string(out), "dead-1") || !strings.Contains(string(out), "sensor") {
		t.Fatalf("machine list: %v\n%s", err, out)
	}

	// A hub younger than the range exports what it has.
	if pts := exportJSON(t, hub, "sensor", "e2e_temp_celsius", "-24h"); len(pts) != 1 || pts[0].Value != 21.5 {
		t.Fatalf("export from=-24h on a young hub: %+v", pts)
	}
}

// TestBrowserForgetMachine: the overview lists offline machines below live
// ones and drops a machine forgotten meanwhile; an offline machine's page
// offers "Forget machine" to admins only, and it works.
func TestBrowserForgetMachine(t *testing.T) {
	t.Parallel()
	const password = "forget-e2e-Pa55word"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	b := newBrowser(t, 1400, 900, 120*time.Second)
	hub := startHub(t, t.TempDir(), "", "", "--offline-after", "2s")
	base := "http://" + hub.http
	// Machines over HTTP ingest, so their health is what they send: b-live
	// keeps reporting a calm CPU, a-dead and a-gone report once.
	calm := []ingestSample{{Name: "cpu_usage_percent", Labels: map[string]string{"cpu": "total"}, Value: 10}}
	for _, id := range []string{"a-dead", "a-gone"} {
		if err := ingest(t, hub, id, calm); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			_ = ingest(t, hub, "b-live", calm)
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	testutil.WaitFor(t, 20*time.Second, "a-dead and a-gone offline, b-live online", func() error {
		for _, id := range []string{"a-dead", "a-gone", "b-live"} {
			var m machine
			if code := getJSON(t, base+"/api/machines/"+id, &m); code != 200 || m.Online != (id == "b-live") {
				return fmt.Errorf("%s: status %d, online %v", id, code, m.Online)
			}
		}
		return nil
	})

	// Anonymous (loopback) viewer: no forget button.
	b.run("open a-dead", chromedp.Navigate(base+"/machines/a-dead"))
	b.waitJS(10*time.Second, "offline state", `document.querySelector('.state') && document.querySelector('.state').textContent === "offline"`)
	time.Sleep(500 * time.Millisecond) // the principal is fetched once
	if !js[bool](b, `document.getElementById("machine-forget").hidden`) {
		t.Error("forget button shown to an anonymous viewer")
	}

	token := alertsLogin(t, hub, "admin", password)
	alertsBrowserLogin(b, base, "admin", password, "/")
	// Offline machines sort below the live one, whatever their ids.
	b.waitJS(10*time.Second, "three rows, live first", rowIDs+`.join(",") === "b-live,a-dead,a-gone"`)
	// Forgotten elsewhere: the row goes.
	alertsAPI(t, hub, token, http.MethodDelete, "/api/machines/a-gone", nil, nil)
	b.waitJS(10*time.Second, "a-gone dropped live", rowIDs+`.join(",") === "b-live,a-dead"`)

	b.run("open a-dead as admin", chromedp.Navigate(base+"/machines/a-dead"))
	b.waitJS(10*time.Second, "forget button", `!document.getElementById("machine-forget").hidden`)
	b.run("forget, confirm", chromedp.Click(chromedp.ID("machine-forget")), chromedp.Click(chromedp.ID("machine-forget")))
	b.waitJS(10*time.Second, "back on the overview without a-dead", `location.pathname === "/" && `+rowIDs+`.join(",") === "b-live"`)
	if code := getJSON(t, base+"/api/machines/a-dead", nil); code != http.StatusNotFound {
		t.Errorf("a-dead after forget: status %d", code)
	}
	b.checkClean()
}
