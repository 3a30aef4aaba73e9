package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentErrorsNameFlags: the agent package names settings; the command
// shows them as the flags the user typed.
func TestAgentErrorsNameFlags(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"agent", "--push-socket", ""}, args...), &out, &errOut); code == 0 {
			t.Fatalf("%v: exit 0", args)
		}
		if !strings.Contains(errOut.String(), want) {
			t.Fatalf("%v: stderr %q lacks %q", args, errOut.String(), want)
		}
	}
	f("--buffer-mib 0: must be between 1 and 4096", "--buffer-mib", "0")
	f("--push-ttl -1s: must not be negative", "--push-ttl", "-1s")
	f("--smart-interval 0s: must be between 1s and 24h", "--smart-interval", "0")
	f("--disable-collectors: unknown collector nope", "--disable-collectors", "nope")
	f("--tls-ca: open ", "--tls-ca", filepath.Join(t.TempDir(), "missing.pem"))
	f("--tls-cert/--tls-key: ", "--tls-cert", "missing.pem", "--tls-key", "missing.pem")
	notSocket := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f("--push-socket: push socket "+notSocket+" exists and is not a socket", "--push-socket", notSocket)
	f(`invalid value "127.0.0.1:9100/metrics" for flag -scrape`, "--scrape", "127.0.0.1:9100/metrics")
	f("--scrape: scrape targets http://127.0.0.1:9100/metrics and http://127.0.0.1:9100/other have the same job", "--scrape", "http://127.0.0.1:9100/metrics", "--scrape", "http://127.0.0.1:9100/other")
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte("scrape:\n  - http://127.0.0.1:9100/metrics;job=node\n  - http://127.0.0.1:9187/metrics;interval=5s;timeout=5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f("scrape target \"http://127.0.0.1:9187/metrics;interval=5s;timeout=5s\": timeout 5s: must be positive and less than the interval", "--config", cfg)
}
