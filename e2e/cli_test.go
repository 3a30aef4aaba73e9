package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestLoadgenAndExportCLI drives the hub with `sysmonstm loadgen` over the
// real protocol, checks its JSON summary line, and reads the data back with
// `sysmonstm export`.
func TestLoadgenAndExportCLI(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	out, err := command(t, "loadgen", "--hub", hub.grpc, "--machines", "5", "--series", "40",
		"--interval", "200ms", "--duration", "3s", "--log-level", "warn").Output()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct {
		Sent      int64   `json:"sent_samples"`
		Acked     int64   `json:"acked_samples"`
		DurationS float64 `json:"duration_s"`
		PerSecond float64 `json:"samples_per_second"`
		Machines  int     `json:"machines"`
		Errors    int64   `json:"errors"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line is not the JSON summary: %q: %v", lines[len(lines)-1], err)
	}
	// 5 machines × 40 series × ~15 ticks.
	if sum.Sent < 2000 || sum.Acked != sum.Sent || sum.Machines != 5 || sum.Errors != 0 || sum.PerSecond <= 0 || sum.DurationS < 2.5 {
		t.Fatalf("summary %+v", sum)
	}

	var list []machine
	getJSON(t, "http://"+hub.http+"/api/machines", &list)
	if len(list) != 5 {
		t.Fatalf("%d machines after loadgen, want 5", len(list))
	}
	id := list[0].ID

	cmd := command(t, "export", "--url", "http://"+hub.http, "--machine", id, "--metric", "load1", "--from", "-5m", "--format", "csv")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	csvOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("export: %v: %s", err, stderr.String())
	}
	rows, err := csv.NewReader(bytes.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatalf("export CSV: %v", err)
	}
	if strings.Join(rows[0], ",") != "timestamp,machine,metric,labels,value" || len(rows) < 10 {
		t.Fatalf("export rows: %d, header %v", len(rows), rows[0])
	}
	for _, r := range rows[1:] {
		if r[1] != id || r[2] != "load1" {
			t.Fatalf("row %v", r)
		}
		if _, err := time.Parse(time.RFC3339, r[0]); err != nil {
			t.Fatalf("timestamp %q: %v", r[0], err)
		}
	}

	// The CLI's errors say what to do.
	cmd = command(t, "export", "--url", "http://"+hub.http, "--machine", "no-such-machine")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "404") {
		t.Fatalf("unknown machine: %v %s", err, msg)
	}
	if out, err := command(t, "export").CombinedOutput(); err == nil || !strings.Contains(string(out), "--machine is required") {
		t.Fatalf("no machine: %v %s", err, out)
	}
}

// TestLoadgenFailsLoudly: a run whose machines the hub refuses exits
// non-zero, says why on stderr and still ends stdout with the summary.
func TestLoadgenFailsLoudly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hub := startHub(t, dir, "", "")
	bound := createToken(t, dir, "--machine", "some-other-host")
	cmd := command(t, "loadgen", "--hub", hub.grpc, "--token", bound, "--machines", "3", "--series", "20",
		"--interval", "200ms", "--duration", "1s", "--log-level", "error")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("loadgen exited 0 with every machine refused\nstdout %s\nstderr %s", out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "failed streams or requests") || !strings.Contains(stderr.String(), `bound to "some-other-host"`) {
		t.Errorf("stderr does not say why:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct {
		Errors  int64 `json:"errors"`
		Reasons []struct {
			Error string `json:"error"`
			Count int64  `json:"count"`
		} `json:"error_reasons"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Errors < 3 || len(sum.Reasons) == 0 {
		t.Fatalf("last line %q: %+v, %v", lines[len(lines)-1], sum, err)
	}
}

// TestHubStopsPromptlyWithAgentConnected: Ctrl-C on a hub that an agent
// streams to ends it within seconds (it used to wait 10 s for the agent's
// stream, which never ends by itself), and it says so.
func TestHubStopsPromptlyWithAgentConnected(t *testing.T) {
	hub := startHub(t, t.TempDir(), "", "")
	startAgent(t, hub, "stayer")
	testutil.WaitFor(t, 15*time.Second, "agent online", func() error {
		var m machine
		if code := getJSON(t, "http://"+hub.http+"/api/machines/stayer", &m); code != 200 || !m.Online {
			return fmt.Errorf("status %d, online %v", code, m.Online)
		}
		return nil
	})
	start := time.Now()
	hub.kill(syscall.SIGINT)
	took := time.Since(start)
	t.Logf("hub exited %s after SIGINT", took)
	if took > 5*time.Second {
		t.Errorf("hub took %s to stop after SIGINT with an agent connected, want under 5s", took)
	}
	if code := hub.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("hub exit status %d after SIGINT, want 0", code)
	}
	if !strings.Contains(hub.out.String(), "hub shutting down") {
		t.Errorf("hub did not log that it is shutting down:\n%s", hub.out.String())
	}
}

// TestHubRefusesALostDatabase: a hub whose sysmonstm.db was deleted next to
// its stored data refuses to start (instead of a new admin and no tokens or
// rules), changes nothing, and says how to go on; `token create` refuses
// too. An empty file is the explicit way to start afresh, history kept.
func TestHubRefusesALostDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hub := startHub(t, dir, "", "")
	startAgent(t, hub, "keeper")
	testutil.WaitFor(t, 15*time.Second, "agent online", func() error {
		var m machine
		if code := getJSON(t, "http://"+hub.http+"/api/machines/keeper", &m); code != 200 || !m.Online {
			return fmt.Errorf("status %d, online %v", code, m.Online)
		}
		return nil
	})
	hub.kill(syscall.SIGTERM)
	dbFile := filepath.Join(dir, "sysmonstm.db")
	for _, f := range []string{dbFile, dbFile + "-wal", dbFile + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	before := listDir(t, dir)

	for _, args := range [][]string{
		{"hub", "--data-dir", dir, "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0"},
		{"token", "create", "--data-dir", dir},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := commandContext(ctx, t, args...).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Fatalf("sysmonstm %s started without its database (%v):\n%s", args[0], err, out)
		}
		for _, want := range []string{"metadata database missing", "Restore sysmonstm.db from a backup", "touch " + dbFile} {
			if !strings.Contains(string(out), want) {
				t.Errorf("sysmonstm %s: output lacks %q:\n%s", args[0], want, out)
			}
		}
	}
	if after := listDir(t, dir); after != before {
		t.Errorf("the refused starts changed the data directory:\nbefore %s\nafter  %s", before, after)
	}

	if err := os.WriteFile(dbFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hub = startHub(t, dir, "", "")
	var list []machine
	getJSON(t, "http://"+hub.http+"/api/machines", &list)
	if len(list) != 1 || list[0].ID != "keeper" {
		t.Errorf("machines after starting afresh: %+v, want the known machine kept", list)
	}
}

// listDir names every file under dir with its size.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d ", strings.TrimPrefix(p, dir), info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLoadgenWatchMeasuresLiveLatency runs `sysmonstm loadgen --watch` against
// a real hub: the summary reports the sample → WebSocket latency of every
// metrics event after the warm-up (5 machines × 10 ticks a second).
func TestLoadgenWatchMeasuresLiveLatency(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "")
	out, err := command(t, "loadgen", "--hub", hub.grpc, "--machines", "5", "--series", "40",
		"--interval", "100ms", "--duration", "4s", "--watch", "ws://"+hub.http+"/ws", "--watch-warmup", "1s",
		"--log-level", "warn").Output()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct {
		Errors int64 `json:"errors"`
		Live   *struct {
			Events int64   `json:"events"`
			P50    float64 `json:"p50_ms"`
			P99    float64 `json:"p99_ms"`
			Max    float64 `json:"max_ms"`
			Err    string  `json:"error"`
		} `json:"live_latency"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line is not the JSON summary: %q: %v", lines[len(lines)-1], err)
	}
	l := sum.Live
	// 3 measured seconds × 10 ticks × 5 machines = 150 events; allow for a
	// busy machine. Latency is not asserted (timing), only its sense.
	if sum.Errors != 0 || l == nil || l.Err != "" || l.Events < 100 || l.Events > 200 || l.P50 < 0 || l.P50 > l.P99 || l.P99 > l.Max {
		t.Fatalf("summary %s", lines[len(lines)-1])
	}
	t.Logf("sample → WebSocket latency: %d events, p50 %.2f ms, p99 %.2f ms, max %.2f ms", l.Events, l.P50, l.P99, l.Max)

	if _, err := command(t, "loadgen", "--hub", hub.grpc, "--watch", "http://"+hub.http+"/ws").Output(); err == nil {
		t.Fatal("loadgen --watch http://… was accepted")
	}
}
