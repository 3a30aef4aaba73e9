//go:build !agentonly

package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
)

func TestRemoteWriteFlagsPairCredentialsWithThePrecedingURL(t *testing.T) {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := hubFlags(fs)
	err := fs.Parse([]string{
		"--remote-write", "http://a:8428/api/v1/write",
		"--remote-write", "https://b/api/v1/write", "--remote-write-bearer-token-file", "/tok",
		"--remote-write", "https://c/push", "--remote-write-basic-auth-file", "/basic",
		"--remote-write-max-queue-bytes", "1048576",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []remotewrite.Target{
		{URL: "http://a:8428/api/v1/write"},
		{URL: "https://b/api/v1/write", BearerTokenFile: "/tok"},
		{URL: "https://c/push", BasicAuthFile: "/basic"},
	}
	if len(c.RemoteWrite.Targets) != len(want) {
		t.Fatalf("targets %+v", c.RemoteWrite.Targets)
	}
	for i := range want {
		if c.RemoteWrite.Targets[i] != want[i] {
			t.Fatalf("target %d: %+v, want %+v", i, c.RemoteWrite.Targets[i], want[i])
		}
	}
	if c.RemoteWrite.MaxQueueBytes != 1<<20 {
		t.Fatalf("max queue bytes %d", c.RemoteWrite.MaxQueueBytes)
	}
}

func TestRemoteWriteFlagErrors(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "tok")
	_ = os.WriteFile(tok, []byte("t\n"), 0o600)
	f := func(want string, args ...string) {
		t.Helper()
		checkHubFlags(t, want, args...)
	}
	f("give --remote-write URL before it", "--remote-write-bearer-token-file", tok)
	f("given twice for --remote-write http://a/w", "--remote-write", "http://a/w", "--remote-write-bearer-token-file", tok, "--remote-write-bearer-token-file", tok)
	f(`--remote-write "ftp://a/w": want an absolute http(s) URL`, "--remote-write", "ftp://a/w")
	f("--remote-write http://a/w: given twice", "--remote-write", "http://a/w", "--remote-write", "http://u:p@a/w")
	f("--remote-write-bearer-token-file /nonexistent: cannot read it", "--remote-write", "http://a/w", "--remote-write-bearer-token-file", "/nonexistent")
	f("--remote-write-max-queue-bytes 10: must be at least 1048576", "--remote-write", "http://a/w", "--remote-write-max-queue-bytes", "10")
}

// checkHubFlags parses and validates hub flags: the error must contain
// want, or with want "" there must be none.
func checkHubFlags(t *testing.T, want string, args ...string) {
	t.Helper()
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := hubFlags(fs)
	c.DataDir = t.TempDir()
	err := fs.Parse(args)
	if err == nil {
		err = validateHub(c)
	}
	switch {
	case want == "" && err != nil:
		t.Fatalf("%v: %v", args, err)
	case want != "" && (err == nil || !strings.Contains(config.Flagged(err).Error(), want)):
		t.Fatalf("%v: error %v, want it to contain %q", args, err, want)
	}
}
