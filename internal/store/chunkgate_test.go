package store

import (
	"testing"
	"time"
)

// TestRawCompactionsWaitForTheFirstChunkFile checks that the raw tier
// compacts nothing before its head has written a chunk file (chunkgate.go),
// that a full disk's reason to stop compactions outlasts the gate, and that
// compactions run once both allow them.
func TestRawCompactionsWaitForTheFirstChunkFile(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	raw, ok := s.raw.(*Tier)
	if !ok {
		t.Skip("the VM engine's raw tier has no head chunk files (SYSMONSTM_TEST_ENGINE=vm)")
	}
	if !raw.gate.isWaiting() {
		t.Fatal("a fresh raw tier's compactions are not waiting for its first chunk file")
	}
	v := func(i int) float64 { return float64(i % 17) }
	blocksWithin := func(d time.Duration) int {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if n := len(raw.Blocks()); n > 0 {
				return n
			}
		}
		return len(raw.Blocks())
	}
	// Three hours in order: the head is compactable (1 h blocks), and the
	// commit asks the TSDB to compact.
	appendRange(t, s, series("load1", "m1"), base, 3*3600, time.Second, v)
	if n := blocksWithin(1500 * time.Millisecond); n != 0 {
		t.Fatalf("the raw tier wrote %d blocks before its head had a chunk file", n)
	}
	// The disk fills up: the store turns compactions off too.
	raw.DisableCompactions()
	// Half an hour of another series an hour before the head's end is out
	// of order for the head: its chunks are written to a chunk file at the
	// commit.
	appendRange(t, s, series("load5", "m1"), base.Add(90*time.Minute), 1800, time.Second, v)
	for end := time.Now().Add(5 * time.Second); raw.gate.isWaiting(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the gate still waits 5 s after the head wrote a chunk file")
		}
	}
	appendRange(t, s, series("load1", "m1"), base.Add(3*time.Hour), 1, time.Second, v)
	if n := blocksWithin(1500 * time.Millisecond); n != 0 {
		t.Fatalf("the raw tier wrote %d blocks while the disk was full", n)
	}
	// Space again: compactions run at the next commit.
	raw.EnableCompactions()
	appendRange(t, s, series("load1", "m1"), base.Add(3*time.Hour+time.Second), 1, time.Second, v)
	if n := blocksWithin(10 * time.Second); n == 0 {
		t.Fatal("no block written 10 s after compactions were turned back on")
	}
	// The answers are whole across the compaction.
	res := mustQuery(t, s, Query{Metric: "load1", Machine: "m1", From: base, To: base.Add(3*time.Hour + time.Second), Step: time.Second})
	if len(res.Series) != 1 || len(res.Series[0].Points) != 3*3600+2 {
		t.Fatalf("load1 after the compaction: %d series, want 1 of %d points", len(res.Series), 3*3600+2)
	}
}
