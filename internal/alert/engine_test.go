package alert

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

const cpuRule = `{"name":"cpu high","metric":"cpu_usage_percent{cpu=\"total\"}","op":">","threshold":90,"for":"5m","severity":"critical"}`

func TestPendingFiresAfterFor(t *testing.T) {
	h := newHarness(t, Options{})
	h.createNotifier("ops", "critical")
	h.createRule(cpuRule)
	cpu := h.series("cpu_usage_percent", "cpu", "total")
	other := h.series("cpu_usage_percent", "cpu", "0") // not selected by the matcher

	h.observe("web-1", other, 99)
	h.observe("web-1", cpu, 50)
	h.step()
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("alerts below threshold: %+v", as)
	}
	h.clk.Add(time.Second)
	h.observe("web-1", cpu, 95)
	h.step()
	p := h.one(StatePending)
	if p.State != StatePending || p.Value != 95 || p.Machine != "web-1" || p.Labels["cpu"] != "total" || p.FiredAt != nil {
		t.Fatalf("pending alert = %+v", p)
	}
	started := h.clk.Now()
	// Samples keep breaching; it fires exactly when `for` has elapsed.
	h.advance(5*time.Minute-time.Second, time.Second, func() { h.observe("web-1", cpu, 96) })
	if a := h.one(); a.State != StatePending {
		t.Fatalf("fired before for: %+v", a)
	}
	h.clk.Add(time.Second)
	h.observe("web-1", cpu, 97)
	h.step()
	a := h.one()
	if a.State != StateFiring || a.ID != p.ID || a.Value != 97 || a.FiredAt == nil || !a.FiredAt.Equal(started.Add(5*time.Minute)) || !a.StartedAt.Equal(started) {
		t.Fatalf("firing alert = %+v (started %v)", a, started)
	}
	if !strings.Contains(a.Description, "web-1") || !strings.Contains(a.Description, "97") {
		t.Fatalf("description %q lacks machine or value", a.Description)
	}
	h.clk.Add(time.Second)
	h.step() // group wait (500ms) elapsed
	msgs := h.waitSent(1)
	if msgs[0].cfg.ID != "ops" || msgs[0].msg.Status != notify.StatusFiring || len(msgs[0].msg.Alerts) != 1 || msgs[0].msg.Alerts[0].ID != a.ID {
		t.Fatalf("notification = %+v", msgs[0])
	}
	if got := h.evs.states(); !slices.Equal(got, []string{"pending", "firing"}) {
		t.Fatalf("events %v, want pending then firing", got)
	}
}

func TestPendingPromotedBetweenSamples(t *testing.T) {
	h := newHarness(t, Options{})
	h.createRule(`{"name":"cpu","metric":"cpu_usage_percent","op":">","threshold":90,"for":"10s"}`)
	cpu := h.series("cpu_usage_percent", "cpu", "total")
	h.observe("m", cpu, 95)
	h.clk.Add(9 * time.Second)
	h.observe("m", cpu, 95)
	h.clk.Add(1100 * time.Millisecond) // no sample: Run's tick promotes it
	h.step()
	if a := h.one(); a.State != StateFiring {
		t.Fatalf("not promoted between samples: %+v", a)
	}

	// A pending alert whose series went quiet is not promoted by the tick.
	h2 := newHarness(t, Options{})
	h2.createRule(`{"name":"cpu","metric":"cpu_usage_percent","op":">","threshold":90,"for":"10s"}`)
	h2.observe("m", h2.series("cpu_usage_percent"), 95)
	h2.clk.Add(30 * time.Second)
	h2.step()
	if a := h2.one(); a.State != StatePending {
		t.Fatalf("quiet series promoted: %+v", a)
	}
}

func TestHysteresis(t *testing.T) {
	h := newHarness(t, Options{})
	h.createRule(`{"name":"disk","metric":"fs","op":">","threshold":90,"clear":85,"for":"0s"}`)
	s := h.series("fs", "mountpoint", "/")
	f := func(v float64, want string) {
		t.Helper()
		h.clk.Add(time.Second)
		h.observe("m", s, v)
		h.step()
		as := h.alerts(StatePending, StateFiring)
		got := "none"
		if len(as) == 1 {
			got = as[0].State
		}
		if got != want {
			t.Fatalf("after %v: state %s, want %s", v, got, want)
		}
	}
	f(89, "none")
	f(91, "firing") // for 0s: straight to firing
	f(88, "firing") // below threshold, above clear
	f(86, "firing")
	f(85, "none") // > 85 no longer holds
	f(88, "none") // needs > 90 again
	f(90.5, "firing")
	r := h.alerts(StateResolved)
	if len(r) != 1 || r[0].Value != 85 || r[0].ResolvedAt == nil || r[0].Acknowledged {
		t.Fatalf("resolved = %+v", r)
	}

	// Below-threshold rules mirror it: < 10 fires, clear 15 resolves at ≥ 15.
	h2 := newHarness(t, Options{})
	h2.createRule(`{"name":"free","metric":"free","op":"<","threshold":10,"clear":15}`)
	s2 := h2.series("free")
	for _, c := range []struct {
		v    float64
		want int
	}{{20, 0}, {9, 1}, {12, 1}, {14.9, 1}, {15, 0}} {
		h2.clk.Add(time.Second)
		h2.observe("m", s2, c.v)
		if n := len(h2.alerts()); n != c.want {
			t.Fatalf("< rule after %v: %d active, want %d", c.v, n, c.want)
		}
	}
}

func TestFlappingNotifiesOncePerEpisode(t *testing.T) {
	h := newHarness(t, Options{})
	h.createNotifier("ops", "warning")
	h.createRule(`{"name":"flap","metric":"x","op":">","threshold":90,"clear":80,"for":"10s"}`)
	s := h.series("x")
	// Flapping across the threshold faster than `for`: never fires.
	i := 0
	h.advance(2*time.Minute, time.Second, func() {
		i++
		h.observe("m", s, []float64{95, 50}[i%2])
	})
	if got := h.settle(); len(got) != 0 {
		t.Fatalf("flapping below for sent %d notifications", len(got))
	}
	if as := h.alerts("resolved"); len(as) != 0 {
		t.Fatalf("pending alerts that broke off are history: %+v", as)
	}
	// Sustained: fires once; flapping between threshold and clear keeps it
	// firing without further notifications.
	h.advance(12*time.Second, time.Second, func() { h.observe("m", s, 95) })
	h.advance(time.Minute, time.Second, func() {
		i++
		h.observe("m", s, []float64{95, 85}[i%2])
	})
	got := h.waitSent(1)
	if got = h.settle(); len(got) != 1 || got[0].msg.Status != notify.StatusFiring {
		t.Fatalf("notifications %+v, want one firing", got)
	}
	// Resolving sends exactly one resolved message.
	h.advance(2*time.Second, time.Second, func() { h.observe("m", s, 10) })
	got = h.waitSent(2)
	if got = h.settle(); len(got) != 2 || got[1].msg.Status != notify.StatusResolved || got[1].msg.Alerts[0].State != StateResolved {
		t.Fatalf("notifications %+v, want firing then resolved", got)
	}
}

func TestWindowAggregation(t *testing.T) {
	f := func(agg string, values []float64, wantFiring bool) {
		t.Helper()
		h := newHarness(t, Options{})
		js := fmt.Sprintf(`{"name":"w","metric":"v","op":">","threshold":50,"aggregation":%q,"window":"10s","for":"0s"}`, agg)
		if agg == AggLast {
			js = `{"name":"w","metric":"v","op":">","threshold":50}`
		}
		h.createRule(js)
		s := h.series("v")
		for _, v := range values {
			h.clk.Add(time.Second)
			h.observe("m", s, v)
		}
		firing := len(h.alerts(StateFiring)) == 1
		if firing != wantFiring {
			t.Fatalf("%s over %v: firing %v, want %v", agg, values, firing, wantFiring)
		}
	}
	// avg: one spike does not fire; the window's mean does.
	f("avg", []float64{10, 10, 10, 10, 100}, false)        // mean 28
	f("avg", []float64{40, 60, 60, 60, 60}, true)          // mean 56
	f("avg", []float64{100, 100, 100, 100, 100, 10}, true) // mean 85
	// The window slides: old spikes leave it after 10 s.
	f("avg", []float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f("max", []float64{10, 10, 60, 10, 10}, true)
	f("max", []float64{60, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, false)
	f("min", []float64{60, 60, 40, 60}, false)
	f("min", []float64{40, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60}, true)
	f("last", []float64{100, 100, 10}, false)
}

func TestWindowValues(t *testing.T) {
	w := newWindow(aggAvg, 10_000)
	for i, v := range []float64{1, 2, 3} {
		w.add(int64(i)*1000, v)
	}
	if got := w.value(); got != 2 {
		t.Fatalf("avg = %v, want 2", got)
	}
	// Older than the window: ignored.
	w.add(100_000, 10)
	w.add(50_000, 1000)
	if got := w.value(); got != 10 {
		t.Fatalf("avg after jump = %v, want 10", got)
	}
	// Long windows use 60 buckets.
	long := newWindow(aggMax, int64(time.Hour/time.Millisecond))
	if len(long.vals) != 60 || long.width != 60_000 {
		t.Fatalf("1h window: %d buckets of %d ms", len(long.vals), long.width)
	}
	long.add(0, 5)
	long.add(59*60_000, 3)
	if long.value() != 5 {
		t.Fatalf("max over 1h = %v", long.value())
	}
	long.add(60*60_000, 1) // the bucket of ts 0 leaves the window
	if long.value() != 3 {
		t.Fatalf("max after slide = %v", long.value())
	}
}

// TestWindowMatchesReference compares the incremental window with a
// brute-force aggregate over the same buckets, on random sample sequences
// with gaps and late samples.
func TestWindowMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, agg := range []aggKind{aggAvg, aggMax, aggMin} {
		for _, windowMs := range []int64{1000, 10_000, 60_000, 300_000} {
			w := newWindow(agg, windowMs)
			n := int64(len(w.vals))
			type sample struct {
				idx int64
				v   float64
			}
			var kept []sample
			ts := int64(1_700_000_000_000)
			newest := int64(math.MinInt64)
			for i := 0; i < 3000; i++ {
				switch r := rnd.IntN(20); {
				case r == 0:
					ts += windowMs * int64(1+rnd.IntN(3)) // a gap
				case r < 3:
					ts -= int64(rnd.IntN(int(windowMs))) // late sample
				default:
					ts += 1000
				}
				v := math.Round(rnd.NormFloat64()*1000) / 8
				got := w.add(ts, v)
				idx := ts / w.width
				if newest == math.MinInt64 || idx > newest {
					newest = idx
				}
				if idx > newest-n {
					kept = append(kept, sample{idx, v})
				}
				var sum, cnt float64
				ext := math.NaN()
				for _, s := range kept {
					if s.idx <= newest-n {
						continue
					}
					sum += s.v
					cnt++
					if ext != ext || (agg == aggMax && s.v > ext) || (agg == aggMin && s.v < ext) {
						ext = s.v
					}
				}
				want := ext
				if agg == aggAvg {
					want = sum / cnt
				}
				if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Fatalf("agg %d window %d ms sample %d: got %v, want %v", agg, windowMs, i, got, want)
				}
			}
		}
	}
}

func TestOfflineRule(t *testing.T) {
	h := newHarness(t, Options{})
	h.createNotifier("ops", "critical")
	h.createRule(`{"name":"offline","kind":"offline","for":"1m","severity":"critical"}`)
	s := h.series("up")
	h.observe("web-1", s, 1)
	h.observe("web-2", s, 1)
	// web-2 keeps sending, web-1 goes quiet.
	h.advance(59*time.Second, time.Second, func() { h.observe("web-2", s, 1) })
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("offline before for: %+v", as)
	}
	h.advance(2*time.Second, time.Second, func() { h.observe("web-2", s, 1) })
	a := h.one()
	if a.Machine != "web-1" || a.State != StateFiring || a.Kind != KindOffline || a.Value < 60 || a.Threshold != 60 {
		t.Fatalf("offline alert = %+v", a)
	}
	if !strings.Contains(a.Description, "web-1 sent no data for 1m") {
		t.Fatalf("description %q", a.Description)
	}
	h.waitSent(1)
	// The next sample resolves it at once.
	h.clk.Add(time.Second)
	h.observe("web-1", s, 1)
	h.step()
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("still active after data: %+v", as)
	}
	if r := h.one(StateResolved); r.ID != a.ID {
		t.Fatalf("resolved %+v", r)
	}
	h.clk.Add(time.Second)
	h.step()
	if got := h.waitSent(2); got[1].msg.Status != notify.StatusResolved {
		t.Fatalf("second message %+v", got[1].msg)
	}
}

func TestOtherAlertsSurviveOfflineUntilStale(t *testing.T) {
	h := newHarness(t, Options{StaleAfter: 5 * time.Minute})
	h.createRule(`{"name":"offline","kind":"offline","for":"1m"}`)
	h.createRule(`{"name":"disk","metric":"fs","op":">","threshold":90}`)
	h.observe("m", h.series("fs"), 95)
	h.advance(2*time.Minute, time.Second, nil)
	as := h.alerts(StateFiring)
	if len(as) != 2 {
		t.Fatalf("want the disk alert and the offline alert firing, have %+v", as)
	}
	h.advance(3*time.Minute+time.Second, time.Second, nil)
	as = h.alerts(StateFiring)
	if len(as) != 1 || as[0].Kind != KindOffline {
		t.Fatalf("after 5 min without samples only the offline alert fires; have %+v", as)
	}
	r := h.one(StateResolved)
	if r.RuleName != "disk" || r.ResolvedReason != "stale" {
		t.Fatalf("stale resolution %+v", r)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	h := openHarness(t, dir, clk, Options{})
	h.createNotifier("ops", "warning")
	h.createRule(`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90}`)
	h.createRule(`{"id":"slow","name":"slow","metric":"mem","op":">","threshold":90,"for":"1h"}`)
	h.createRule(`{"id":"off","name":"offline","kind":"offline","for":"1m"}`)
	h.observe("m1", h.series("cpu", "cpu", "total"), 95)
	h.observe("m1", h.series("mem", "kind", "ram"), 95)
	h.observe("m2", h.series("cpu", "cpu", "total"), 10)
	h.advance(2*time.Second, time.Second, nil)
	firing := h.one(StateFiring)
	pending := h.one(StatePending)
	h.waitSent(1)
	// m2 goes offline.
	h.advance(90*time.Second, time.Second, func() {
		h.observe("m1", h.series("cpu", "cpu", "total"), 95)
		h.observe("m1", h.series("mem", "kind", "ram"), 95)
	})
	off := h.alerts(StateFiring)
	if len(off) != 2 {
		t.Fatalf("want cpu and offline firing, have %+v", off)
	}
	h.waitSent(2)
	h.stop()
	h.e.stopWorkers()

	// A new engine on the same database: the same alerts, nothing re-sent.
	clk.Add(10 * time.Second)
	h2 := openHarness(t, dir, clk, Options{})
	h2.createNotifier("ops", "warning")
	h2.step()
	if got := h2.alerts(); len(got) != 3 {
		t.Fatalf("after restart %d active alerts, want 3: %+v", len(got), got)
	}
	h2.clk.Add(time.Second)
	h2.observe("m1", h2.series("cpu", "cpu", "total"), 96)
	h2.observe("m1", h2.series("mem", "kind", "ram"), 96)
	h2.step()
	a, err := h2.e.Alert(context.Background(), firing.ID)
	if err != nil || a.State != StateFiring {
		t.Fatalf("restored firing alert: %+v %v", a, err)
	}
	p, err := h2.e.Alert(context.Background(), pending.ID)
	if err != nil || p.State != StatePending || !p.StartedAt.Equal(pending.StartedAt) {
		t.Fatalf("restored pending alert: %+v %v (was %+v)", p, err, pending)
	}
	h2.clk.Add(time.Second)
	h2.step()
	if got := h2.settle(); len(got) != 0 {
		t.Fatalf("restart re-sent %+v", got)
	}
	// Resolution still notifies: the notified mark survived.
	h2.clk.Add(time.Second)
	h2.observe("m1", h2.series("cpu", "cpu", "total"), 10)
	h2.observe("m2", h2.series("cpu", "cpu", "total"), 10) // m2 is back: its offline alert resolves
	h2.clk.Add(time.Second)
	h2.step()
	h2.clk.Add(time.Second)
	h2.step() // the group wait passed
	got := h2.waitSent(1)
	if got[0].msg.Status != notify.StatusResolved || len(got[0].msg.Alerts) != 2 {
		t.Fatalf("after restart: %+v, want one resolved message with 2 alerts", got[0].msg)
	}
}

func TestRestoredAlertOfDeletedSeriesGoesStale(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	h := openHarness(t, dir, clk, Options{StaleAfter: time.Minute})
	h.createRule(`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90}`)
	h.observe("m1", h.series("cpu"), 95)
	h.step()
	h.one(StateFiring)
	h.stop()

	h2 := openHarness(t, dir, clk, Options{StaleAfter: time.Minute})
	h2.advance(59*time.Second, time.Second, nil)
	h2.one(StateFiring)
	h2.advance(2*time.Second, time.Second, nil)
	if r := h2.one(StateResolved); r.ResolvedReason != "stale" {
		t.Fatalf("%+v", r)
	}
}

func TestSilences(t *testing.T) {
	h := newHarness(t, Options{})
	h.createNotifier("ops", "warning")
	h.createRule(`{"id":"cpu","name":"cpu","metric":"cpu","op":">","threshold":90}`)
	now := h.clk.Now()
	s, err := decodeSilence([]byte(`{"matchers":{"machine":"web-*","labels":{"cpu":"tot*"}},"duration":"10m","comment":"maintenance"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	s.ID = "s1"
	if err := h.e.addSilence(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	h.observe("web-1", h.series("cpu", "cpu", "total"), 95)
	h.observe("db-1", h.series("cpu", "cpu", "total"), 95)
	h.advance(2*time.Second, time.Second, nil)
	as := h.alerts()
	if len(as) != 2 {
		t.Fatalf("silenced alerts still show: %+v", as)
	}
	for _, a := range as {
		want := a.Machine == "web-1"
		if a.Silenced != want || (want && (a.SilencedBy == nil || *a.SilencedBy != "s1")) {
			t.Fatalf("%s: silenced %v by %v", a.Machine, a.Silenced, a.SilencedBy)
		}
	}
	got := h.waitSent(1)
	if got = h.settle(); len(got) != 1 || got[0].msg.Alerts[0].Machine != "db-1" {
		t.Fatalf("notifications %+v, want only db-1", got)
	}
	// Expiring the silence notifies the alert that still fires.
	if _, err := h.e.ExpireSilence(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	h.advance(2*time.Second, time.Second, nil)
	got = h.waitSent(2)
	if got[1].msg.Alerts[0].Machine != "web-1" || got[1].msg.Status != notify.StatusFiring {
		t.Fatalf("after expiry: %+v", got[1].msg)
	}
	if a := h.alerts(); a[0].Silenced || a[1].Silenced {
		t.Fatalf("still silenced after expiry: %+v", a)
	}

	// A silence that ends by itself works the same; resolution while
	// silenced is still recorded.
	s2, _ := decodeSilence([]byte(`{"matchers":{"rule_id":"cpu"},"duration":"1m"}`), h.clk.Now())
	s2.ID = "s2"
	if err := h.e.addSilence(context.Background(), s2); err != nil {
		t.Fatal(err)
	}
	h.observe("new-1", h.series("cpu", "cpu", "total"), 95)
	h.advance(2*time.Second, time.Second, nil)
	h.observe("db-1", h.series("cpu", "cpu", "total"), 1)
	h.advance(2*time.Second, time.Second, nil)
	r := h.one(StateResolved)
	if r.Machine != "db-1" || !r.Silenced {
		t.Fatalf("resolved while silenced: %+v", r)
	}
	n := len(h.waitSent(3)) // db-1's resolution goes out: it was notified
	h.advance(time.Minute, time.Second, nil)
	got = h.waitSent(n + 1)
	last := got[len(got)-1].msg
	if last.Alerts[0].Machine != "new-1" || last.Status != notify.StatusFiring {
		t.Fatalf("new-1 after its silence ended: %+v", last)
	}
}

func TestAckStopsRepeats(t *testing.T) {
	h := newHarness(t, Options{RepeatInterval: time.Minute})
	h.createNotifier("ops", "warning")
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90}`)
	hot := func() { h.observe("m", h.series("cpu"), 95) }
	hot()
	h.advance(2*time.Second, time.Second, hot)
	h.waitSent(1)
	h.advance(time.Minute, time.Second, hot)
	h.waitSent(2) // repeated once
	a := h.one()
	if _, err := h.e.Acknowledge(context.Background(), a.ID, true, "alice", "on it"); err != nil {
		t.Fatal(err)
	}
	h.advance(5*time.Minute, time.Second, hot)
	if got := h.settle(); len(got) != 2 {
		t.Fatalf("%d messages after ack, want 2", len(got))
	}
	a = h.one()
	if !a.Acknowledged || a.Ack == nil || a.Ack.By != "alice" || a.Ack.Comment != "on it" {
		t.Fatalf("ack = %+v", a.Ack)
	}
	// Un-ack: repeats resume.
	if _, err := h.e.Acknowledge(context.Background(), a.ID, false, "", ""); err != nil {
		t.Fatal(err)
	}
	h.advance(2*time.Second, time.Second, hot)
	h.waitSent(3)
	// Ack again, then resolve: the ack is cleared, a resolved message goes out.
	if _, err := h.e.Acknowledge(context.Background(), a.ID, true, "bob", ""); err != nil {
		t.Fatal(err)
	}
	h.observe("m", h.series("cpu"), 10)
	h.advance(2*time.Second, time.Second, nil)
	got := h.waitSent(4)
	if got[3].msg.Status != notify.StatusResolved {
		t.Fatalf("%+v", got[3].msg)
	}
	r := h.one(StateResolved)
	if r.Acknowledged || r.Ack != nil {
		t.Fatalf("ack not cleared on resolve: %+v", r)
	}
	if _, err := h.e.Acknowledge(context.Background(), r.ID, true, "bob", ""); err == nil || !strings.Contains(err.Error(), "resolved") {
		t.Fatalf("ack of a resolved alert: %v", err)
	}
}

func TestGroupingAndRouting(t *testing.T) {
	h := newHarness(t, Options{GroupWait: 500 * time.Millisecond})
	h.createNotifier("crit", "critical")
	h.createNotifier("warn", "warning")
	h.createNotifier("all", "warning", "critical")
	h.createNotifier("none")
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"severity":"critical"}`)
	h.createRule(`{"name":"mem","metric":"mem","op":">","threshold":90}`)
	h.createRule(`{"name":"disk","metric":"disk","op":">","threshold":90,"notifiers":["none"]}`)
	for _, m := range []string{"web-1", "web-2", "web-3"} {
		h.observe(m, h.series("cpu"), 95)
	}
	h.observe("web-1", h.series("mem"), 95)
	h.observe("web-1", h.series("disk"), 95)
	h.clk.Add(100 * time.Millisecond)
	h.step() // flushed, grouped, not yet sent
	h.clk.Add(200 * time.Millisecond)
	h.observe("web-4", h.series("cpu"), 95) // joins the same group
	h.step()
	if got := h.settle(); len(got) != 0 {
		t.Fatalf("sent before the group wait: %+v", got)
	}
	h.clk.Add(300 * time.Millisecond)
	h.step()
	got := h.waitSent(4)
	got = h.settle()
	by := map[string]notify.Message{}
	for _, s := range got {
		if _, dup := by[s.cfg.ID]; dup {
			t.Fatalf("two messages for %s", s.cfg.ID)
		}
		by[s.cfg.ID] = s.msg
	}
	count := func(id string) int { return len(by[id].Alerts) }
	if len(got) != 4 || count("crit") != 4 || count("warn") != 1 || count("all") != 5 || count("none") != 1 {
		t.Fatalf("routing: crit %d warn %d all %d none %d (messages %d)", count("crit"), count("warn"), count("all"), count("none"), len(got))
	}
	if m := by["crit"]; m.Status != notify.StatusFiring || m.Title != "[FIRING:4] cpu on web-1, web-2, web-3 +1 more" {
		t.Fatalf("crit message %q %q", m.Status, m.Title)
	}
	if by["none"].Alerts[0].RuleName != "disk" {
		t.Fatalf("rule notifiers not honoured: %+v", by["none"])
	}
}

func TestRuleChangesApply(t *testing.T) {
	h := newHarness(t, Options{})
	r := h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90}`)
	h.observe("m", h.series("cpu"), 95)
	h.step()
	a := h.one(StateFiring)
	// Renaming keeps the episode.
	r.Name = "cpu renamed"
	if _, err := h.e.UpdateRule(context.Background(), r.ID, r); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Second)
	h.observe("m", h.series("cpu"), 95)
	h.step()
	if b := h.one(); b.ID != a.ID || b.RuleName != "cpu renamed" {
		t.Fatalf("after rename: %+v", b)
	}
	// Raising the threshold resolves it on the next sample.
	r.Threshold = 99
	if _, err := h.e.UpdateRule(context.Background(), r.ID, r); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Second)
	h.observe("m", h.series("cpu"), 95)
	h.step()
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("still active: %+v", as)
	}
	// Deleting a rule resolves its alerts even without samples.
	r.Threshold = 90
	h.e.UpdateRule(context.Background(), r.ID, r)
	h.clk.Add(time.Second)
	h.observe("m", h.series("cpu"), 95)
	h.step()
	h.one(StateFiring)
	if err := h.e.DeleteRule(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Second)
	h.step()
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("alert of a deleted rule still active: %+v", as)
	}
	res := h.alerts(StateResolved)
	if len(res) != 2 || res[0].ResolvedReason != "rule deleted or disabled" {
		t.Fatalf("resolved %+v", res)
	}
}

func TestMachineSelection(t *testing.T) {
	h := newHarness(t, Options{})
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"machines":["web-*","db-1"],"machine_labels":{"env":"prod"}}`)
	for _, c := range []struct {
		id, env string
		want    bool
	}{{"web-1", "prod", true}, {"web-2", "dev", false}, {"db-1", "prod", true}, {"db-2", "prod", false}} {
		info := live.MachineInfo{ID: c.id}
		info.Labels = append(info.Labels, struct{ Name, Value string }{"env", c.env})
		h.live.Connect(info)
		h.e.Connected(info)
		h.observe(c.id, h.series("cpu"), 95)
	}
	var got []string
	for _, a := range h.alerts() {
		got = append(got, a.Machine)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"db-1", "web-1"}) {
		t.Fatalf("alerts on %v", got)
	}
	// A label change on reconnect re-selects.
	info := live.MachineInfo{ID: "web-2"}
	info.Labels = append(info.Labels, struct{ Name, Value string }{"env", "prod"})
	h.e.Connected(info)
	h.observe("web-2", h.series("cpu"), 95)
	if n := len(h.alerts()); n != 3 {
		t.Fatalf("%d alerts after web-2 became prod", n)
	}
}

func TestSeriesPointersChange(t *testing.T) {
	// HTTP ingest and reconnects bring new *live.Series for known series;
	// the state follows the key, not the pointer.
	h := newHarness(t, Options{})
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"for":"3s"}`)
	for i := 0; i < 5; i++ {
		h.clk.Add(time.Second)
		s := live.NewSeries("cpu", nil)
		noise := live.NewSeries("other", nil)
		h.e.Observe("m", h.clk.Now().UnixMilli(), []*live.Series{noise, s}, []float64{1, 95})
	}
	if a := h.one(); a.State != StateFiring {
		t.Fatalf("%+v", a)
	}
	m := h.e.machine("m")
	m.mu.Lock()
	n := len(m.series)
	m.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d series states for one series", n)
	}
}

func TestDefaultsCreatedOnce(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	h := openHarness(t, dir, clk, Options{Defaults: true})
	rules := h.e.Rules()
	if len(rules) != len(DefaultRules()) {
		t.Fatalf("%d rules, want %d defaults", len(rules), len(DefaultRules()))
	}
	for _, r := range rules {
		if !r.Builtin || !r.Enabled || r.Provisioned {
			t.Fatalf("default %+v", r)
		}
	}
	if err := h.e.DeleteRule(context.Background(), "builtin-cpu-high"); err != nil {
		t.Fatal(err)
	}
	r, _ := h.e.Rule("builtin-memory-high")
	r.Enabled = false
	if _, err := h.e.UpdateRule(context.Background(), r.ID, r); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h2 := openHarness(t, dir, clk, Options{Defaults: true})
	if _, ok := h2.e.Rule("builtin-cpu-high"); ok {
		t.Fatal("a deleted default came back")
	}
	if r, _ := h2.e.Rule("builtin-memory-high"); r.Enabled || !r.Builtin {
		t.Fatalf("edited default: %+v", r)
	}
	// The defaults work: the filesystem pair fires warning and critical.
	h2.observe("m", h2.series("filesystem_usage_percent", "mountpoint", "/", "device", "/dev/sda1", "fstype", "ext4"), 97)
	h2.clk.Add(5*time.Minute + time.Second)
	h2.observe("m", h2.series("filesystem_usage_percent", "mountpoint", "/", "device", "/dev/sda1", "fstype", "ext4"), 97)
	as := h2.alerts(StateFiring)
	if len(as) != 2 || as[0].Severity == as[1].Severity {
		t.Fatalf("filesystem defaults: %+v", as)
	}
	if !strings.Contains(as[0].Description, "Filesystem / (/dev/sda1) on m is 97 % full") {
		t.Fatalf("description %q", as[0].Description)
	}
}

func TestNotificationsOffTheHotPath(t *testing.T) {
	// A channel that blocks forever neither blocks evaluation nor the
	// other channel; its queue fills and further messages are dropped.
	block := make(chan struct{})
	defer close(block)
	bs := &blockingSender{block: block, rec: &recorder{}}
	h := newHarness(t, Options{Sender: bs, QueueSize: 8, GroupWait: time.Millisecond})
	h.createNotifier("stuck", "warning")
	h.createNotifier("ok", "warning")
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90}`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			m := fmt.Sprintf("m%d", i)
			h.observe(m, h.series("cpu"), 95)
			h.clk.Add(time.Second)
			h.step()
			time.Sleep(2 * time.Millisecond) // the healthy channel keeps up
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("evaluation blocked by a stuck channel")
	}
	h.clk.Add(time.Second)
	h.step()
	alerts := func() int {
		n := 0
		for _, s := range bs.rec.all() {
			n += len(s.msg.Alerts)
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for alerts() < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := alerts(); n != 20 {
		t.Fatalf("the healthy channel got %d alerts, want 20", n)
	}
	if d := h.e.m.notifications.WithLabelValues("dropped"); testutil.ToFloat64(d) == 0 {
		t.Fatal("the stuck channel's full queue dropped nothing")
	}
}

type blockingSender struct {
	block chan struct{}
	rec   *recorder
}

func (b *blockingSender) Send(ctx context.Context, c notify.Config, m notify.Message) error {
	if c.ID == "stuck" {
		select {
		case <-b.block:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	return b.rec.Send(ctx, c, m)
}

func (b *blockingSender) Status(string) notify.Status { return notify.Status{} }

// TestConcurrentUse runs Observe from several goroutines (some on the same
// machine) while Run's steps, rule changes and API reads go on; run it
// with -race.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, Options{Defaults: true, RepeatInterval: time.Second})
	h.createNotifier("ops", "warning", "critical")
	f := newFleet(8, 300)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float64, 300)
			for i := 0; i < 2400; i++ {
				m := (g + i) % len(f.ids)
				copy(vals, f.values[m])
				vals[0] = float64(i / 8 % 200) // cpu total crosses 90 now and then
				h.e.Observe(f.ids[m], h.clk.Now().UnixMilli(), f.series[m], vals)
				if i%16 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			h.clk.Add(time.Second)
			h.step()
			if i%20 == 0 {
				h.createRule(fmt.Sprintf(`{"name":"r%d","metric":"cpu_usage_percent","op":">","threshold":%d,"for":"2s"}`, i, 50+i/10%40))
			}
			if _, err := h.e.Alerts(t.Context(), AlertQuery{States: []string{StateFiring, StatePending, StateResolved}}); err != nil {
				t.Fatal(err)
			}
			for _, a := range h.alerts() {
				h.e.Acknowledge(t.Context(), a.ID, true, "x", "")
				break
			}
			continue
		}
		break
	}
	// However the goroutines were scheduled: a hot machine fires now.
	vals := append([]float64(nil), f.values[0]...)
	vals[0] = 150
	h.advance(3*time.Second, time.Second, func() { h.e.Observe(f.ids[0], h.clk.Now().UnixMilli(), f.series[0], vals) })
	n := len(h.alerts(StateFiring, StateResolved))
	if n == 0 {
		t.Fatal("no alert ever fired")
	}
	t.Logf("%d alerts firing or resolved, %v evaluations", n, testutil.ToFloat64(h.e.m.evaluations))
}
