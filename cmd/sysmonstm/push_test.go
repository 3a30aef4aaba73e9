package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePushArgs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m, err := parsePushArgs([]string{"backup_last_success_timestamp_seconds=now", "job=nightly"}, now)
	if err != nil || m.Name != "backup_last_success_timestamp_seconds" || m.Value != 1_700_000_000 || m.Labels["job"] != "nightly" {
		t.Fatalf("%+v, %v", m, err)
	}
	for _, bad := range [][]string{nil, {"x"}, {"=1"}, {"x=abc"}, {"x=1", "job"}, {"x=1", "a=1", "a=2"}} {
		if _, err := parsePushArgs(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitPushArgs(t *testing.T) {
	flags, values := splitPushArgs([]string{"x=1", "--socket", "/s", "job=a", "--log-level=debug", "--", "-y=2"})
	if strings.Join(flags, " ") != "--socket /s --log-level=debug" || strings.Join(values, " ") != "x=1 job=a -y=2" {
		t.Fatalf("flags %q values %q", flags, values)
	}
}

func TestPushWithoutAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"push", "--socket", sock, "x=1"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if want := "no agent at " + sock + "; start one with `sysmonstm agent`"; !strings.Contains(errOut.String(), want) {
		t.Fatalf("stderr %q lacks %q", errOut.String(), want)
	}
}
