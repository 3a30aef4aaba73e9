//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

// TestTokenAndUserCommandsOnPostgres: `sysmonstm token …` and `user list`
// work on the PostgreSQL database given by --postgres (the data directory
// is not touched), and a bad URL is refused without echoing its password.
func TestTokenAndUserCommandsOnPostgres(t *testing.T) {
	dsn := dbtest.NewPostgres(t)
	dir := t.TempDir()
	sh := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := sh("token", "create", "--postgres", dsn, "--data-dir", dir, "--machine", "db-7", "--json")
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.ID == "" {
		t.Fatalf("token create: %d %s %s", code, out, errOut)
	}
	if out, errOut, code = sh("token", "revoke", tok.ID, "--postgres", dsn); code != 0 {
		t.Fatalf("token revoke: %d %s %s", code, out, errOut)
	}
	out, errOut, code = sh("token", "list", "--json", "--postgres", dsn)
	var list []struct {
		ID      string `json:"id"`
		Machine string `json:"machine"`
		Revoked bool   `json:"revoked"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].ID != tok.ID || !list[0].Revoked || list[0].Machine != "db-7" {
		t.Fatalf("token list: %d %s %s", code, out, errOut)
	}
	if out, errOut, code = sh("user", "list", "--postgres", dsn); code != 0 {
		t.Fatalf("user list: %d %s %s", code, out, errOut)
	}
	// The SQLite database in --data-dir was never created.
	if _, _, code = sh("token", "list", "--data-dir", dir); code == 0 {
		t.Fatal("token list --data-dir: a database was created there by the --postgres commands")
	}
	_, errOut, code = sh("token", "list", "--postgres", "postgres://u:hunter2@127.0.0.1:notaport/x")
	if code == 0 || !strings.Contains(errOut, "--postgres") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("bad --postgres: %d %s", code, errOut)
	}
}
