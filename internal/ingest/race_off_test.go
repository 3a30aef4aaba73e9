//go:build !race

package ingest

// raceEnabled: the race detector instruments allocations, so counts differ.
const raceEnabled = false
