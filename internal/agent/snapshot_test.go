package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// snapshotter returns snapshots whose only process has pid = call number.
type snapshotter struct{ n atomic.Uint32 }

func (s *snapshotter) take(context.Context) *sysmonstmv1.ProcessSnapshot {
	n := s.n.Add(1)
	return &sysmonstmv1.ProcessSnapshot{Processes: []*sysmonstmv1.Process{{Pid: n, Name: "p"}}}
}

func (h *testHub) snapshotCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.snapshots)
}

func TestSendsProcessSnapshots(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	snaps := &snapshotter{}
	opts := testOptions(srv.addr)
	opts.Snapshots = snaps.take
	opts.SnapshotInterval = 20 * time.Millisecond
	a := startAgent(t, opts, src.source, nil)

	waitFor(t, 5*time.Second, "5 snapshots and 5 batches", func() bool {
		_, _, n := hub.seqs()
		return hub.snapshotCount() >= 5 && n >= 5
	})
	checkStored(t, hub, testInterval)
	hub.checkViolations(t)
	hub.mu.Lock()
	var prevTs int64
	var prevPid uint32
	for _, s := range hub.snapshots {
		if s.GetTimestampMs() < prevTs || s.GetTimestampMs() == 0 || s.GetProcesses()[0].GetPid() <= prevPid {
			t.Errorf("snapshot ts %d pid %d after ts %d pid %d", s.GetTimestampMs(), s.GetProcesses()[0].GetPid(), prevTs, prevPid)
		}
		prevTs, prevPid = s.GetTimestampMs(), s.GetProcesses()[0].GetPid()
	}
	hub.mu.Unlock()
	if st := a.Stats(); st.SnapshotsSent < 5 {
		t.Errorf("stats = %+v", st)
	}
}

// While no hub is reachable, snapshots are not buffered: each replaces the
// previous, and only the newest is sent once the hub is back.
func TestSnapshotsAreLiveOnly(t *testing.T) {
	addr := freeAddr(t)
	src := &counter{}
	snaps := &snapshotter{}
	opts := testOptions(addr)
	opts.Snapshots = snaps.take
	opts.SnapshotInterval = 10 * time.Millisecond
	a := startAgent(t, opts, src.source, nil)
	waitFor(t, 5*time.Second, "5 dropped snapshots", func() bool { return a.Stats().SnapshotsDropped >= 5 })

	hub := newTestHub()
	startServer(t, hub, addr)
	waitFor(t, 5*time.Second, "a snapshot", func() bool { return hub.snapshotCount() >= 1 })
	hub.mu.Lock()
	first := hub.snapshots[0].GetProcesses()[0].GetPid()
	hub.mu.Unlock()
	if st := a.Stats(); first <= uint32(st.SnapshotsDropped)-1 {
		t.Errorf("first snapshot sent is call %d, but %d were dropped before: an old one was replayed", first, st.SnapshotsDropped)
	}
	hub.checkViolations(t)
}
