//go:build !unix

package ingest

import (
	"testing"
	"time"
)

// processCPU is 0 where getrusage is not available: cpu-ns/sample then
// reads 0.
func processCPU(testing.TB) time.Duration { return 0 }
