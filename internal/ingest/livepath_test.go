package ingest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// stallStorage is the real store whose commits wait, before they write, until
// the test opens the gate, or fail with fail when it is set: the WAL fsync
// stall or I/O error of a real disk, at the Storage seam ingest writes
// through.
type stallStorage struct {
	testStore
	mu      sync.Mutex
	gate    chan struct{} // nil: commits pass
	fail    error
	waiting chan struct{} // a commit is blocked on the gate (buffered)
}

func (s *stallStorage) Appender(ctx context.Context) store.Appender {
	return stallAppender{s.testStore.Appender(ctx), s}
}

// stall makes later commits block until release.
func (s *stallStorage) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *stallStorage) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *stallStorage) failWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

type stallAppender struct {
	store.Appender
	s *stallStorage
}

func (a stallAppender) Commit() error {
	a.s.mu.Lock()
	gate, fail := a.s.gate, a.s.fail
	a.s.mu.Unlock()
	if gate != nil {
		select {
		case a.s.waiting <- struct{}{}:
		default:
		}
		<-gate
	}
	if fail != nil {
		_ = a.Appender.Rollback()
		return fail
	}
	return a.Appender.Commit()
}

func newStallEnv(t *testing.T) (*env, *stallStorage) {
	t.Helper()
	var ss *stallStorage
	e := newEnv(t, t.TempDir(), nil, func(o *Options) {
		ss = &stallStorage{testStore: o.Storage.(testStore), waiting: make(chan struct{}, 1)}
		o.Storage = ss
	})
	t.Cleanup(ss.release) // before the env stops: a blocked writer must finish
	return e, ss
}

// startStalled starts a stall env with a live subscriber and an agent of
// machine that has sent, stored and seen live load1 = 1 (seq 1).
func startStalled(t *testing.T, machine string) (*env, *stallStorage, *live.Subscription, *agentConn) {
	t.Helper()
	e, ss := newStallEnv(t)
	sub := e.live.Subscribe(0)
	t.Cleanup(sub.Close)
	a, err := e.connect(machine, 1)
	if err != nil {
		t.Fatal(err)
	}
	a.defs("load1")
	a.batch(1, tick(1), []uint32{0}, []float64{1})
	a.waitAck(1)
	if _, ok := nextMetrics(t, sub, machine, 2*time.Second); !ok {
		t.Fatal("no live event for batch 1")
	}
	return e, ss, sub, a
}

// stallAtBatch2 makes commits stall, sends batch 2 (load1 = 2) and
// returns once its commit is blocked.
func stallAtBatch2(t *testing.T, ss *stallStorage, a *agentConn) {
	t.Helper()
	ss.stall()
	a.batch(2, tick(2), []uint32{0}, []float64{2})
	select {
	case <-ss.waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("the commit of batch 2 never started")
	}
}

// nextMetrics waits up to d for the next metrics event of machine.
func nextMetrics(t *testing.T, sub *live.Subscription, machine string, d time.Duration) (live.Event, bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatal("live subscription closed")
			}
			if ev.Type == live.EventMetrics && ev.Machine == machine {
				return ev, true
			}
		case <-timer.C:
			return live.Event{}, false
		}
	}
}

// While storage commits stall, accepted batches still reach the live state
// and its subscribers at once, in order; acks wait for the commit, and each
// batch is stored once when the commit goes through.
func TestLiveUpdatesDoNotWaitForStalledCommit(t *testing.T) {
	e, ss, sub, a := startStalled(t, "db-1")
	stallAtBatch2(t, ss, a)
	// The writer is now blocked in a commit; later batches queue behind it.
	for i := 2; i <= 5; i++ {
		if i > 2 {
			a.batch(uint64(i), tick(i), []uint32{0}, []float64{float64(i)})
		}
		start := time.Now()
		ev, ok := nextMetrics(t, sub, "db-1", time.Second)
		if !ok {
			t.Fatalf("batch %d: no live event within 1s while the commit stalls", i)
		}
		if want := `"ts":` + itoa(tick(i)); !strings.Contains(string(ev.JSON), want) {
			t.Fatalf("batch %d: live event %s, want %s (in order)", i, ev.JSON, want)
		}
		t.Logf("batch %d live after %s with the commit stalled", i, time.Since(start).Round(time.Microsecond))
	}
	if m, ok := e.live.Machine("db-1"); !ok || len(m.Metrics) != 1 || m.Metrics[0].Value != 5 {
		t.Fatalf("live state %+v, want load1 = 5", m)
	}
	// Each of the five published batches was observed from its receipt
	// to its event, stalled commit or not.
	testutil.Until(t, 5*time.Second, "5 publish delays observed", func() bool { n, _ := publishDelays(t, e); return n >= 5 })
	if n, sum := publishDelays(t, e); n != 5 || sum <= 0 || sum > 5 {
		t.Errorf("publish delays: %d observations summing to %v s, want 5 of well under a second", n, sum)
	}
	if got := a.s.Context().Err(); got != nil {
		t.Fatal(got)
	}
	ackCh := make(chan uint64, 8)
	go func() {
		for {
			m, err := a.s.Recv()
			if err != nil {
				close(ackCh)
				return
			}
			if s := m.GetAck().GetSeq(); s > 0 {
				ackCh <- s
			}
		}
	}()
	select {
	case s := <-ackCh:
		t.Fatalf("ack %d arrived while its commit stalls", s)
	case <-time.After(300 * time.Millisecond):
	}
	if pts := e.points("load1", "db-1"); len(pts) != 1 {
		t.Fatalf("stored %v before the stalled commit finished, want batch 1 only", pts)
	}
	ss.release()
	deadline := time.After(5 * time.Second)
	for acked := uint64(0); acked < 5; {
		select {
		case s, ok := <-ackCh:
			if !ok {
				t.Fatal("stream ended before ack 5")
			}
			acked = s
		case <-deadline:
			t.Fatalf("acked up to %d after the stall ended, want 5", acked)
		}
	}
	if pts := e.points("load1", "db-1"); len(pts) != 5 {
		t.Fatalf("stored %v, want 5 points, each once", pts)
	}
}

// A commit that stalls for as long as a second of a busy hub's batches
// (more batches than fit the queue of 256 the writers had before) still
// holds up nothing of the live view: each batch is published as it
// arrives, and all are stored and acknowledged once the commit goes
// through. The queue's bound is in samples (writerQueueSamples).
func TestLiveOutlastsALongCommitStall(t *testing.T) {
	e, ss, _, a := startStalled(t, "db-1")
	stallAtBatch2(t, ss, a)
	const last = 1500
	for i := 3; i <= last; i++ {
		a.batch(uint64(i), tick(2)+int64(i), []uint32{0}, []float64{float64(i)})
	}
	testutil.Until(t, 10*time.Second, "the last batch live while the commit stalls", func() bool {
		m, ok := e.live.Machine("db-1")
		return ok && len(m.Metrics) == 1 && m.Metrics[0].Value == last
	})
	if pts := e.points("load1", "db-1"); len(pts) != 1 {
		t.Fatalf("stored %d points before the stalled commit finished, want batch 1 only", len(pts))
	}
	ss.release()
	a.waitAck(last)
	if pts := e.points("load1", "db-1"); len(pts) != last {
		t.Fatalf("stored %d points, want %d, each once", len(pts), last)
	}
}

// A batch shown live whose commit then fails stays shown; the stream ends
// unacknowledged, the agent replays it on a new stream, the store keeps it
// once, and the replay is not published as news again.
func TestLiveKeepsBatchWhoseCommitFailed(t *testing.T) {
	e, ss, sub, a := startStalled(t, "db-2")
	ss.failWith(errors.New("write to WAL: input/output error"))
	a.batch(2, tick(2), []uint32{0}, []float64{2})
	if _, ok := nextMetrics(t, sub, "db-2", 2*time.Second); !ok {
		t.Fatal("no live event for batch 2")
	}
	for {
		m, err := a.s.Recv()
		if err != nil {
			if !strings.Contains(err.Error(), "storage error") {
				t.Fatalf("stream ended with %v, want the storage error", err)
			}
			break
		}
		if m.GetAck().GetSeq() >= 2 {
			t.Fatal("batch 2 acknowledged though its commit failed")
		}
	}
	ss.failWith(nil)
	b, err := e.connect("db-2", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.welcome.GetLastSeq(); got != 1 {
		t.Fatalf("welcome.last_seq %d, want 1", got)
	}
	if m, ok := e.live.Machine("db-2"); !ok || len(m.Metrics) != 1 || m.Metrics[0].Value != 2 {
		t.Fatalf("live state after the failed commit %+v, want load1 = 2 still shown", m)
	}
	b.defs("load1")
	b.batch(1, tick(1), []uint32{0}, []float64{1}) // replay of a stored batch
	b.batch(2, tick(2), []uint32{0}, []float64{2})
	b.batch(3, tick(3), []uint32{0}, []float64{3})
	b.waitAck(3)
	for {
		ev, ok := nextMetrics(t, sub, "db-2", time.Second)
		if !ok {
			t.Fatal("no live event for batch 3")
		}
		if strings.Contains(string(ev.JSON), `"ts":`+itoa(tick(3))) {
			break
		}
		if strings.Contains(string(ev.JSON), `"ts":`+itoa(tick(1))) {
			t.Fatalf("the replay of stored batch 1 was published again: %s", ev.JSON)
		}
	}
	pts := e.points("load1", "db-2")
	if len(pts) != 3 || pts[0][1] != 1 || pts[1][1] != 2 || pts[2][1] != 3 {
		t.Fatalf("stored %v, want 1, 2, 3 once each", pts)
	}
}

// publishDelays returns the count and sum of
// sysmonstm_live_delay_seconds{stage="publish"}.
func publishDelays(t *testing.T, e *env) (uint64, float64) {
	t.Helper()
	return testutil.Histogram(t, e.reg, "sysmonstm_live_delay_seconds", "stage", live.DelayPublish)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
