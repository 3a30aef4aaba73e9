package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// processEntry is one entry of "processes" in the API and the WS event.
type processEntry struct {
	PID        uint32  `json:"pid"`
	Name       string  `json:"name"`
	User       string  `json:"user"`
	Command    string  `json:"command"`
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   uint64  `json:"rss_bytes"`
	State      string  `json:"state"`
}

// TestProcessesSnapshot: a real agent's top-process list reaches the hub's
// API and WebSocket, with this test's own busy child in it.
func TestProcessesSnapshot(t *testing.T) {
	// A busy child: top by CPU on any host. Killed at the end.
	busy := exec.Command("sh", "-c", "while :; do :; done # sysmonstm-e2e-busy")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
	pid := uint32(busy.Process.Pid)

	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "procs", "--top-processes", "5", "--processes-interval", "1s", "--push-socket", "")

	c, ctx := dialHubWS(t, hub, 30*time.Second)

	var found processEntry
	testutil.WaitFor(t, 20*time.Second, "busy child in GET /api/machines/procs processes", func() error {
		var m struct {
			Processes   []processEntry `json:"processes"`
			ProcessesTs int64          `json:"processes_ts"`
		}
		if code := getJSON(t, "http://"+hub.http+"/api/machines/procs", &m); code != 200 {
			return fmt.Errorf("status %d", code)
		}
		if len(m.Processes) == 0 || len(m.Processes) > 10 || m.ProcessesTs == 0 {
			return fmt.Errorf("%d processes, ts %d", len(m.Processes), m.ProcessesTs)
		}
		for _, p := range m.Processes {
			if p.PID == pid && p.CPUPercent > 10 {
				found = p
				return nil
			}
		}
		return fmt.Errorf("pid %d not in %+v", pid, m.Processes)
	})
	if found.Name != "sh" || !strings.Contains(found.Command, "sysmonstm-e2e-busy") || found.User == "" ||
		found.RSSBytes == 0 || (found.State != "R" && found.State != "S") {
		t.Errorf("busy child entry %+v", found)
	}

	// The WebSocket delivers processes events (after the snapshot).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no processes event within 10s")
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Type      string          `json:"type"`
			Machine   json.RawMessage `json:"machine"` // an object in machine events
			TS        int64           `json:"ts"`
			Processes []processEntry  `json:"processes"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("WS message %q: %v", truncate(string(data)), err)
		}
		if ev.Type != "processes" {
			continue
		}
		if string(ev.Machine) != `"procs"` || ev.TS == 0 || len(ev.Processes) == 0 {
			t.Fatalf("processes event %s", truncate(string(data)))
		}
		break
	}

	// The state totals are stored series.
	testutil.WaitFor(t, 10*time.Second, "processes_state{state=running}", func() error {
		var m machine
		getJSON(t, "http://"+hub.http+"/api/machines/procs", &m)
		if v, ok := m.value("processes_state", "state", "running"); !ok || v < 1 {
			return fmt.Errorf("processes_state running = %v, %v", v, ok)
		}
		return nil
	})
}

// TestPushThroughAgent: `sysmonstm push` through a real agent's socket
// shows up in the machine's latest values and in history.
func TestPushThroughAgent(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "pusher", "--push-socket", sock, "--top-processes", "0")
	testutil.WaitFor(t, 10*time.Second, "push socket", func() error { _, err := os.Stat(sock); return err })

	out, err := command(t, "push", "--socket", sock, "backup_last_success_timestamp_seconds=1700000000", "job=nightly").CombinedOutput()
	if err != nil {
		t.Fatalf("push: %v: %s", err, out)
	}
	testutil.WaitFor(t, 10*time.Second, "pushed value in /api/machines/pusher", func() error {
		var m machine
		getJSON(t, "http://"+hub.http+"/api/machines/pusher", &m)
		if v, ok := m.value("backup_last_success_timestamp_seconds", "job", "nightly"); !ok || v != 1.7e9 {
			return fmt.Errorf("value %v, %v", v, ok)
		}
		return nil
	})
	from := time.Now().Add(-time.Minute).Unix()
	testutil.WaitFor(t, 10*time.Second, "pushed value in history", func() error {
		var h struct {
			Series []struct {
				Labels map[string]string `json:"labels"`
				Points [][2]float64      `json:"points"`
			} `json:"series"`
		}
		url := fmt.Sprintf("http://%s/api/machines/pusher/history?metric=backup_last_success_timestamp_seconds&from=%d", hub.http, from)
		if code := getJSON(t, url, &h); code != 200 {
			return fmt.Errorf("status %d", code)
		}
		if len(h.Series) != 1 || h.Series[0].Labels["job"] != "nightly" || len(h.Series[0].Points) < 2 || h.Series[0].Points[0][1] != 1.7e9 {
			return fmt.Errorf("history %+v", h)
		}
		return nil
	})

	// An invalid push is refused with the reason; a second agent on the
	// same explicit socket refuses to start.
	out, err = command(t, "push", "--socket", sock, "bad-name=1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "invalid metric name") {
		t.Errorf("invalid push: %v: %s", err, out)
	}
	second := startAgent(t, hub, "pusher2", "--push-socket", sock, "--top-processes", "0")
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatal("second agent on the same socket did not exit")
	}
	if !strings.Contains(second.out.String(), "another agent is listening") {
		t.Errorf("second agent output: %s", second.out.String())
	}
}

func TestPushWithoutAgent(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	out, err := command(t, "push", "--socket", sock, "x=1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no agent at "+sock+"; start one with `sysmonstm agent`") {
		t.Fatalf("push without agent: %v: %s", err, out)
	}
}
