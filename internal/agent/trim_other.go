//go:build !linux

package agent

// TrimExecutablePages does nothing outside Linux.
func TrimExecutablePages() (int, error) { return 0, nil }
