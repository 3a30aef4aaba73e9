package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// TestReloadSharesOneDatabase, on each backend: two engines on one
// database (two hubs on PostgreSQL). A rule, a notifier and a silence made
// on A are in force on B once B reloads (the hub reloads on NOTIFY); an
// acknowledgement made through A of B's alert is adopted by B; a rule
// deleted on A resolves B's alert; a reload with nothing new changes
// nothing.
func TestReloadSharesOneDatabase(t *testing.T) {
	for _, backend := range dbtest.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			clk := newClock(t0)
			a := openHarnessOn(t, backend, dir, clk, Options{})
			b := openHarnessOn(t, backend, dir, clk, Options{})
			reload := func(want bool) {
				t.Helper()
				changed, err := b.e.Reload(ctx)
				if err != nil || changed != want {
					t.Fatalf("B.Reload: changed %v (want %v), %v", changed, want, err)
				}
			}
			reload(false)

			if _, err := a.e.CreateNotifier(ctx, notify.Config{Name: "ops", Type: notify.TypeWebhook, URL: "http://127.0.0.1:1/ops"}); err != nil {
				t.Fatal(err)
			}
			r := a.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90,"for":"0s"}`)
			if _, ok := b.e.Rule(r.ID); ok {
				t.Fatal("B has A's rule before reloading")
			}
			reload(true)
			if got, ok := b.e.Rule(r.ID); !ok || got.Name != "cpu" {
				t.Fatalf("B after reload: %+v %v", got, ok)
			}
			if len(b.e.Notifiers()) != 1 {
				t.Fatalf("B's notifiers: %+v", b.e.Notifiers())
			}
			reload(false)

			// B evaluates its agents with A's rule.
			b.observe("web-1", b.series("cpu", "cpu", "total"), 95)
			b.advance(2*time.Second, time.Second, nil)
			if al := b.one(StateFiring); al.RuleID != r.ID || al.Silenced {
				t.Fatalf("B's alert: %+v", al)
			}

			// A silence made on A mutes B's alert.
			if _, err := a.e.CreateSilence(ctx, []byte(`{"matchers":{"machine":"web-*"},"duration":"10m","comment":"maint"}`), "admin"); err != nil {
				t.Fatal(err)
			}
			reload(true)
			if al := b.one(StateFiring); !al.Silenced {
				t.Fatalf("B's alert not silenced by A's silence: %+v", al)
			}

			// Acknowledged through A (which does not evaluate it): B adopts
			// the acknowledgement once it re-reads, and keeps it.
			id := b.one(StateFiring).ID
			got, err := a.e.Acknowledge(ctx, id, true, "alice", "on it")
			if err != nil || !got.Acknowledged {
				t.Fatalf("A acknowledging B's alert: %+v %v", got, err)
			}
			if n, err := b.e.ReloadAcks(ctx); n != 1 || err != nil {
				t.Fatalf("B.ReloadAcks: %d, %v", n, err)
			}
			b.advance(time.Second, time.Second, nil)
			if al := b.one(StateFiring); !al.Acknowledged || al.Ack == nil || al.Ack.By != "alice" || al.Ack.Comment != "on it" {
				t.Fatalf("B's alert after A's acknowledgement: %+v", al)
			}
			if n, err := b.e.ReloadAcks(ctx); n != 0 || err != nil {
				t.Fatalf("B.ReloadAcks again: %d, %v", n, err)
			}

			// A rule deleted on A resolves B's alert.
			if err := a.e.DeleteRule(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			reload(true)
			b.advance(2*time.Second, time.Second, nil)
			if as := b.alerts(StateFiring, StatePending); len(as) != 0 {
				t.Fatalf("B still fires a rule deleted on A: %+v", as)
			}
			if _, err := a.e.Acknowledge(ctx, id, false, "alice", ""); err == nil || !strings.Contains(err.Error(), "resolved") {
				t.Fatalf("A un-acknowledging a resolved alert: %v", err)
			}
		})
	}
}
