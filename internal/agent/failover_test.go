package agent

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// hubSet is several testHubs, each with its own store, as hubs with their
// own embedded storage are.
type hubSet struct {
	hubs []*testHub
	srvs []*server
}

func startHubs(t *testing.T, n int) *hubSet {
	t.Helper()
	hs := &hubSet{}
	for range n {
		h := newTestHub()
		hs.hubs = append(hs.hubs, h)
		hs.srvs = append(hs.srvs, startServer(t, h, "127.0.0.1:0"))
	}
	return hs
}

func (hs *hubSet) list() string {
	var addrs []string
	for _, s := range hs.srvs {
		addrs = append(addrs, s.addr)
	}
	return strings.Join(addrs, ",")
}

// index returns the position of the hub at addr ("" or unknown: -1).
func (hs *hubSet) index(addr string) int {
	for i, s := range hs.srvs {
		if s.addr == addr {
			return i
		}
	}
	return -1
}

// checkUnion checks that the hubs together hold every seq from 1 to the
// newest without a gap, that no hub was sent a batch twice, and that no
// hub saw a protocol violation. It returns the newest seq.
func (hs *hubSet) checkUnion(t *testing.T) uint64 {
	t.Helper()
	all := map[uint64]int{}
	var newest uint64
	for i, h := range hs.hubs {
		h.checkViolations(t)
		h.mu.Lock()
		if h.received != len(h.stored) && !h.discard {
			t.Errorf("hub %d received %d batches for %d distinct seqs: a batch was sent twice to one hub", i, h.received, len(h.stored))
		}
		for s := range h.stored {
			all[s]++
			newest = max(newest, s)
		}
		h.mu.Unlock()
	}
	for s := uint64(1); s <= newest; s++ {
		if all[s] == 0 {
			t.Fatalf("seq %d is on no hub (newest %d): a gap", s, newest)
		}
	}
	return newest
}

// hubAddr returns the address part of Stats.Hub.
func hubAddr(a *Agent) string {
	h, _, _ := strings.Cut(a.Stats().Hub, " ")
	return h
}

// TestFailoverReplaysOnAnotherHub: the hub holding the agent goes away,
// once by closing its connections (a killed process) and once by going
// silent with TCP up (a host that vanished: no reset ever comes). Each time
// the agent is streaming to another hub soon after, counts the failover,
// and the hubs together hold every batch, each hub every batch once.
func TestFailoverReplaysOnAnotherHub(t *testing.T) {
	for _, mode := range []string{"closed", "silent"} {
		t.Run(mode, func(t *testing.T) {
			hs := startHubs(t, 3)
			a := startAgent(t, testOptions(hs.list()), (&counter{}).source, nil)
			waitFor(t, 5*time.Second, "connected", func() bool { return a.Stats().Connected })
			first := hs.index(hubAddr(a))
			if first < 0 {
				t.Fatalf("Stats.Hub %q is none of %s", a.Stats().Hub, hs.list())
			}
			waitFor(t, 5*time.Second, "batches on the first hub", func() bool { _, _, n := hs.hubs[first].seqs(); return n >= 5 })

			lost := time.Now()
			if mode == "closed" {
				hs.srvs[first].stop()
			} else {
				hs.hubs[first].mu.Lock()
				hs.hubs[first].discard = true
				hs.hubs[first].mu.Unlock()
			}
			waitFor(t, 10*time.Second, "failover", func() bool {
				i := hs.index(hubAddr(a))
				return i >= 0 && i != first && a.Stats().Failovers == 1
			})
			took := time.Since(lost)
			t.Logf("%s: on hub %d after %s", mode, hs.index(hubAddr(a)), took.Round(time.Millisecond))
			// Silence is noticed by the ack timeout: interval + timeout +
			// the watchdog's tick, then jitter (≤ backoffBase) and connect.
			if limit := FailoverAckTimeout + time.Second; mode == "silent" && took > limit {
				t.Errorf("failover took %s, want at most %s", took, limit)
			}
			next := hs.hubs[hs.index(hubAddr(a))]
			newest := a.Stats().Collected
			waitFor(t, 5*time.Second, "replay and new batches on the survivor", func() bool {
				_, last, _ := next.seqs()
				return last > uint64(newest)+3
			})
			if s := a.Stats(); s.Resent == 0 && mode == "silent" {
				t.Errorf("nothing replayed after the silent hub: %+v", s)
			}
			n := hs.checkUnion(t)
			t.Logf("%d batches, all on some hub", n)
		})
	}
}

// TestFailoverSpreadsOverSurvivors: when a hub goes, its agents land on the
// surviving hubs at random, not all on the first one listed. Each moving
// agent picks one of the two survivors at random, so with n agents moving
// all pick the same one with probability 2^(1-n): 48 agents put at least
// 16 on the busiest hub, a false alarm once in ~32,000 runs (with 12, the
// first version of this test, it was once in 8 to 16 runs).
func TestFailoverSpreadsOverSurvivors(t *testing.T) {
	hs := startHubs(t, 3)
	for _, h := range hs.hubs {
		h.shared = true
	}
	const agents = 48
	var as []*Agent
	for i := range agents {
		o := testOptions(hs.list())
		o.MachineID = fmt.Sprintf("m-%d", i)
		as = append(as, startAgent(t, o, (&counter{}).source, nil))
	}
	on := func() [3]int {
		var n [3]int
		for _, a := range as {
			if i := hs.index(hubAddr(a)); i >= 0 {
				n[i]++
			}
		}
		return n
	}
	waitFor(t, 20*time.Second, "all connected", func() bool { n := on(); return n[0]+n[1]+n[2] == agents })
	start := on()
	t.Logf("start: %v", start)
	if slices.Contains(start[:], agents) {
		t.Fatalf("every agent started on one hub: %v", start)
	}
	// Kill the busiest hub; its agents must not all move to one survivor.
	dead := slices.Index(start[:], slices.Max(start[:]))
	moved := start[dead]
	hs.srvs[dead].stop()
	waitFor(t, 30*time.Second, "everyone on a survivor", func() bool { n := on(); return n[dead] == 0 && n[0]+n[1]+n[2] == agents })
	after := on()
	t.Logf("after hub %d died: %v", dead, after)
	if moved >= 8 {
		for i, n := range after {
			if i != dead && n == start[i] {
				t.Errorf("no agent of the dead hub moved to hub %d (%v → %v): they herded", i, start, after)
			}
		}
	}
}

// TestHubPicker: the first pick is a stable function of the machine id and
// spreads machines over the list; later picks avoid hubs that failed
// recently, at random, and fall back to the one that failed longest ago.
func TestHubPicker(t *testing.T) {
	hubs := []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"}
	ctx := context.Background()
	now := time.Unix(1e9, 0)
	count := map[string]int{}
	for i := range 300 {
		p := hubPicker{hubs: hubs, machine: fmt.Sprintf("host-%d", i)}
		ep, n, err := p.pick(ctx, now)
		if err != nil || n != 3 {
			t.Fatal(ep, n, err)
		}
		again := hubPicker{hubs: hubs, machine: p.machine}
		if ep2, _, _ := again.pick(ctx, now); ep2 != ep {
			t.Fatalf("machine %s: first pick %s, then %s", p.machine, ep, ep2)
		}
		count[ep.addr]++
	}
	for _, h := range hubs {
		if count[h] < 60 {
			t.Errorf("first picks %v: hub %s gets too few of 300 machines", count, h)
		}
	}

	p := hubPicker{hubs: hubs, machine: "m", picked: true}
	p.failed(hubs[0], now)
	got := map[string]int{}
	for range 200 {
		ep, _, _ := p.pick(ctx, now.Add(time.Second))
		got[ep.addr]++
	}
	if got[hubs[0]] != 0 || got[hubs[1]] < 50 || got[hubs[2]] < 50 {
		t.Errorf("picks after hub 0 failed: %v, want hubs 1 and 2 about evenly", got)
	}
	if ep, _, _ := p.pick(ctx, now.Add(hubCooldown)); ep.addr == "" {
		t.Error("no pick")
	}
	p.failed(hubs[1], now.Add(2*time.Second))
	p.failed(hubs[2], now.Add(3*time.Second))
	for range 20 {
		if ep, _, _ := p.pick(ctx, now.Add(4*time.Second)); ep.addr != hubs[0] {
			t.Fatalf("all hubs failed: picked %s, want %s (failed longest ago)", ep.addr, hubs[0])
		}
	}
}

// resolverFunc adapts a function to Resolver.
type resolverFunc func(ctx context.Context, host string) ([]string, error)

func (f resolverFunc) LookupHost(ctx context.Context, host string) ([]string, error) {
	return f(ctx, host)
}

// TestHubNameResolvedEachAttempt: a hub name is looked up again before each
// connection attempt, its addresses become separate hubs (named after the
// name for TLS), and one name that fails leaves the others usable.
func TestHubNameResolvedEachAttempt(t *testing.T) {
	var mu sync.Mutex
	answers := map[string][]string{"hubs.example": {"10.0.0.2", "10.0.0.1"}}
	lookups := 0
	res := resolverFunc(func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups++
		if a, ok := answers[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	var warned []string
	p := hubPicker{hubs: []string{"hubs.example:50051", "gone.example:50051", "10.0.0.9:7"}, resolver: res, machine: "m",
		log: func(msg string, args ...any) { warned = append(warned, fmt.Sprint(msg, args)) }}
	eps, err := p.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []endpoint{{"10.0.0.1:50051", "hubs.example:50051"}, {"10.0.0.2:50051", "hubs.example:50051"}, {addr: "10.0.0.9:7"}}
	if !slices.Equal(eps, want) {
		t.Errorf("endpoints %v, want %v", eps, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "gone.example:50051") {
		t.Errorf("warnings %q, want one naming gone.example:50051", warned)
	}
	mu.Lock()
	answers["hubs.example"] = []string{"10.0.0.3", "10.0.0.3"}
	mu.Unlock()
	if _, n, _ := p.pick(context.Background(), time.Now()); n != 2 {
		t.Errorf("after the records changed: %d hubs, want 2 (10.0.0.3 once, 10.0.0.9)", n)
	}
	if lookups != 4 {
		t.Errorf("%d lookups, want 4 (two names, twice)", lookups)
	}
	only := hubPicker{hubs: []string{"gone.example:1"}, resolver: res, log: func(string, ...any) {}}
	if _, _, err := only.pick(context.Background(), time.Now()); err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("nothing resolves: err %v", err)
	}
}

// FuzzParseHubs: any --hub value is either an error or a list of valid,
// distinct HOST:PORT addresses that parses back to itself.
func FuzzParseHubs(f *testing.F) {
	for _, s := range []string{"127.0.0.1:50051", "a:1,b:2", " a:1 , [::1]:2", "a:1,,b:2", "a:1,a:1", "h:0", "x", "hubs.example.net.:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hubs, err := ParseHubs(s)
		if err != nil {
			if CheckHubSetting(s) == nil {
				t.Fatalf("ParseHubs(%q) failed (%v) but CheckHubSetting passed", s, err)
			}
			return
		}
		if len(hubs) == 0 {
			t.Fatalf("ParseHubs(%q): no error and no hubs", s)
		}
		again, err := ParseHubs(strings.Join(hubs, ","))
		if err != nil || !slices.Equal(again, hubs) {
			t.Fatalf("ParseHubs(%q) = %q; joined and parsed again: %q, %v", s, hubs, again, err)
		}
		for _, h := range hubs {
			if strings.ContainsAny(h, ", \t") {
				t.Fatalf("ParseHubs(%q): entry %q has a separator or space", s, h)
			}
		}
	})
}

// TestRepeatedFailoversStayQuick: with several hubs, a stream that lived
// failoverStableAfter resets the reconnect backoff, so each failover of a
// series waits at most backoffBase, not a backoff doubled by the earlier
// ones.
func TestRepeatedFailoversStayQuick(t *testing.T) {
	hs := startHubs(t, 3)
	a := startAgent(t, testOptions(hs.list()), (&counter{}).source, func(a *Agent) {
		a.backoffBase, a.backoffMax = 200*time.Millisecond, 10*time.Second
		a.failoverStableAfter = 300 * time.Millisecond
	})
	waitFor(t, 5*time.Second, "connected", func() bool { return hs.index(hubAddr(a)) >= 0 })
	for round := range 6 {
		time.Sleep(400 * time.Millisecond) // longer than failoverStableAfter
		cur := hs.index(hubAddr(a))
		hs.srvs[cur].stop()
		lost := time.Now()
		waitFor(t, 10*time.Second, "failover", func() bool { i := hs.index(hubAddr(a)); return i >= 0 && i != cur })
		took := time.Since(lost)
		t.Logf("round %d: %s", round, took.Round(time.Millisecond))
		if took > 600*time.Millisecond {
			t.Errorf("round %d: failover took %s, want ≤ backoffBase (200ms) plus connecting", round, took)
		}
		hs.srvs[cur].start()
	}
}

// TestRunRefusesUnusableDialOptions: sessions dial their own connections,
// but options no connection could use (no transport security) still end
// Run at once with the reason instead of being retried forever.
func TestRunRefusesUnusableDialOptions(t *testing.T) {
	o := testOptions("127.0.0.1:1,127.0.0.1:2")
	o.DialOptions = []grpc.DialOption{grpc.WithUserAgent("x")}
	a, err := New(o, (&counter{}).source)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "transport security") {
		t.Errorf("Run = %v, want an error about transport security", err)
	}
}
