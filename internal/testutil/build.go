package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RunWithBinary is a TestMain body for tests that run the sysmonstm
// command as a process: it builds pkg (e.g. "../cmd/sysmonstm", relative to
// the test's package folder) into a new temporary folder, stores the
// binary's path in *bin, runs the tests and removes the folder. It returns
// the exit code for os.Exit (1 when the build fails; its output goes to
// stderr).
func RunWithBinary(m *testing.M, pkg string, bin *string) int {
	dir, err := os.MkdirTemp("", "sysmonstm-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "sysmonstm")
	build := exec.Command("go", "build", "-o", *bin, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
		return 1
	}
	return m.Run()
}
