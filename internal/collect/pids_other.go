//go:build !linux

package collect

import "os"

// countPIDs counts the process directories of procPath (portable fallback).
func countPIDs(procPath string, _ *[]byte) (int, error) {
	entries, err := os.ReadDir(procPath)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && isPID([]byte(e.Name())) {
			n++
		}
	}
	return n, nil
}
