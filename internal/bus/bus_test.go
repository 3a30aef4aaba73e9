package bus

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sysmonstm/sysmonstm/internal/bus/bustest"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// Machine ids are untrusted: whatever they hold, each is one subject
// token of base32hex characters, so no id reaches another machine's
// subject or a wildcard.
func TestSubjectsNotInjectable(t *testing.T) {
	tok := regexp.MustCompile(`^[0-9A-V]+$`)
	seen := map[string]string{}
	for _, id := range []string{"web-1", "a.b", "a", "*", ">", "a.>", "a b", "a\tb", "ünï", "..", "a.*.c", "A", "a."} {
		subj := batchSubject(id, 0xabc)
		m := regexp.MustCompile(`^sysmonstm\.samples\.([^.]+)\.abc$`).FindStringSubmatch(subj)
		if m == nil || !tok.MatchString(m[1]) {
			t.Fatalf("machine %q: subject %q", id, subj)
		}
		if prev, ok := seen[m[1]]; ok {
			t.Fatalf("machines %q and %q share the token %s", prev, id, m[1])
		}
		seen[m[1]] = id
		if s := stateSubjectOf(kindHello, id); s != "sysmonstm.state.hello."+m[1] {
			t.Fatalf("machine %q: state subject %q", id, s)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs([]string{"nats://user:s3cret@a:4222", "nats://b:4222"})
	if got != "nats://a:4222,nats://b:4222" {
		t.Fatalf("got %q", got)
	}
}

// A batch is acknowledged once JetStream has it; its replay (the same
// machine/instance/seq, e.g. to another hub) is stored once; LastSeq
// answers the newest seq per instance.
func TestPublishAckAndDedupe(t *testing.T) {
	ns := startNATS(t)
	a := newBus(t, Options{URLs: urlsOf(ns)})
	b := newBus(t, Options{URLs: urlsOf(ns)}) // a second hub on the same bus
	ctx := t.Context()
	now := time.Now().UnixMilli()
	var group []ingest.BusBatch
	for seq := uint64(1); seq <= 10; seq++ {
		group = append(group, batch("web.1>*", 7, seq, now+int64(seq), 3))
	}
	if err := a.Publish(ctx, group); err != nil {
		t.Fatal(err)
	}
	// The agent replays 6…10 to hub b.
	if err := b.Publish(ctx, group[5:]); err != nil {
		t.Fatal(err)
	}
	info, err := a.samples.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Fatalf("stream holds %d messages, want 10 (replays de-duplicated)", info.State.Msgs)
	}
	for _, c := range []struct {
		instance, want uint64
	}{{7, 10}, {8, 0}} {
		got, err := b.LastSeq(ctx, "web.1>*", c.instance)
		if err != nil || got != c.want {
			t.Fatalf("LastSeq(instance %d) = %d, %v; want %d", c.instance, got, err, c.want)
		}
	}
	if got, _ := a.LastSeq(ctx, "web.1", 7); got != 0 {
		t.Fatalf("another machine's LastSeq = %d, want 0", got)
	}
}

// A publish NATS cannot acknowledge fails within the caller's deadline,
// so ingest ends the streams unacknowledged.
func TestPublishFailsWithoutNATS(t *testing.T) {
	ns := startNATS(t)
	a := newBus(t, Options{URLs: urlsOf(ns)})
	ns.Shutdown()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := a.Publish(ctx, []ingest.BusBatch{batch("m", 1, 1, time.Now().UnixMilli(), 1)}); err == nil {
		t.Fatal("publish without NATS succeeded")
	}
	testutil.Until(t, 10*time.Second, "not ready", func() bool { return a.Ready() != nil })
}

// Every hub sees every machine: a hello, batches and processes published
// by hub a reach hub b's live state (and b learns the seqs), and a hub
// started later recovers the newest state from JetStream.
func TestLiveViewShared(t *testing.T) {
	ns := startNATS(t)
	liveA, liveB := newLive(t), newLive(t)
	var noted atomic.Uint64
	a := newBus(t, Options{URLs: urlsOf(ns), Live: liveA})
	newBus(t, Options{URLs: urlsOf(ns), Live: liveB, NoteSeq: func(m string, inst, seq uint64) {
		if m == "db.1" && inst == 9 {
			noted.Store(seq)
		}
	}})
	sinkA := a.Sink(liveA)
	sinkA.Connect(live.MachineInfo{ID: "db.1", Hostname: "<b>db</b>", OS: "linux", CPUCores: 8, Source: live.SourceAgent,
		Labels: metric.Labels{{Name: "rack", Value: "r1"}}})
	now := time.Now().UnixMilli()
	for seq := uint64(1); seq <= 3; seq++ {
		if err := a.Publish(t.Context(), []ingest.BusBatch{batch("db.1", 9, seq, now+int64(seq)*1000, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	sinkA.SetProcesses("db.1", now, []live.Process{{PID: 42, Name: "postgres", CPUPercent: 12.5}})

	check := func(st *live.State, who string) {
		testutil.WaitFor(t, 10*time.Second, who+" sees db.1", func() error {
			m, ok := st.Machine("db.1")
			if !ok {
				return fmt.Errorf("machine unknown")
			}
			if !m.Online || m.Info.Hostname != "<b>db</b>" || m.Info.CPUCores != 8 || m.Info.Labels.Get("rack") != "r1" {
				return fmt.Errorf("machine %+v", m)
			}
			var v float64
			for _, x := range m.Metrics {
				if x.Name == "cpu_usage_percent" && x.Labels.Get("core") == "1" {
					v = x.Value
				}
			}
			if v != 4 { // seq 3, core 1
				return fmt.Errorf("cpu core 1 = %v, want 4", v)
			}
			if len(m.Processes) != 1 || m.Processes[0].Name != "postgres" {
				return fmt.Errorf("processes %+v", m.Processes)
			}
			return nil
		})
	}
	check(liveB, "hub b")
	if noted.Load() != 3 {
		t.Fatalf("hub b noted seq %d, want 3", noted.Load())
	}
	// A hub that starts now recovers the state.
	liveC := newLive(t)
	newBus(t, Options{URLs: urlsOf(ns), Live: liveC})
	check(liveC, "hub c (started later)")

	// A disconnect from the hub of the last hello is shown; one from
	// another hub (the agent moved away from it) is not.
	sinkA.Disconnect("db.1")
	testutil.Until(t, 10*time.Second, "hub b sees the disconnect", func() bool {
		m, _ := liveB.Machine("db.1")
		return !m.Connected
	})
}

// The whole of NATS goes away and comes back on the same address and
// storage: publishes fail meanwhile and the bus is not ready; afterwards
// publishing works again and the other hub's follower resumes where it
// stopped, so its live view shows the new batches.
func TestNATSOutageRecovered(t *testing.T) {
	dir := t.TempDir()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true}
	ns := bustest.Run(t, opts)
	opts.Port = ns.Addr().(*net.TCPAddr).Port
	liveB := newLive(t)
	a := newBus(t, Options{URLs: urlsOf(ns)})
	newBus(t, Options{URLs: urlsOf(ns), Live: liveB})
	now := time.Now().UnixMilli()
	if err := a.Publish(t.Context(), []ingest.BusBatch{batch("m", 1, 1, now, 1)}); err != nil {
		t.Fatal(err)
	}
	value := func() float64 {
		m, _ := liveB.Machine("m")
		for _, v := range m.Metrics {
			return v.Value
		}
		return -1
	}
	testutil.Until(t, 10*time.Second, "hub b sees batch 1", func() bool { return value() == 1 })

	ns.Shutdown()
	ns.WaitForShutdown()
	testutil.Until(t, 10*time.Second, "hub a not ready", func() bool { return a.Ready() != nil })
	if err := a.Publish(t.Context(), []ingest.BusBatch{batch("m", 1, 2, now+1000, 1)}); err == nil {
		t.Fatal("publish during the outage succeeded")
	}
	bustest.Run(t, opts)
	testutil.Until(t, 20*time.Second, "hub a ready again", func() bool { return a.Ready() == nil })
	testutil.WaitFor(t, 20*time.Second, "publish after the outage", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return a.Publish(ctx, []ingest.BusBatch{batch("m", 1, 2, now+1000, 1)})
	})
	testutil.Until(t, 20*time.Second, "hub b's follower resumed", func() bool { return value() == 2 })
}
