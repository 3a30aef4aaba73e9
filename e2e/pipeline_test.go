package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestHubWithTwoAgents: machines appear online with the core metrics, history
// has points, the CSV export parses, and the WebSocket sends a snapshot then
// live updates.
func TestHubWithTwoAgents(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "alpha", "--labels", "env=test,role=web")
	startAgent(t, hub, "beta")

	core := []string{"cpu_usage_percent", "load1", "load5", "load15", "memory_total_bytes", "memory_used_bytes",
		"memory_available_bytes", "memory_usage_percent", "swap_total_bytes", "swap_used_bytes",
		"filesystem_size_bytes", "filesystem_used_bytes", "filesystem_usage_percent",
		"processes_total", "uptime_seconds"}
	for _, id := range []string{"alpha", "beta"} {
		testutil.WaitFor(t, 20*time.Second, id+" online with core metrics", func() error {
			var m machine
			if code := getJSON(t, "http://"+hub.http+"/api/machines/"+id, &m); code != 200 {
				return fmt.Errorf("status %d", code)
			}
			if !m.Online {
				return fmt.Errorf("%s not online", id)
			}
			for _, name := range core {
				if _, ok := m.value(name); !ok {
					return fmt.Errorf("%s has no %s yet", id, name)
				}
			}
			return nil
		})
	}

	var alpha machine
	getJSON(t, "http://"+hub.http+"/api/machines/alpha", &alpha)
	if alpha.Labels["env"] != "test" || alpha.Labels["role"] != "web" {
		t.Errorf("labels = %v", alpha.Labels)
	}
	if alpha.Info["kernel_version"] == "" || alpha.Info["cpu_threads"] == nil {
		t.Errorf("host info incomplete: %v", alpha.Info)
	}
	if v, _ := alpha.value("cpu_usage_percent", "cpu", "total"); v < 0 || v > 100 {
		t.Errorf("cpu total %v out of range", v)
	}
	used, _ := alpha.value("memory_used_bytes")
	total, _ := alpha.value("memory_total_bytes")
	if used <= 0 || used > total {
		t.Errorf("memory used %v, total %v", used, total)
	}
	if _, ok := alpha.value("filesystem_usage_percent", "mountpoint", "/"); !ok {
		t.Errorf("no filesystem_usage_percent for /")
	}

	var list []machine
	getJSON(t, "http://"+hub.http+"/api/machines", &list)
	if len(list) != 2 {
		t.Fatalf("GET /api/machines: %d machines, want 2", len(list))
	}

	// History: the raw tier has points for the last minute.
	var hist struct {
		Metric string `json:"metric"`
		Series []struct {
			Labels map[string]string `json:"labels"`
			Points [][2]float64      `json:"points"`
		} `json:"series"`
	}
	testutil.WaitFor(t, 10*time.Second, "history points", func() error {
		url := "http://" + hub.http + "/api/machines/alpha/history?metric=load1&from=-1m"
		if code := getJSON(t, url, &hist); code != 200 {
			return fmt.Errorf("status %d", code)
		}
		if len(hist.Series) != 1 || len(hist.Series[0].Points) < 3 {
			return fmt.Errorf("history %+v", hist)
		}
		return nil
	})
	if hist.Series[0].Labels["machine"] != "alpha" {
		t.Errorf("history labels %v", hist.Series[0].Labels)
	}
	if code := getJSON(t, "http://"+hub.http+"/api/machines/nope/history?metric=load1", nil); code != 404 {
		t.Errorf("unknown machine history: status %d, want 404", code)
	}

	// Export CSV parses with the documented header.
	resp, err := http.Get("http://" + hub.http + "/api/export?machine=alpha&metric=cpu_usage_percent&from=-1m&format=csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatalf("export CSV does not parse: %v", err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != "timestamp,machine,metric,labels,value" {
		t.Fatalf("export CSV header/rows: %v", rows[:min(len(rows), 3)])
	}
	if _, err := time.Parse(time.RFC3339, rows[1][0]); err != nil || rows[1][1] != "alpha" || rows[1][2] != "cpu_usage_percent" {
		t.Errorf("export row %v (%v)", rows[1], err)
	}

	// WebSocket: snapshot, then live metrics.
	c, ctx := dialHubWS(t, hub, 15*time.Second)
	var first struct {
		Type     string    `json:"type"`
		Machines []machine `json:"machines"`
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &first); err != nil || first.Type != "snapshot" || len(first.Machines) != 2 {
		t.Fatalf("first WS message: %s (%v)", truncate(string(data)), err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"subscribe":["beta"]}`)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Type    string `json:"type"`
			Machine string `json:"machine"`
			TS      int64  `json:"ts"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("WS message %q: %v", truncate(string(data)), err)
		}
		if ev.Type == "metrics" {
			seen[ev.Machine]++
		}
	}
	if seen["beta"] < 3 {
		t.Errorf("live metrics for beta: %d in 3s, want ≥ 3 (interval 250ms)", seen["beta"])
	}
	// The subscription was sent after the snapshot; allow what was in flight.
	if seen["alpha"] > 2 {
		t.Errorf("subscribe [beta] still delivered %d alpha messages", seen["alpha"])
	}

	// Self-telemetry.
	resp, err = http.Get("http://" + hub.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = fmt.Fprint(body, readAll(resp))
	if err := containsAll(body.String(), "sysmonstm_ingested_samples_total", "sysmonstm_connected_agents",
		"sysmonstm_websocket_clients", "sysmonstm_dropped_samples_total"); err != nil {
		t.Errorf("/metrics: %v", err)
	}
}
