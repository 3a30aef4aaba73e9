package agent

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// snapshotLoop calls Options.Snapshots every SnapshotInterval and leaves the
// result for the sender. Each call's ctx expires at the next tick.
func (a *Agent) snapshotLoop(ctx context.Context) {
	iv := a.opts.SnapshotInterval
	tk := time.NewTicker(iv)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		sctx, cancel := context.WithTimeout(ctx, iv)
		s := a.opts.Snapshots(sctx)
		cancel()
		if s == nil {
			continue
		}
		if s.TimestampMs == 0 {
			s.TimestampMs = a.now().UnixMilli()
		}
		sanitize(s)
		if old := a.snap.Swap(s); old != nil {
			a.mu.Lock()
			a.stats.SnapshotsDropped++
			a.mu.Unlock()
		}
		select {
		case a.snapWake <- struct{}{}:
		default:
		}
	}
}

// sendSnapshot sends the pending snapshot, if any. Only the stream's sender
// calls it.
func (a *Agent) sendSnapshot(stream sysmonstmv1.Ingest_StreamClient) error {
	s := a.snap.Swap(nil)
	if s == nil {
		return nil
	}
	msg := &sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Processes{Processes: s}}
	if err := stream.Send(msg); err != nil {
		return fmt.Errorf("send process snapshot: %w", err)
	}
	a.mu.Lock()
	a.stats.SnapshotsSent++
	a.mu.Unlock()
	return nil
}

// sanitize replaces invalid UTF-8 in the snapshot's strings: protobuf
// refuses to marshal such a string, which would break the stream.
func sanitize(s *sysmonstmv1.ProcessSnapshot) {
	fix := func(v *string) {
		if !utf8.ValidString(*v) {
			*v = strings.ToValidUTF8(*v, "\uFFFD")
		}
	}
	for _, p := range s.Processes {
		if p == nil {
			continue
		}
		fix(&p.Name)
		fix(&p.User)
		fix(&p.Command)
		fix(&p.State)
	}
}
