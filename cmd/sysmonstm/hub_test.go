//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
)

// TestHubErrorsNameFlags: hub.Config.Validate and hub.New name settings;
// the command shows them as the flags the user typed.
func TestHubErrorsNameFlags(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f := func(want string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{"hub", "--data-dir", t.TempDir(), "--listen-http", "127.0.0.1:0", "--listen-grpc", "127.0.0.1:0"}, args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 {
			t.Fatalf("%v: exit 0", args)
		}
		if !strings.Contains(errOut.String(), want) {
			t.Fatalf("%v: stderr %q lacks %q", args, errOut.String(), want)
		}
	}
	f("--offline-after 500ms: must be at least 1s", "--offline-after", "500ms")
	f("--forget-offline-after 2s: must be 0 (never) or at least --offline-after (15s)", "--forget-offline-after", "2s")
	f("--max-active-series 10: must be at least 1000", "--max-active-series", "10")
	f("--query-timeout 10ms: must be at least 100ms", "--query-timeout", "10ms")
	f("--session-max-age 2m0s: must be at least --session-ttl (1h0m0s)", "--session-ttl", "1h", "--session-max-age", "2m")
	f("--alerts-group-wait 1h0m0s: must be between 10ms and 10m", "--alerts-group-wait", "1h")
	f(`--external-url "x": want an absolute http(s) URL`, "--external-url", "x")
	f("--listen-http "+busy.Addr().String()+": cannot listen (is another hub running? change --listen-http)", "--listen-http", busy.Addr().String())
	f("--postgres postgres://u:xxxxx@h:nope/db: want postgres://", "--postgres", "postgres://u:hunter2@h:nope/db")
	f("--postgres postgres://postgres@127.0.0.1:1/x: cannot open the metadata database (is PostgreSQL up, and --postgres right?)", "--postgres", "postgres://postgres@127.0.0.1:1/x")
	f(`--edge-metrics: selector ",": want a metric name`, "--edge-url", "wss://edge.example.com/api/publish", "--edge-key", "0123456789abcdef0123", "--edge-metrics", ",")
}

// TestHubCheckConfig: --check-config takes settings from flags and the
// environment as a start would, says whether they are valid, and opens
// nothing (the data directory is not created, a busy port is no error).
func TestHubCheckConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir() + "/never"
	var out, errOut bytes.Buffer
	args := []string{"hub", "--check-config", "--data-dir", dir, "--listen-http", busy.Addr().String(), "--postgres", "postgres://u@127.0.0.1:1/x"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 || out.String() != "sysmonstm hub: settings valid\n" {
		t.Fatalf("valid settings: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("--check-config touched the data directory: %v", err)
	}
	out.Reset()
	errOut.Reset()
	t.Setenv("SYSMONSTM_OFFLINE_AFTER", "10ms")
	if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--offline-after 10ms: must be at least 1s") {
		t.Fatalf("bad setting from the environment: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"hub", "--check-config", "--no-such-flag"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "no-such-flag") {
		t.Fatalf("unknown flag: exit %d, stderr %q", code, errOut.String())
	}
}
