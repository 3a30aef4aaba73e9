package agent

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

const testInterval = 50 * time.Millisecond

// counter is a source whose "ticks_total" counts its calls, so a gap or a
// repeat in the stored values shows a lost or duplicated batch. From the
// fifth tick on it adds a new series, which needs a definition mid-stream.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) source(context.Context) []metric.Sample {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	s := []metric.Sample{
		{Name: "ticks_total", Value: float64(n)},
		{Name: "cpu_usage_percent", Labels: metric.Labels{{Name: "cpu", Value: "total"}}, Value: 12.5},
		{Name: "cpu_usage_percent", Labels: metric.Labels{{Name: "cpu", Value: "0"}}, Value: 3.25},
	}
	if n >= 5 {
		s = append(s, metric.Sample{Name: "late_gauge", Value: 1})
	}
	return s
}

func (c *counter) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testOptions(hub string) Options {
	return Options{
		Hub:       hub,
		Token:     "secret",
		MachineID: "web-1",
		Hostname:  "web-1.example.com",
		Labels:    metric.Labels{{Name: "env", Value: "prod"}, {Name: "role", Value: "web"}},
		Info:      &sysmonstmv1.HostInfo{Os: "linux", CpuThreads: 8},
		Version:   "1.2.3",
		Interval:  testInterval,
	}
}

// startAgent runs an agent until the test ends and checks that Run returns
// nil once its context is done.
func startAgent(t *testing.T, opts Options, src Source, tune func(*Agent)) *Agent {
	t.Helper()
	a, err := New(opts, src)
	if err != nil {
		t.Fatal(err)
	}
	a.backoffBase = 10 * time.Millisecond
	a.backoffMax = 100 * time.Millisecond
	a.welcomeTimeout = 2 * time.Second
	if tune != nil {
		tune(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return a
}

// checkSeries checks that the stored batches form seqs first..last without a
// gap, that timestamps are exact multiples of iv and increasing, and that
// "ticks_total" increases by one per batch. The batches of seqs in notTicks
// (from Submit) are left out of the checks of timestamps and ticks.
func checkStored(t *testing.T, h *testHub, iv time.Duration, notTicks ...uint64) (first, last uint64) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var ticksID uint32
	for id, d := range h.defs {
		if d.GetName() == "ticks_total" {
			ticksID = id
		}
	}
	for s := range h.stored {
		if first == 0 || s < first {
			first = s
		}
		last = max(last, s)
	}
	var prevTs int64
	var prevTick float64
	for s := first; s <= last; s++ {
		b := h.stored[s]
		if b == nil {
			t.Errorf("batch %d missing (stored %d..%d)", s, first, last)
			continue
		}
		if slices.Contains(notTicks, s) {
			continue
		}
		if b.GetTimestampMs()%iv.Milliseconds() != 0 {
			t.Errorf("batch %d: timestamp %d not a multiple of %s", s, b.GetTimestampMs(), iv)
		}
		if b.GetTimestampMs() <= prevTs {
			t.Errorf("batch %d: timestamp %d not after %d", s, b.GetTimestampMs(), prevTs)
		}
		prevTs = b.GetTimestampMs()
		for i, id := range b.GetSeriesIds() {
			if id != ticksID {
				continue
			}
			if v := b.GetValues()[i]; prevTick != 0 && v != prevTick+1 {
				t.Errorf("batch %d: ticks_total %v after %v: a batch was lost or repeated", s, v, prevTick)
			}
			prevTick = b.GetValues()[i]
		}
	}
	return first, last
}

func TestStreamsToHub(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, nil)

	waitFor(t, 5*time.Second, "10 stored batches", func() bool { _, _, n := hub.seqs(); return n >= 10 })
	waitFor(t, 2*time.Second, "acks to empty the buffer", func() bool { return a.Stats().Buffered <= 1 })

	hub.mu.Lock()
	hello := hub.hellos[0]
	authz := hub.authz[0]
	defsSent := hub.defsSent
	hub.mu.Unlock()
	// The token also travels as stream metadata, checked by the hub
	// before it reads the hello.
	if len(authz) != 1 || authz[0] != "Bearer secret" {
		t.Errorf("authorization metadata = %q, want [\"Bearer secret\"]", authz)
	}
	if hello.GetMachineId() != "web-1" || hello.GetHostname() != "web-1.example.com" || hello.GetToken() != "secret" ||
		hello.GetAgentVersion() != "1.2.3" || hello.GetIntervalMs() != 50 || hello.GetInstance() != a.Instance() ||
		hello.GetInstance() == 0 || hello.GetInfo().GetCpuThreads() != 8 {
		t.Errorf("hello = %v", hello)
	}
	if got := hello.GetLabels(); len(got) != 2 || got[0].GetName() != "env" || got[1].GetValue() != "web" {
		t.Errorf("hello labels = %v", got)
	}
	if defsSent != 4 {
		t.Errorf("%d series definitions sent on one stream, want 4 (each once)", defsSent)
	}
	first, _ := checkStored(t, hub, testInterval)
	if first != 1 {
		t.Errorf("first stored seq %d, want 1", first)
	}
	hub.checkViolations(t)
	st := a.Stats()
	if !st.Connected || st.Sent == 0 || st.Acked == 0 || st.Acked > st.Sent || st.Reconnects != 0 || st.Series != 4 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNextTick(t *testing.T) {
	f := func(now, iv, phase, want int64) {
		t.Helper()
		if got := nextTick(now, iv, phase); got != want {
			t.Errorf("nextTick(%d, %d, %d) = %d, want %d", now, iv, phase, got, want)
		}
	}
	f(10_000, 1000, 0, 11_000) // on a boundary: the next one
	f(10_001, 1000, 0, 11_000)
	f(10_999, 1000, 0, 11_000)
	f(10_000, 1000, 250, 10_250)
	f(10_250, 1000, 250, 11_250)
	f(10_251, 1000, 250, 11_250)
	f(10_249, 1000, 250, 10_250)
	f(10_000, 1000, 1250, 10_250) // phase beyond the interval (the hub shortened it)
	f(10_000, 1000, 999, 10_999)
	f(100, 1000, 500, 500) // near the epoch
}

// An agent with a phase stamps its batches at multiples of the interval
// plus the phase.
func TestPhaseOffsetsTicks(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	o := testOptions(srv.addr)
	o.Phase = 17 * time.Millisecond
	src := &counter{}
	startAgent(t, o, src.source, nil)
	waitFor(t, 5*time.Second, "5 stored batches", func() bool { _, _, n := hub.seqs(); return n >= 5 })
	hub.mu.Lock()
	defer hub.mu.Unlock()
	iv := testInterval.Milliseconds()
	for seq, b := range hub.stored {
		if got := b.GetTimestampMs() % iv; got != 17 {
			t.Errorf("batch %d: timestamp %d is %d ms past a multiple of %d ms, want 17", seq, b.GetTimestampMs(), got, iv)
		}
	}
}

func TestReplayAfterHubRestart(t *testing.T) {
	hub := newTestHub()
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, nil)

	waitFor(t, 5*time.Second, "5 stored batches", func() bool { _, _, n := hub.seqs(); return n >= 5 })
	// Before the crash the hub stores some batches without acking them (the
	// agent must not resend those after welcome.last_seq) and then loses a
	// few in flight (the agent must resend those).
	setHub := func(noAck, discard bool) {
		hub.mu.Lock()
		hub.noAck, hub.discard = noAck, discard
		hub.mu.Unlock()
	}
	setHub(true, false)
	mark := src.calls()
	waitFor(t, 5*time.Second, "stored unacked batches", func() bool { return src.calls() >= mark+3 })
	setHub(true, true)
	mark = src.calls()
	waitFor(t, 5*time.Second, "lost batches", func() bool { return src.calls() >= mark+3 })
	srv.stop()
	setHub(false, false)
	stoppedAt := src.calls()
	waitFor(t, 5*time.Second, "agent to notice the outage", func() bool { return !a.Stats().Connected })
	waitFor(t, 5*time.Second, "10 ticks during the outage", func() bool { return src.calls() >= stoppedAt+10 })
	if st := a.Stats(); st.Buffered < 8 {
		t.Errorf("buffered %d batches during the outage, want ≥ 8", st.Buffered)
	}
	srv.start()
	waitFor(t, 5*time.Second, "reconnect", func() bool { return a.Stats().Reconnects >= 1 })
	target := uint64(src.calls() + 2)
	waitFor(t, 5*time.Second, "replay and new batches", func() bool { _, last, _ := hub.seqs(); return last >= target })

	first, last := checkStored(t, hub, testInterval)
	if first != 1 {
		t.Errorf("stored seqs start at %d, want 1", first)
	}
	hub.mu.Lock()
	streams, defsSent := hub.streams, hub.defsSent
	hub.mu.Unlock()
	if streams != 2 {
		t.Errorf("%d streams, want 2", streams)
	}
	if defsSent != 8 {
		t.Errorf("%d definitions sent over two streams, want 8 (4 series once per stream)", defsSent)
	}
	hub.checkViolations(t)
	st := a.Stats()
	if st.Dropped != 0 || st.Resent == 0 || st.Resent > 5 || st.Acked != st.Collected-int64(st.Buffered) {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("stored %d..%d, stats %+v", first, last, st)
}

func TestBufferOverflowDropsOldest(t *testing.T) {
	addr := freeAddr(t) // nobody listens yet
	src := &counter{}
	opts := testOptions(addr)
	// One 3-sample batch encodes to ~45 bytes; 200 bytes hold 4 of them.
	opts.BufferBytes = 200
	a := startAgent(t, opts, src.source, nil)
	waitFor(t, 5*time.Second, "drops", func() bool { return a.Stats().Dropped >= 3 })
	st := a.Stats()
	if st.BufferedBytes > 200 || st.Buffered == 0 || st.Connected {
		t.Errorf("stats = %+v", st)
	}
	if st.Dropped+int64(st.Buffered) != st.Collected {
		t.Errorf("dropped %d + buffered %d != collected %d", st.Dropped, st.Buffered, st.Collected)
	}

	hub := newTestHub()
	startServer(t, hub, addr)
	waitFor(t, 5*time.Second, "delivery", func() bool { _, _, n := hub.seqs(); return n >= 8 })
	first, _, _ := hub.seqs()
	if first <= 3 {
		t.Errorf("first delivered seq %d: the oldest batches should have been dropped", first)
	}
	checkStored(t, hub, testInterval)
	hub.checkViolations(t)
}

func TestUnauthenticatedKeepsRetrying(t *testing.T) {
	hub := newTestHub()
	hub.token = "good"
	srv := startServer(t, hub, "127.0.0.1:0")
	logs := &logBuffer{}
	opts := testOptions(srv.addr)
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	src := &counter{}
	a := startAgent(t, opts, src.source, func(a *Agent) { a.backoffMax = 50 * time.Millisecond })

	// The hub sees a hello before the agent counts that session's error:
	// wait for both.
	waitFor(t, 5*time.Second, "3 rejected hellos, counted by the agent", func() bool {
		hub.mu.Lock()
		n := len(hub.hellos)
		hub.mu.Unlock()
		return n >= 3 && a.Stats().Errors >= 3
	})
	if n := strings.Count(logs.String(), "token rejected by hub"); n != 1 {
		t.Errorf("rejection logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "sysmonstm token create") {
		t.Errorf("rejection log does not say what to do:\n%s", logs)
	}
	if st := a.Stats(); st.Connected || st.Errors < 3 {
		t.Errorf("stats = %+v", st)
	}

	// The operator fixes the token on the hub side: nothing was lost.
	hub.mu.Lock()
	hub.token = ""
	hub.mu.Unlock()
	waitFor(t, 5*time.Second, "delivery after the token is accepted", func() bool {
		_, last, _ := hub.seqs()
		return last >= 5 && a.Stats().Connected
	})
	if first, _ := checkStored(t, hub, testInterval); first != 1 {
		t.Errorf("first stored seq %d, want 1", first)
	}
	if !strings.Contains(logs.String(), "connected to hub") {
		t.Errorf("no connect log:\n%s", logs)
	}
}

func TestHubChangesInterval(t *testing.T) {
	hub := newTestHub()
	hub.interval = 100 // welcome overrides the agent's 50 ms
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, nil)

	waitFor(t, 5*time.Second, "interval from welcome", func() bool { return a.Interval() == 100*time.Millisecond })
	waitFor(t, 5*time.Second, "3 batches", func() bool { _, _, n := hub.seqs(); return n >= 3 })
	hub.settings <- &sysmonstmv1.Settings{IntervalMs: 20}
	waitFor(t, 5*time.Second, "interval from settings", func() bool { return a.Interval() == 20*time.Millisecond })
	_, mark, _ := hub.seqs()
	waitFor(t, 5*time.Second, "batches at the new interval", func() bool { _, last, _ := hub.seqs(); return last >= mark+6 })

	hub.mu.Lock()
	defer hub.mu.Unlock()
	var at20 int
	for s := mark + 2; hub.stored[s+1] != nil; s++ {
		d := hub.stored[s+1].GetTimestampMs() - hub.stored[s].GetTimestampMs()
		if d%20 != 0 || hub.stored[s+1].GetTimestampMs()%20 != 0 {
			t.Errorf("batches %d→%d: step %d ms, want multiples of 20", s, s+1, d)
		}
		if d == 20 {
			at20++
		}
	}
	if at20 < 3 {
		t.Errorf("only %d steps of 20 ms after the change", at20)
	}
}

func TestWindowBoundsInFlight(t *testing.T) {
	hub := newTestHub()
	hub.noAck = true
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, func(a *Agent) { a.window = 4 })

	waitFor(t, 5*time.Second, "4 batches", func() bool { _, _, n := hub.seqs(); return n >= 4 })
	waitFor(t, 5*time.Second, "more ticks", func() bool { return src.calls() >= 10 })
	if _, _, n := hub.seqs(); n != 4 {
		t.Errorf("hub received %d unacked batches, window is 4", n)
	}
	// Unacknowledged batches stay buffered until the hub acks them.
	if st := a.Stats(); st.Buffered < 8 {
		t.Errorf("buffered %d, want ≥ 8", st.Buffered)
	}
}

func TestWatchdogBreaksSilentStream(t *testing.T) {
	hub := newTestHub()
	hub.noAck = true
	srv := startServer(t, hub, "127.0.0.1:0")
	src := &counter{}
	a := startAgent(t, testOptions(srv.addr), src.source, func(a *Agent) { a.ackTimeout = 200 * time.Millisecond })
	waitFor(t, 5*time.Second, "a second stream", func() bool { return a.Stats().Reconnects >= 1 })
	hub.mu.Lock()
	hub.noAck = false
	hub.mu.Unlock()
	waitFor(t, 5*time.Second, "acks", func() bool { return a.Stats().Acked > 0 })
}

func TestSkipsInvalidSamples(t *testing.T) {
	a, err := New(testOptions("127.0.0.1:1"), func(context.Context) []metric.Sample { return nil })
	if err != nil {
		t.Fatal(err)
	}
	b, skipped := a.buildBatch([]metric.Sample{
		{Name: "ok", Value: 1},
		{Name: "nan", Value: math.NaN()},
		{Name: "inf", Value: math.Inf(-1)},
		{Name: "bad-name", Value: 1},
		{Name: "reserved", Labels: metric.Labels{{Name: "machine", Value: "x"}}, Value: 1},
		{Name: "ok", Value: 2}, // repeat within a tick
		{Name: "unsorted", Labels: metric.Labels{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}}, Value: 3},
		{Name: "unsorted", Labels: metric.Labels{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}, Value: 4},
	})
	if skipped != 6 || len(b.SeriesIds) != 2 || b.Values[0] != 1 || b.Values[1] != 3 {
		t.Errorf("batch %v, skipped %d", b, skipped)
	}
	if len(a.defs) != 2 || a.defs[1].GetLabels()[0].GetName() != "a" {
		t.Errorf("defs = %v", a.defs)
	}
	// Series ids are stable across ticks.
	b2, _ := a.buildBatch([]metric.Sample{{Name: "unsorted", Labels: metric.Labels{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}}, {Name: "ok"}})
	if b2.SeriesIds[0] != b.SeriesIds[1] || b2.SeriesIds[1] != b.SeriesIds[0] {
		t.Errorf("ids changed: %v then %v", b.SeriesIds, b2.SeriesIds)
	}
}

func TestNewValidates(t *testing.T) {
	src := func(context.Context) []metric.Sample { return nil }
	f := func(mod func(*Options), want string) {
		t.Helper()
		o := testOptions("hub.example.com:50051")
		mod(&o)
		_, err := New(o, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: error %v, want one containing %q", err, want)
		}
	}
	f(func(o *Options) { o.Hub = "" }, `hub address "": empty: want HOST:PORT`)
	f(func(o *Options) { o.Hub = "hub.example.com" }, `hub address "hub.example.com": want HOST:PORT`)
	f(func(o *Options) { o.Hub = "a:1,,b:2" }, `hub address "a:1,,b:2": empty entry in the list`)
	f(func(o *Options) { o.Hub = "a:1,b:2,a:1" }, `hub address "a:1": listed twice`)
	f(func(o *Options) { o.Hub = "a:1,b:70000" }, `hub address "b:70000": port "70000" must be a number from 1 to 65535`)
	f(func(o *Options) { o.Hub = "a:1,b:http" }, `port "http" must be`)
	f(func(o *Options) { o.Hub = "a b:1" }, `"a b" is neither an IP address nor a host name`)
	f(func(o *Options) { o.MachineID = "" }, "machine id is empty")
	f(func(o *Options) { o.Labels = metric.Labels{{Name: "machine", Value: "x"}} }, `label "machine" is reserved`)
	f(func(o *Options) { o.Labels = metric.Labels{{Name: "b"}, {Name: "a"}} }, "labels not sorted")
	f(func(o *Options) { o.Labels = metric.Labels{{Name: "1x"}} }, `invalid label name "1x"`)
	f(func(o *Options) { o.Interval = time.Millisecond }, "interval 1ms out of range")
	f(func(o *Options) { o.Interval = 1500 * time.Microsecond }, "whole milliseconds")
	f(func(o *Options) { o.BufferBytes = -1 }, "buffer size -1 bytes is negative")
	f(func(o *Options) { o.Phase = -time.Millisecond }, "phase -1ms: must be whole milliseconds, not negative")
	f(func(o *Options) { o.Phase = 1500 * time.Microsecond }, "phase 1.5ms: must be whole milliseconds")

	a, err := New(Options{Hub: "127.0.0.1:50051", MachineID: "m"}, src)
	if err != nil {
		t.Fatal(err)
	}
	if a.opts.Hostname != "m" || a.Interval() != time.Second || a.opts.BufferBytes != 8<<20 {
		t.Errorf("defaults not applied: %+v", a.opts)
	}
	if _, err := New(Options{Hub: "h:1", MachineID: "m"}, nil); err == nil {
		t.Error("nil source accepted")
	}
}

func TestBuffer(t *testing.T) {
	q := buffer{limit: 100}
	batch := func(seq uint64) *sysmonstmv1.Batch {
		return &sysmonstmv1.Batch{Seq: seq, SeriesIds: []uint32{1, 2}}
	}
	for s := uint64(1); s <= 4; s++ {
		if d, _ := q.push(batch(s), 30); d != 0 && s < 4 {
			t.Fatalf("push %d dropped %d", s, d)
		}
	}
	// 4×30 > 100: the oldest went.
	if first, last, _ := q.span(); first != 2 || last != 4 || q.bytes != 90 || q.len() != 3 {
		t.Errorf("span %d..%d bytes %d len %d", first, last, q.bytes, q.len())
	}
	if q.get(3).GetSeq() != 3 || q.get(1) != nil || q.get(5) != nil {
		t.Error("get by seq")
	}
	if n, samples := q.popThrough(3); n != 2 || samples != 4 {
		t.Errorf("popThrough(3) = %d, %d", n, samples)
	}
	// A batch larger than the limit is still kept, alone.
	if d, s := q.push(batch(5), 500); d != 1 || s != 2 || q.len() != 1 {
		t.Errorf("oversized push dropped %d (%d samples), len %d", d, s, q.len())
	}
	// Compaction keeps order over many pushes and pops.
	q = buffer{limit: 1 << 30}
	for s := uint64(1); s <= 5000; s++ {
		q.push(batch(s), 10)
		if s%3 == 0 {
			q.popThrough(s - 1)
		}
	}
	if first, last, _ := q.span(); first != 4998 || last != 5000 || q.at(0).GetSeq() != 4998 {
		t.Errorf("after churn: span %d..%d", first, last)
	}
}

// TestTokenWithImpossibleCharacters: a token no hub issues (a space, a
// control or non-ASCII character, e.g. from a copy with a line break) is
// refused at start: as gRPC metadata it could not even be sent.
func TestTokenWithImpossibleCharacters(t *testing.T) {
	src := func(context.Context) []metric.Sample { return nil }
	for _, tok := range []string{"smt_a b", "smt_ab\n", "smt_\x00", "smt_é"} {
		opts := testOptions("127.0.0.1:1")
		opts.Token = tok
		if _, err := New(opts, src); err == nil || !strings.Contains(err.Error(), "copy it again") {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	opts := testOptions("127.0.0.1:1")
	opts.Token = "smt_AbC-_09~!"
	if _, err := New(opts, src); err != nil {
		t.Errorf("printable token: %v", err)
	}
}

// TestSeriesIDsWhateverTheOrder: the id tried first (that of the last
// tick's sample at the same place) is only taken for the same series.
// Ticks reorder, insert, drop and skip (NaN) samples; every sample must get
// the id its series got first, and no series two ids.
func TestSeriesIDsWhateverTheOrder(t *testing.T) {
	a, err := New(testOptions("127.0.0.1:1"), func(context.Context) []metric.Sample { return nil })
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	sample := func(n int) metric.Sample {
		ls := metric.Labels{{Name: "core", Value: strconv.Itoa(n % 7)}, {Name: "mode", Value: strconv.Itoa(n / 7)}}
		if n%5 == 0 {
			ls[0], ls[1] = ls[1], ls[0] // unsorted: the same series as sorted
		}
		return metric.Sample{Name: "cpu", Labels: ls, Value: float64(n)}
	}
	want := map[int]uint32{} // n%5 aside, series n is core n%7, mode n/7
	for tick := range 300 {
		var ns []int
		for n := range 60 {
			if rng.IntN(4) != 0 {
				ns = append(ns, n)
			}
		}
		if tick%3 == 0 {
			rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
		}
		samples := make([]metric.Sample, 0, len(ns)+2)
		for i, n := range ns {
			if i == 3 && tick%2 == 0 {
				samples = append(samples, metric.Sample{Name: "skipped", Value: math.NaN()})
			}
			samples = append(samples, sample(n))
		}
		b, _ := a.buildBatch(samples)
		if len(b.SeriesIds) != len(ns) {
			t.Fatalf("tick %d: %d ids for %d samples", tick, len(b.SeriesIds), len(ns))
		}
		for i, id := range b.SeriesIds {
			n := int(b.Values[i])
			if w, ok := want[n]; ok && w != id {
				t.Fatalf("tick %d: series %d got id %d, first %d", tick, n, id, w)
			}
			want[n] = id
		}
	}
	if len(a.defs) != 60 {
		t.Errorf("%d series defined, want 60", len(a.defs))
	}
}
