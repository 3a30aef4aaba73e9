package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The TSDB logs its rollup tiers' overlapping blocks as a warning; the
// store demotes it to debug, so a hub at --log-level warn prints nothing.
func TestQuietHandlerDropsDemotedOverlapWarnings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(quietHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})})
	log.Warn("Overlapping blocks found during reloadBlocks", "detail", "[mint: 0, maxt: 1, blocks: 77]")
	if buf.Len() != 0 {
		t.Fatalf("overlap warning printed at level warn: %s", buf.String())
	}
	log.Warn("compaction failed", "err", "disk")
	log.Info("head GC completed")
	if got := buf.String(); !strings.Contains(got, "compaction failed") || strings.Contains(got, "head GC") {
		t.Fatalf("want the warning and not the demoted info line, got: %s", got)
	}

	buf.Reset()
	log = slog.New(quietHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	log.Warn("Overlapping blocks found during reloadBlocks")
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Fatalf("overlap warning at level debug: want it as DEBUG, got: %s", buf.String())
	}
}
