//go:build !linux

package store

// hostMemory is not known off Linux: 0.
func hostMemory() int64 { return 0 }
