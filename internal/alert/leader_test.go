package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	sysmontest "github.com/sysmonstm/sysmonstm/internal/testutil"

	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// webhookReceiver is a real HTTP webhook endpoint that records every
// payload it is sent.
type webhookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []notify.WebhookPayload
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook receiver: %v", err)
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.got = append(w.got, p)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// deliveries counts the alerts delivered, by "machine state" (e.g.
// "web-1 firing"), over every payload.
func (w *webhookReceiver) deliveries() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, p := range w.got {
		for _, a := range p.Alerts {
			out[a.Machine+" "+a.State]++
		}
	}
	return out
}

func (w *webhookReceiver) payloads() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got)
}

// cluster is n engines ("hubs") on one PostgreSQL database, fed the same
// batches (as the NATS bus feeds every hub every machine), with a shared
// test clock and one real webhook channel.
type cluster struct {
	t     *testing.T
	clk   *clock
	nodes []*harness
	dead  []bool
	recv  *webhookReceiver
	rule  Rule
}

// newCluster opens n engines; the first is the leader. One rule (cpu > 90,
// for 0s) routes to the webhook.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, clk: newClock(t0), recv: newWebhookReceiver(t), dead: make([]bool, n)}
	for range n {
		d, err := notify.NewDispatcher(notify.DispatcherOptions{MaxAttempts: 2, BaseBackoff: 10 * time.Millisecond, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, openHarnessOn(t, "postgres", dir, c.clk, Options{Sender: d, GroupWait: 500 * time.Millisecond, Elect: true}))
	}
	if !c.nodes[0].e.IsLeader() {
		t.Fatal("the first engine on the database is not the leader")
	}
	for _, h := range c.nodes[1:] {
		if h.e.IsLeader() {
			t.Fatal("a second engine on the database is leader too")
		}
	}
	ctx := context.Background()
	not, err := c.nodes[0].e.CreateNotifier(ctx, notify.Config{Name: "hook", Type: notify.TypeWebhook, URL: c.recv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c.rule = c.nodes[0].createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"for":"0s","notifiers":["` + not.Config.ID + `"]}`)
	for _, h := range c.nodes[1:] {
		if _, err := h.e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// feed shows every live engine one sample of cpu of each machine.
func (c *cluster) feed(v float64, machines ...string) {
	for i, h := range c.nodes {
		if !c.dead[i] {
			for _, m := range machines {
				h.observe(m, h.series("cpu", "cpu", "total"), v)
			}
		}
	}
}

// steps advances the clock by 100 ms n times, stepping every live engine.
func (c *cluster) steps(n int) {
	for range n {
		c.clk.Add(100 * time.Millisecond)
		for i, h := range c.nodes {
			if !c.dead[i] {
				h.step()
			}
		}
	}
}

// kill ends node i as SIGKILL would: its lock connection is closed by the
// server (pg_terminate_backend), its deliveries stop, and it is never
// stepped again — what it had collected but not sent dies with it.
func (c *cluster) kill(i int) {
	c.t.Helper()
	h := c.nodes[i]
	h.e.lead.mu.Lock()
	pid := h.e.lead.pid
	h.e.lead.mu.Unlock()
	if pid == 0 {
		c.t.Fatalf("node %d holds no lock", i)
	}
	h.kill()
	c.dead[i] = true
	var ok bool
	if err := c.nodes[(i+1)%len(c.nodes)].db.QueryRow(`SELECT pg_terminate_backend(?)`, pid).Scan(&ok); err != nil || !ok {
		c.t.Fatalf("terminate node %d's lock connection: %v %v", i, ok, err)
	}
}

// takeOver campaigns on the live followers until one leads (the lock is
// free once the dead leader's backend exited) and returns its index.
func (c *cluster) takeOver() int {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for i, h := range c.nodes {
			if c.dead[i] {
				continue
			}
			h.e.campaign(h.ctx)
			if h.e.IsLeader() {
				for j, o := range c.nodes {
					if j != i && !c.dead[j] {
						o.e.campaign(o.ctx)
						if o.e.IsLeader() {
							c.t.Fatalf("nodes %d and %d both lead", i, j)
						}
					}
				}
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no follower took over within 5 s")
	return -1
}

// waitDeliveries steps the cluster until the receiver has want (exactly),
// then keeps stepping a while to catch any extra delivery.
func (c *cluster) waitDeliveries(want map[string]int) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !equalCounts(c.recv.deliveries(), want) {
		if time.Now().After(deadline) {
			c.t.Fatalf("webhook deliveries %v, want %v", c.recv.deliveries(), want)
		}
		c.steps(1)
		time.Sleep(5 * time.Millisecond)
	}
	for range 20 {
		c.steps(1)
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.recv.deliveries(); !equalCounts(got, want) {
		c.t.Fatalf("webhook deliveries %v after settling, want %v", got, want)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// waitOutboxDone waits until the outbox has no open row.
func (c *cluster) waitOutboxDone(h *harness) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := countOutbox(context.Background(), h.db)
		if err != nil {
			c.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d outbox rows still open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterNotifiesOnce: three engines on one database, fed the same
// batches of two machines, send exactly one notification per machine and
// transition; followers list the leader's alerts (same ids) and publish
// its changes as live events.
func TestClusterNotifiesOnce(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	c.feed(95, "web-1", "web-2")
	c.waitDeliveries(map[string]int{"web-1 firing": 1, "web-2 firing": 1})
	if n := c.recv.payloads(); n != 1 {
		t.Fatalf("%d payloads, want 1 (both alerts in one group)", n)
	}
	leaderIDs := ids(c.nodes[0].alerts(StateFiring))
	for i, h := range c.nodes[1:] {
		if err := h.e.Follow(ctx); err != nil {
			t.Fatal(err)
		}
		if got := ids(h.alerts(StateFiring)); !slices.Equal(got, leaderIDs) {
			t.Fatalf("follower %d lists %v, leader %v", i+1, got, leaderIDs)
		}
	}
	c.feed(10, "web-1", "web-2")
	c.waitDeliveries(map[string]int{"web-1 firing": 1, "web-2 firing": 1, "web-1 resolved": 1, "web-2 resolved": 1})
	for i, h := range c.nodes[1:] {
		if err := h.e.Follow(ctx); err != nil {
			t.Fatal(err)
		}
		if as := h.alerts(StateFiring, StatePending); len(as) != 0 {
			t.Fatalf("follower %d still lists %+v", i+1, as)
		}
		if got := h.evs.states(); strings.Join(got, ",") != "firing,firing,resolved,resolved" {
			t.Fatalf("follower %d published %v", i+1, got)
		}
	}
	c.waitOutboxDone(c.nodes[0])
}

func ids(as []Alert) []string { return sortedIDs(as, func(a Alert) string { return a.ID }) }

// TestLeaderKilled: the leader dies (its lock connection cut, nothing
// cleaned up) at three moments of a notification's life; a follower takes
// over and the webhook gets exactly one message per transition: the new
// leader sends what the dead one recorded and did not send, sends what it
// never recorded, and does not repeat what it sent.
func TestLeaderKilled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(c *cluster) // from the firing sample to the kill
	}{
		{"before its first write", func(c *cluster) {}},
		{"during the group wait", func(c *cluster) {
			c.steps(2) // written and in the outbox; the group waits 500 ms
			if n, err := countOutbox(context.Background(), c.nodes[0].db); err != nil || n != 1 {
				c.t.Fatalf("outbox: %d open rows, %v; want 1", n, err)
			}
			if n := c.recv.payloads(); n != 0 {
				c.t.Fatalf("sent during the group wait: %d", n)
			}
		}},
		{"after sending", func(c *cluster) {
			c.waitDeliveries(map[string]int{"web-1 firing": 1})
			c.waitOutboxDone(c.nodes[0])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			c.feed(95, "web-1")
			tc.before(c)
			c.kill(0)
			next := c.takeOver()
			c.waitDeliveries(map[string]int{"web-1 firing": 1})
			c.feed(10, "web-1")
			c.waitDeliveries(map[string]int{"web-1 firing": 1, "web-1 resolved": 1})
			c.waitOutboxDone(c.nodes[next])
			if as := c.nodes[next].alerts(StateResolved); len(as) != 1 {
				t.Fatalf("history: %+v, want the one resolved alert", as)
			}
		})
	}
}

// TestLockLostLeaderAlive: the leader's lock connection is cut while the
// leader lives on and still believes it leads (it has not polled yet); a
// follower takes over. The old leader can neither write (its writes go
// through the dead lock connection) nor send (each send checks it), so
// there is one alert row, one delivery, and no open outbox row.
func TestLockLostLeaderAlive(t *testing.T) {
	c := newCluster(t, 3)
	old := c.nodes[0]
	old.e.lead.mu.Lock()
	pid := old.e.lead.pid
	old.e.lead.mu.Unlock()
	var ok bool
	if err := c.nodes[1].db.QueryRow(`SELECT pg_terminate_backend(?)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the lock connection: %v %v", ok, err)
	}
	var next int
	sysmontest.WaitFor(t, 5*time.Second, "a follower takes the lock", func() error {
		for i := 1; i < len(c.nodes); i++ {
			if c.nodes[i].e.campaign(c.nodes[i].ctx); c.nodes[i].e.IsLeader() {
				next = i
				return nil
			}
		}
		return errors.New("no follower leads")
	})
	if !old.e.IsLeader() {
		t.Fatal("the old leader already knows")
	}
	c.feed(95, "web-1")
	c.steps(8) // both believe they lead: write, group, send
	old.e.campaign(old.ctx)
	if old.e.IsLeader() {
		t.Fatal("the old leader did not step down")
	}
	c.waitDeliveries(map[string]int{"web-1 firing": 1})
	c.waitOutboxDone(c.nodes[next])
	var n int
	if err := c.nodes[next].db.QueryRow(`SELECT count(*) FROM alerts`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d alert rows, %v; want 1", n, err)
	}
}

// TestTakeoverKeepsForTimer: a follower that saw an episode begin later
// than the leader takes the leader's start on takeover, so the alert fires
// `for` after the leader first saw it, not after the follower did.
func TestTakeoverKeepsForTimer(t *testing.T) {
	c := newCluster(t, 2)
	ctx := context.Background()
	c.nodes[0].createRule(`{"name":"load","metric":"load","op":">","threshold":4,"for":"10s"}`)
	if _, err := c.nodes[1].e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	lead, next := c.nodes[0], c.nodes[1]
	load := func(hs ...*harness) {
		for _, h := range hs {
			h.observe("web-1", h.series("load"), 8)
		}
	}
	start := c.clk.Now()
	load(lead)
	for range 50 { // 5 s: only the leader sees the machine's load
		c.steps(1)
		load(lead)
	}
	for range 10 { // 1 s: both do
		c.steps(1)
		load(lead, next)
	}

	if a := lead.one(StatePending); !a.StartedAt.Equal(start) {
		t.Fatalf("leader's pending alert %+v", a)
	}
	c.kill(0)
	c.takeOver()
	for c.clk.Now().Sub(start) < 10*time.Second {
		c.steps(1)
		load(next)
	}
	c.steps(1)
	if a := next.one(StateFiring); !a.StartedAt.Equal(start) || a.FiredAt.Sub(start) > 10200*time.Millisecond {
		t.Fatalf("new leader's alert: %+v, want firing 10 s after %s", a, start)
	}
}

// TestAckOnFollower: an acknowledgement made on a follower is in force on
// the leader (no repeats) and visible on every engine.
func TestAckOnFollower(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	c.feed(95, "web-1")
	c.waitDeliveries(map[string]int{"web-1 firing": 1})
	id := c.nodes[0].one(StateFiring).ID
	if _, err := c.nodes[1].e.Acknowledge(ctx, id, true, "alice", "on it"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.nodes[0].e.ReloadAcks(ctx); err != nil || n != 1 {
		t.Fatalf("leader adopted %d acknowledgements, %v", n, err)
	}
	c.steps(2)
	for i, h := range c.nodes {
		a, err := h.e.Alert(ctx, id)
		if err != nil || !a.Acknowledged || a.Ack == nil || a.Ack.By != "alice" {
			t.Fatalf("node %d: %+v %v", i, a, err)
		}
		if as := h.alerts(StateFiring); len(as) != 1 || !as[0].Acknowledged {
			t.Fatalf("node %d lists %+v", i, as)
		}
	}
	// After a takeover the acknowledgement holds: it is in the row.
	c.kill(0)
	next := c.takeOver()
	c.steps(2)
	if a := c.nodes[next].one(StateFiring); a.ID != id || !a.Acknowledged {
		t.Fatalf("new leader's alert: %+v", a)
	}
}

// TestLeaderMetrics: sysmonstm_alert_leader is 1 on the leader only, and
// the new leader counts its takeover.
func TestLeaderMetrics(t *testing.T) {
	c := newCluster(t, 2)
	gauge := func(h *harness) string {
		return fmt.Sprint(testutil.ToFloat64(h.e.m.leader), testutil.ToFloat64(h.e.m.leaderChanges))
	}
	if g0, g1 := gauge(c.nodes[0]), gauge(c.nodes[1]); g0 != "1 1" || g1 != "0 0" {
		t.Fatalf("leader %s, follower %s", g0, g1)
	}
	c.kill(0)
	c.takeOver()
	if g := gauge(c.nodes[1]); g != "1 1" {
		t.Fatalf("new leader %s", g)
	}
}

// TestResignReleasesLock: a leader that stops cleanly gives the lock up
// (its connection is closed, not pooled where it would keep the lock), and
// a follower leads at its next try.
func TestResignReleasesLock(t *testing.T) {
	c := newCluster(t, 2)
	c.nodes[0].stop()
	c.dead[0] = true
	if c.nodes[0].e.IsLeader() {
		t.Fatal("a stopped engine still leads")
	}
	start := time.Now()
	if next := c.takeOver(); next != 1 {
		t.Fatalf("node %d leads", next)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("takeover after a clean stop took %s", d)
	}
}

// TestSQLiteAlwaysLeads: one hub on SQLite leads without a lock and writes
// no outbox, even asked to elect.
func TestSQLiteAlwaysLeads(t *testing.T) {
	h := openHarnessOn(t, "sqlite", t.TempDir(), newClock(t0), Options{Elect: true})
	if !h.e.IsLeader() || h.e.shared {
		t.Fatalf("leader %v, shared %v", h.e.IsLeader(), h.e.shared)
	}
	h.createNotifier("ops", "warning")
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"for":"0s"}`)
	h.observe("m1", h.series("cpu"), 95)
	h.advance(time.Second, 100*time.Millisecond, nil)
	h.waitSent(1)
	var n int
	if err := h.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'alert_outbox'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("alert_outbox on SQLite: %d %v", n, err)
	}
}

// BenchmarkTakeOver measures a takeover on a database with 1,000
// machines × 2 firing alerts written by the leader: the new leader loads
// the stored alerts and the outbox and reconciles its 2,000 active slots
// (its lock taken: the time between the old leader's death and the first
// notification is this plus up to one LeaderPoll).
func BenchmarkTakeOver(b *testing.B) {
	dir := b.TempDir()
	clk := newClock(t0)
	opts := Options{Elect: true, GroupWait: 10 * time.Millisecond}
	lead := openHarnessOn(b, "postgres", dir, clk, opts)
	next := openHarnessOn(b, "postgres", dir, clk, opts)
	ctx := context.Background()
	for _, h := range []*harness{lead, next} {
		if h == lead {
			for _, js := range []string{
				`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90,"for":"0s"}`,
				`{"id":"mem","name":"mem","metric":"mem","op":">","threshold":90,"for":"0s"}`,
			} {
				h.createRule(js)
			}
		} else if _, err := h.e.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
	const machines = 1000
	for i := range machines {
		m := fmt.Sprintf("m-%04d", i)
		for _, h := range []*harness{lead, next} {
			h.observe(m, h.series("cpu"), 95)
			h.observe(m, h.series("mem"), 95)
		}
	}
	lead.step()
	if as, err := lead.e.Alerts(ctx, AlertQuery{States: []string{StateFiring}, Limit: 10 * machines}); err != nil || len(as) != 2*machines {
		b.Fatalf("%d firing, want %d: %v", len(as), 2*machines, err)
	}
	b.ResetTimer()
	for range b.N {
		if err := next.e.takeOver(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		next.e.leader.Store(false) // a follower again, for the next round
		next.e.mu.Lock()
		clear(next.e.dirty)
		next.e.mu.Unlock()
		b.StartTimer()
	}
}
