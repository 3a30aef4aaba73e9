package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildBinary builds the sysmonstm command (pkg, e.g. "../cmd/sysmonstm",
// relative to the test's package folder) into a new temporary folder, for
// tests that run it as a process. It returns the binary's path and a
// function that removes the folder. Meant for TestMain, so it returns an
// error instead of failing a test; the build's output goes to stderr.
func BuildBinary(pkg string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "sysmonstm-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "sysmonstm")
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build %s: %w", pkg, err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}
