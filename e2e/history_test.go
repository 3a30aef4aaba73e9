package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestHistoryFromTSDB: `hub --remote-write TSDB --history-url TSDB` with
// an agent, for VictoriaMetrics and Prometheus. The dashboard's history
// API, export and the PromQL API answer the agent's series from the TSDB;
// when VictoriaMetrics stops they answer 503 while the live view goes on,
// which also shows where they read.
func TestHistoryFromTSDB(t *testing.T) {
	t.Run("victoria-metrics", func(t *testing.T) {
		vmBin := needVictoriaMetrics(t)
		vmAddr := freeAddr(t)
		// Without -search.latencyOffset=0s VictoriaMetrics hides its newest
		// 30 s from range queries (docs/operations.md).
		vm := startVM(t, vmBin, vmAddr, t.TempDir(), "-search.latencyOffset", "0s")
		hub := historyThroughHub(t, "http://"+vmAddr, "/api/v1/write", func() { _, _ = httpGet("http://" + vmAddr + "/internal/force_flush") })

		// VictoriaMetrics stops: history answers 503 quickly, live goes on.
		vm.kill(syscall.SIGKILL)
		began := time.Now()
		resp, err := httpGetBody("http://" + hub.http + "/api/machines/alpha/history?metric=load1&from=-2m")
		if err != nil || resp.code != 503 || !strings.Contains(resp.body, "unreachable") {
			t.Errorf("history with VictoriaMetrics down: %v %+v", err, resp)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("history with VictoriaMetrics down answered after %s", d)
		}
		var m machine
		if code := getJSON(t, "http://"+hub.http+"/api/machines/alpha", &m); code != 200 || !m.Online {
			t.Errorf("live view with VictoriaMetrics down: status %d, online %v", code, m.Online)
		}
	})
	t.Run("prometheus", func(t *testing.T) {
		prom, _ := needPrometheus(t)
		dir := t.TempDir()
		cfg := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		base := runPrometheus(t, prom, cfg, filepath.Join(dir, "data"), "--web.enable-remote-write-receiver")
		historyThroughHub(t, base, "/api/v1/write", func() {})
	})
}

// historyThroughHub starts a hub writing to and reading from the TSDB at
// base, and an agent, and checks history, export and PromQL through the
// hub; flush makes written samples readable.
func historyThroughHub(t *testing.T, base, writePath string, flush func()) *hubProc {
	t.Helper()
	hub := startHub(t, t.TempDir(), "", "", "--remote-write", base+writePath,
		"--history-url", base, "--history-timeout", "2s")
	startAgent(t, hub, "alpha")

	var hist struct {
		Tier   string `json:"tier"`
		Series []struct {
			Labels map[string]string `json:"labels"`
			Points [][2]float64      `json:"points"`
			Max    [][2]float64      `json:"max"`
		} `json:"series"`
	}
	histURL := "http://" + hub.http + "/api/machines/alpha/history?metric=load1&from=-2m&step=1s"
	testutil.WaitFor(t, 30*time.Second, "history points from the TSDB", func() error {
		flush()
		if code := getJSON(t, histURL, &hist); code != 200 {
			return fmt.Errorf("status %d", code)
		}
		if len(hist.Series) != 1 || len(hist.Series[0].Points) < 3 {
			return fmt.Errorf("history %+v", hist)
		}
		return nil
	})
	if s := hist.Series[0]; s.Labels["machine"] != "alpha" || hist.Tier != "raw" {
		t.Errorf("history: tier %s, labels %v", hist.Tier, s.Labels)
	}
	// 250 ms samples in 1 s buckets: min and max bands come with them.
	var wide struct {
		Series []struct {
			Max [][2]float64 `json:"max"`
		} `json:"series"`
	}
	// The TSDB may still be taking the newest samples (as for the points
	// above): wait for a bucket with its band.
	testutil.WaitFor(t, 30*time.Second, "10 s buckets with max bands", func() error {
		flush()
		if code := getJSON(t, "http://"+hub.http+"/api/machines/alpha/history?metric=load1&from=-2m&step=10s", &wide); code != 200 || len(wide.Series) == 0 || len(wide.Series[0].Max) == 0 {
			return fmt.Errorf("10 s buckets: status %d, %+v", code, wide)
		}
		return nil
	})

	rows := exportJSON(t, hub, "alpha", "load1", "-2m")
	if len(rows) < 4 {
		t.Fatalf("export: %d rows", len(rows))
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Timestamp <= rows[i-1].Timestamp {
			t.Fatalf("export rows out of order or repeated: %v then %v", rows[i-1], rows[i])
		}
	}

	var q struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if code := getJSON(t, "http://"+hub.http+"/api/v1/query?query="+url.QueryEscape(`count by (machine) (load1)`), &q); code != 200 ||
		len(q.Data.Result) != 1 || q.Data.Result[0].Metric["machine"] != "alpha" {
		t.Errorf("PromQL through the hub: %d %+v", code, q)
	}

	return hub
}

// answer is a response's status and body.
type answer struct {
	code int
	body string
}

func httpGetBody(u string) (answer, error) {
	resp, err := http.Get(u)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{resp.StatusCode, string(b)}, err
}
