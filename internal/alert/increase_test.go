package alert

import (
	"strings"
	"testing"
	"time"
)

// TestContainerRestartingDefault runs the "increase" default on a counter
// sampled every second: three restarts within 15 minutes fire, and the
// alert resolves once the first of them has left the window.
func TestContainerRestartingDefault(t *testing.T) {
	h := newHarness(t, Options{Defaults: true})
	s := h.series("container_restarts_total", "container", "web", "id", "abc123", "runtime", "docker")
	restarts := 0.0
	tick := func() { h.observe("host-1", s, restarts) }
	tick()
	// Two restarts, 5 minutes apart: an increase of 2 stays below 3.
	h.advance(time.Minute, time.Second, tick)
	restarts++
	first := h.clk.Now()
	h.advance(5*time.Minute, time.Second, tick)
	restarts++
	h.advance(5*time.Minute, time.Second, tick)
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("alerts after 2 restarts: %+v", as)
	}
	// The third restart within 15 minutes fires at once (for 0).
	restarts++
	h.clk.Add(time.Second)
	tick()
	h.step()
	a := h.one(StateFiring)
	if a.RuleID != "builtin-container-restarting" || a.Value != 3 || a.Severity != SeverityWarning || a.Labels["container"] != "web" {
		t.Fatalf("alert %+v", a)
	}
	if want := "Container web on host-1 restarted 3 times in the last 15m"; a.Description != want {
		t.Fatalf("description %q, want %q", a.Description, want)
	}
	// No more restarts: it keeps firing until the first restart leaves the
	// 15-minute window (buckets of 15 s), then resolves.
	h.advance(first.Add(15*time.Minute-15*time.Second).Sub(h.clk.Now()), time.Second, tick)
	if a := h.one(); a.State != StateFiring {
		t.Fatalf("resolved before the window passed: %+v", a)
	}
	h.advance(30*time.Second, time.Second, tick)
	if as := h.alerts(); len(as) != 0 {
		t.Fatalf("active after the window: %+v", as)
	}
	a = h.one(StateResolved)
	if a.State != StateResolved || a.Value != 2 || a.ResolvedReason != "" {
		t.Fatalf("after the window: %+v", a)
	}
	// The agent restarts: its counter starts again at 0, which is no
	// restart of the container.
	restarts = 0
	h.advance(time.Minute, time.Second, tick)
	if as := h.alerts(StatePending, StateFiring); len(as) != 0 {
		t.Fatalf("counter reset fired: %+v", as)
	}
}

func TestIncreaseRuleValidation(t *testing.T) {
	f := func(js string, window time.Duration) {
		t.Helper()
		r, err := DecodeRule([]byte(js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		if r.Aggregation != AggIncrease || r.Window != window {
			t.Fatalf("%s: aggregation %q window %v, want increase %v", js, r.Aggregation, r.Window, window)
		}
	}
	base := `"name":"n","metric":"container_restarts_total","op":">=","threshold":3,"aggregation":"increase"`
	f(`{`+base+`,"window":"15m"}`, 15*time.Minute)
	f(`{`+base+`,"for":"10m"}`, 10*time.Minute) // window defaults to for
	f(`{`+base+`}`, time.Second)                // at least 1 s
	f(`{`+base+`,"window":"24h"}`, 24*time.Hour)
	if _, err := DecodeRule([]byte(`{` + base + `,"window":"25h"}`)); err == nil || err.Error() != "window: 25h: at most 24h" {
		t.Fatalf("25h window: %v", err)
	}
	_, err := DecodeRule([]byte(`{"name":"n","metric":"x","op":">","threshold":1,"aggregation":"rate"}`))
	if err == nil || err.Error() != `aggregation: "rate": must be "last", "avg", "max", "min" or "increase"` {
		t.Fatalf("unknown aggregation: %v", err)
	}
	_, err = DecodeRule([]byte(`{"name":"n","metric":"x","op":">","threshold":1,"window":"1m"}`))
	if err == nil || !strings.Contains(err.Error(), `"increase"`) {
		t.Fatalf("window with last: %v", err)
	}
	// A changed window starts a new one; the same keeps its samples.
	a := compile(Rule{Aggregation: AggIncrease, Window: time.Minute})
	if !a.sameWindow(compile(Rule{Aggregation: AggIncrease, Window: time.Minute})) ||
		a.sameWindow(compile(Rule{Aggregation: AggMax, Window: time.Minute})) ||
		a.sameWindow(compile(Rule{Aggregation: AggIncrease, Window: 2 * time.Minute})) {
		t.Fatal("sameWindow of increase rules")
	}
}
