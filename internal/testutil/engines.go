package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// NeedBinary returns the path of an engine's program (victoria-metrics,
// prometheus…). Without it the test skips, saying how to install it
// (install, e.g. "apt-get install victoria-metrics"), except in CI
// (CI=true), where it fails.
func NeedBinary(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (%s): %v", name, install, err)
		}
		t.Skipf("%s not installed (%s)", name, install)
	}
	return p
}
