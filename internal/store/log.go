package store

import (
	"context"
	"log/slog"
	"strings"
)

// quietHandler hands the TSDB's records on one level lower (info → debug,
// debug below that): WAL replays and compactions are routine for a hub, and
// its own operators should see them only with --log-level debug. Warnings
// and errors pass unchanged, but for overlapping blocks (debug).
type quietHandler struct{ h slog.Handler }

func (q quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return q.h.Enabled(ctx, demote(l))
}

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	if strings.HasPrefix(r.Message, "Overlapping blocks found") {
		// The rollup tiers' blocks overlap by design (one per group of
		// machines) until compaction merges them.
		r.Level = slog.LevelDebug
		if !q.h.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return q.h.Handle(ctx, r)
}

func (q quietHandler) WithAttrs(as []slog.Attr) slog.Handler { return quietHandler{q.h.WithAttrs(as)} }
func (q quietHandler) WithGroup(g string) slog.Handler       { return quietHandler{q.h.WithGroup(g)} }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return l - 4
	}
	return l
}
