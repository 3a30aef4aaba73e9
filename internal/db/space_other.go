//go:build !linux

package db

// freeBytes is not implemented off Linux: an SQLite I/O error is then
// reported as it is.
func freeBytes(string) (uint64, bool) { return 0, false }
