package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/config"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// countingHub is a minimal hub for tests: it records hellos and series
// definitions, counts batch samples and acks every batch.
type countingHub struct {
	sysmonstmv1.UnimplementedIngestServer

	mu      sync.Mutex
	hellos  map[string]*sysmonstmv1.Hello // by machine id
	defs    map[string]int                // definitions per machine
	samples map[string]int64              // samples per machine
	stamps  map[string][]int64            // batch timestamps per machine, ms since epoch
	bad     []string                      // protocol violations
}

func (h *countingHub) Stream(stream grpc.BidiStreamingServer[sysmonstmv1.AgentMessage, sysmonstmv1.HubMessage]) error {
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := msg.GetHello()
	id := hello.GetMachineId()
	h.mu.Lock()
	h.hellos[id] = hello
	h.mu.Unlock()
	if err := stream.Send(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Welcome{Welcome: &sysmonstmv1.Welcome{}}}); err != nil {
		return err
	}
	defined := map[uint32]bool{}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		h.mu.Lock()
		if defs := msg.GetSeries(); defs != nil {
			for _, d := range defs.GetSeries() {
				defined[d.GetId()] = true
				h.defs[id]++
			}
		}
		b := msg.GetBatch()
		if b != nil {
			for _, sid := range b.GetSeriesIds() {
				if !defined[sid] {
					h.bad = append(h.bad, id+": undefined series")
				}
			}
			h.samples[id] += int64(len(b.GetValues()))
			h.stamps[id] = append(h.stamps[id], b.GetTimestampMs())
		}
		h.mu.Unlock()
		if b != nil {
			if err := stream.Send(&sysmonstmv1.HubMessage{Msg: &sysmonstmv1.HubMessage_Ack{Ack: &sysmonstmv1.Ack{Seq: b.GetSeq()}}}); err != nil {
				return err
			}
		}
	}
}

// startCountingHub serves a countingHub on a loopback port until the test
// ends and returns it and its address.
func startCountingHub(t *testing.T) (*countingHub, string) {
	t.Helper()
	hub := &countingHub{hellos: map[string]*sysmonstmv1.Hello{}, defs: map[string]int{}, samples: map[string]int64{}, stamps: map[string][]int64{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	sysmonstmv1.RegisterIngestServer(srv, hub)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return hub, lis.Addr().String()
}

func TestRunAgainstHub(t *testing.T) {
	hub, addr := startCountingHub(t)
	const machines, series = 20, 50
	sum, err := Run(context.Background(), Options{
		Hub: addr, Token: "t0k", Machines: machines, Series: series,
		Interval: 100 * time.Millisecond, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary %+v", sum)
	if sum.Machines != machines || sum.SeriesPerMachine != series {
		t.Errorf("summary %+v", sum)
	}
	// ~10 ticks × 20 machines × 50 series; slack for a slow race-detector run.
	if sum.SentSamples < 5*machines*series || sum.AckedSamples != sum.SentSamples || sum.Errors != 0 {
		t.Errorf("summary %+v: want every sent sample acked, no errors", sum)
	}
	if sum.DurationS < 0.9 || sum.DurationS > 2 || sum.SamplesPerSecond <= 0 {
		t.Errorf("duration %v s, rate %v", sum.DurationS, sum.SamplesPerSecond)
	}

	hub.mu.Lock()
	defer hub.mu.Unlock()
	if len(hub.hellos) != machines {
		t.Errorf("%d machines said hello, want %d", len(hub.hellos), machines)
	}
	var total int64
	for id, h := range hub.hellos {
		if !strings.HasPrefix(id, "loadgen-") || h.GetToken() != "t0k" || h.GetIntervalMs() != 100 || h.GetInfo().GetCpuThreads() == 0 {
			t.Errorf("hello %v", h)
		}
		if hub.defs[id] != series {
			t.Errorf("%s: %d definitions, want %d", id, hub.defs[id], series)
		}
		total += hub.samples[id]
	}
	if total != sum.AckedSamples {
		t.Errorf("hub received %d samples, summary says %d acked", total, sum.AckedSamples)
	}
	for _, b := range hub.bad {
		t.Error(b)
	}
	if _, ok := hub.hellos["loadgen-00"]; !ok {
		t.Errorf("machine ids %v: want loadgen-00 … loadgen-19", keys(hub.hellos))
	}
}

func TestPhasesSpreadOverInterval(t *testing.T) {
	o := Options{Hub: "h:1", Machines: 1000, Interval: time.Second}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	for i := range o.Machines {
		p := o.Phase(i)
		if p < 0 || p >= o.Interval || p%time.Millisecond != 0 {
			t.Fatalf("machine %d: phase %s, want whole ms in [0, %s)", i, p, o.Interval)
		}
		if p != o.Phase(i) {
			t.Fatalf("machine %d: phase not deterministic", i)
		}
		seen[p] = true
	}
	if len(seen) != 1000 { // 1,000 machines over 1,000 ms: one per ms
		t.Errorf("%d distinct phases of 1000 machines over 1s, want 1000", len(seen))
	}
	f := func(o Options, i int, want time.Duration) {
		t.Helper()
		if err := o.setDefaults(); err != nil {
			t.Fatal(err)
		}
		if got := o.Phase(i); got != want {
			t.Errorf("%d machines, interval %s: machine %d phase %s, want %s", o.Machines, o.Interval, i, got, want)
		}
	}
	f(Options{Hub: "h:1", Machines: 3, Interval: time.Second}, 1, 333*time.Millisecond)
	f(Options{Hub: "h:1", Machines: 3, Interval: time.Second}, 2, 666*time.Millisecond)
	f(Options{Hub: "h:1", Machines: 5000, Interval: time.Second}, 4999, 999*time.Millisecond)
	f(Options{Hub: "h:1", Machines: 1}, 0, 0)
	f(Options{Hub: "h:1", Machines: 1000, Interval: time.Second, SyncTicks: true}, 999, 0)
}

// TestRunTicks: by default each simulated machine stamps every batch at
// its own phase of the interval; with SyncTicks all share the boundary.
func TestRunTicks(t *testing.T) {
	for _, sync := range []bool{false, true} {
		hub, addr := startCountingHub(t)
		o := Options{Hub: addr, Machines: 10, Series: 20, Interval: 100 * time.Millisecond, Duration: 700 * time.Millisecond, SyncTicks: sync}
		sum, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.setDefaults(); err != nil { // for machineID
			t.Fatal(err)
		}
		want := map[bool]string{false: TicksSpread, true: TicksSync}[sync]
		if sum.Ticks != want {
			t.Errorf("summary ticks %q, want %q", sum.Ticks, want)
		}
		hub.mu.Lock()
		for i := range o.Machines {
			id := o.machineID(i)
			phase := int64(0)
			if !sync {
				phase = int64(10 * i) // 100 ms over 10 machines
			}
			if len(hub.stamps[id]) < 3 {
				t.Errorf("sync=%v %s: %d batches, want several", sync, id, len(hub.stamps[id]))
			}
			for _, ts := range hub.stamps[id] {
				if ts%100 != phase {
					t.Errorf("sync=%v %s: batch stamped %d, %d ms into the interval, want %d", sync, id, ts, ts%100, phase)
				}
			}
		}
		hub.mu.Unlock()
	}
}

// TestRunAgainstSeveralHubs: with a hub list the simulated agents spread
// over the hubs, and each machine's samples are all acked.
func TestRunAgainstSeveralHubs(t *testing.T) {
	var addrs []string
	var hubs []*countingHub
	for range 3 {
		hub, addr := startCountingHub(t)
		addrs = append(addrs, addr)
		hubs = append(hubs, hub)
	}
	const machines = 30
	sum, err := Run(context.Background(), Options{
		Hub: strings.Join(addrs, ","), Machines: machines, Series: 20,
		Interval: 100 * time.Millisecond, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.SentSamples == 0 || sum.AckedSamples != sum.SentSamples || sum.Errors != 0 {
		t.Errorf("summary %+v: want every sent sample acked, no errors", sum)
	}
	total := 0
	for i, h := range hubs {
		h.mu.Lock()
		n := len(h.hellos)
		h.mu.Unlock()
		t.Logf("hub %d: %d machines", i, n)
		if n == 0 || n == machines {
			t.Errorf("hub %d has %d of %d machines: not spread", i, n, machines)
		}
		total += n
	}
	if total != machines {
		t.Errorf("%d hellos over all hubs, want %d", total, machines)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRunRemoteWrite(t *testing.T) {
	var mu sync.Mutex
	perTs := map[int64]int{}
	var total int64
	var problems []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fail := func(s string) {
			problems = append(problems, s)
			http.Error(w, s, http.StatusBadRequest)
		}
		if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("Content-Type") != "application/x-protobuf" ||
			r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
			fail("headers " + r.Header.Get("Content-Type"))
			return
		}
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			fail("snappy: " + err.Error())
			return
		}
		var wr prompb.WriteRequest
		if err := wr.Unmarshal(raw); err != nil {
			fail("protobuf: " + err.Error())
			return
		}
		for _, ts := range wr.Timeseries {
			ls := ts.Labels
			if len(ls) < 2 || ls[0].Name != "__name__" {
				fail("no __name__ first")
				return
			}
			var machine string
			for i, l := range ls {
				if i > 0 && ls[i-1].Name >= l.Name {
					fail("labels not sorted")
					return
				}
				if l.Name == "machine" {
					machine = l.Value
				}
			}
			if !strings.HasPrefix(machine, "rw-") || len(ts.Samples) != 1 || ts.Samples[0].Timestamp%200 != 0 {
				fail("series " + ts.String())
				return
			}
			perTs[ts.Samples[0].Timestamp]++
			total++
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	const machines, series = 30, 100
	sum, err := Run(context.Background(), Options{
		RemoteWrite: srv.URL + "/api/v1/write", Machines: machines, Series: series,
		Interval: 200 * time.Millisecond, Duration: time.Second, MachinePrefix: "rw-",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary %+v", sum)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if sum.Errors != 0 || sum.AckedSamples != total || sum.SentSamples != total || total < 3*machines*series {
		t.Errorf("summary %+v, endpoint received %d samples", sum, total)
	}
	// Every tick is complete except possibly the newest: when the duration
	// ends in the middle of a tick, its remaining requests are not sent
	// (and not counted as sent, as the summary check above proves).
	var newest int64
	for ts := range perTs {
		newest = max(newest, ts)
	}
	for ts, n := range perTs {
		if n != machines*series && !(ts == newest && n < machines*series) {
			t.Errorf("tick %d: %d samples, want %d (every machine, every series)", ts, n, machines*series)
		}
	}
}

func TestRunRemoteWriteCountsErrors(t *testing.T) {
	var auth sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"), true)
		http.Error(w, "out of order sample", http.StatusBadRequest)
	}))
	defer srv.Close()
	sum, err := Run(context.Background(), Options{RemoteWrite: srv.URL, Token: "smt_x", Machines: 2, Series: 10, Interval: 100 * time.Millisecond, Duration: 350 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors == 0 || sum.AckedSamples != 0 || sum.SentSamples == 0 {
		t.Errorf("summary %+v", sum)
	}
	if len(sum.ErrorReasons) != 1 || sum.ErrorReasons[0].Count != sum.Errors || sum.ErrorReasons[0].Error != "400 Bad Request: out of order sample" {
		t.Errorf("reasons %+v, want the endpoint's answer counted %d times", sum.ErrorReasons, sum.Errors)
	}
	if err := sum.Err(); err == nil || !strings.Contains(err.Error(), "failed streams or requests") || !strings.Contains(err.Error(), "out of order sample") {
		t.Errorf("Err() = %v", err)
	}
	if _, ok := auth.Load("Bearer smt_x"); !ok {
		t.Error("the token was not sent as the bearer token")
	}
}

// refusingHub refuses every stream as the real hub refuses a token.
type refusingHub struct {
	sysmonstmv1.UnimplementedIngestServer
}

func (refusingHub) Stream(stream grpc.BidiStreamingServer[sysmonstmv1.AgentMessage, sysmonstmv1.HubMessage]) error {
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := msg.GetHello()
	return status.Errorf(codes.PermissionDenied, "token abc already wrote as 100 machine ids; create one for %q", hello.GetMachineId())
}

// TestRunAgainstHubReportsWhy: a hub that refuses every machine makes a run
// with errors whose reason is the hub's, and Err reports it.
func TestRunAgainstHubReportsWhy(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	sysmonstmv1.RegisterIngestServer(srv, refusingHub{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	sum, err := Run(context.Background(), Options{Hub: lis.Addr().String(), Machines: 3, Series: 20, Interval: 100 * time.Millisecond, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors < 3 || sum.AckedSamples != 0 || len(sum.ErrorReasons) != 1 || sum.ErrorReasons[0].Count != 3 ||
		!strings.Contains(sum.ErrorReasons[0].Error, `already wrote as 100 machine ids; create one for "<machine>"`) {
		t.Fatalf("summary %+v: want each of 3 machines to report the hub's refusal, as one reason", sum)
	}
	if err := sum.Err(); err == nil || !strings.Contains(err.Error(), "3× token rejected by hub") {
		t.Errorf("Err() = %v", err)
	}
	ok := Summary{SentSamples: 5, AckedSamples: 5}
	if err := ok.Err(); err != nil {
		t.Errorf("Err() of a run without errors = %v", err)
	}
}

func TestReasonsBounded(t *testing.T) {
	r := newReasons()
	for i := range 30 {
		r.add(fmt.Sprint("reason ", i%15))
	}
	got := r.list()
	if len(got) != maxReasons+1 {
		t.Fatalf("%d reasons, want %d: %+v", len(got), maxReasons+1, got)
	}
	var total int64
	for _, g := range got {
		total += g.Count
	}
	if total != 30 || got[0].Error != otherReason || got[0].Count != 10 || got[1] != (Reason{"reason 0", 2}) {
		t.Errorf("reasons %+v", got)
	}
}

func TestRunUntilCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	sum, err := Run(ctx, Options{RemoteWrite: srv.URL, Series: 5, Interval: 50 * time.Millisecond})
	if err != nil || sum.AckedSamples == 0 || sum.Machines != 1 {
		t.Errorf("Run = %+v, %v", sum, err)
	}
}

func TestOptionsErrors(t *testing.T) {
	f := func(o Options, want string) {
		t.Helper()
		_, err := Run(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run(%+v): error %v, want %q", o, err, want)
		}
	}
	f(Options{}, "no target")
	if _, err := Run(context.Background(), Options{}); err == nil || strings.Contains(err.Error(), "--") ||
		!strings.Contains(config.Flagged(err).Error(), "(--hub) or a remote-write URL (--remote-write)") {
		t.Errorf("no target: %v; want setting keys, shown as flags by config.Flagged", err)
	}
	f(Options{RemoteWrite: "localhost:9090"}, "want http(s)://")
	f(Options{Hub: "h:1,h:1"}, `hub "h:1": listed twice`)
	f(Options{Hub: "h:1,,h:2"}, `hub "h:1,,h:2": empty entry`)
	f(Options{Hub: "h:1", Machines: -1}, "machines -1")
	f(Options{Hub: "h:1", Series: 60000}, "series 60000")
	f(Options{Hub: "h:1", Interval: time.Millisecond}, "interval 1ms")
	f(Options{Hub: "h:1", Duration: -time.Second}, "duration -1s")
}
