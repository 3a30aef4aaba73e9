//go:build !agentonly

package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHistoryFlagErrors(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "tok")
	_ = os.WriteFile(tok, []byte("t\n"), 0o600)
	f := func(want string, args ...string) {
		t.Helper()
		checkHubFlags(t, want, args...)
	}
	f("", "--history-url", "https://u:p@vm:8428/prefix", "--history-bearer-token-file", tok)
	f(`--history-url "ftp://vm": want an absolute http(s) URL`, "--history-url", "ftp://u:secret@vm")
	f("--history-bearer-token-file and --history-basic-auth-file need --history-url", "--history-bearer-token-file", tok)
	f("--history-basic-auth-file /nonexistent: cannot read it", "--history-url", "http://vm", "--history-basic-auth-file", "/nonexistent")
	f("not both", "--history-url", "http://vm", "--history-basic-auth-file", tok, "--history-bearer-token-file", tok)
}
