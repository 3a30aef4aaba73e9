package alert

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

func ruleIDs(rules []Rule) []string { return sortedIDs(rules, func(r Rule) string { return r.ID }) }

func TestDefaultsFreshDatabase(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	h := openHarness(t, dir, clk, Options{Defaults: true})
	want := ruleIDs(DefaultRules())
	if len(want) != 9 {
		t.Fatalf("%d default rules, want 9", len(want))
	}
	if got := ruleIDs(h.e.Rules()); !slices.Equal(got, want) {
		t.Fatalf("rules %v, want %v", got, want)
	}
	r, _ := h.e.Rule("builtin-container-restarting")
	if !r.Builtin || !r.Enabled || r.Aggregation != AggIncrease || r.Window != 15*time.Minute || r.Op != ">=" || r.Threshold != 3 || r.For != 0 {
		t.Fatalf("container default %+v", r)
	}
	for _, id := range want {
		if _, ok, err := getMeta(context.Background(), h.db, metaDefaultPrefix+id); err != nil || !ok {
			t.Fatalf("no marker for %s: %v", id, err)
		}
	}
	// The legacy marker is kept for older hubs, which would otherwise
	// bring deleted defaults back after a downgrade.
	if _, ok, err := getMeta(context.Background(), h.db, metaDefaultsCreated); err != nil || !ok {
		t.Fatalf("legacy marker missing: %v", err)
	}

	// A deleted default, old or new, is not created again on restart.
	for _, id := range []string{"builtin-container-restarting", "builtin-nvme-wear"} {
		if err := h.e.DeleteRule(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	h.stop()
	h2 := openHarness(t, dir, clk, Options{Defaults: true})
	if got := ruleIDs(h2.e.Rules()); len(got) != 7 || slices.Contains(got, "builtin-container-restarting") || slices.Contains(got, "builtin-nvme-wear") {
		t.Fatalf("after restart: %v", got)
	}
}

// TestDefaultsAfterUpgrade opens a database as a hub from before the
// per-rule markers left it (one defaults_created marker, the 8 rules of
// the time, one of them deleted, one id taken by a user's rule): only the
// new default is added.
func TestDefaultsAfterUpgrade(t *testing.T) {
	ctx := context.Background()
	f := func(taken bool) {
		t.Helper()
		dir := t.TempDir()
		d := dbtest.OpenAt(t, dbtest.Backend(), dir)
		if err := migrate(ctx, d); err != nil {
			t.Fatal(err)
		}
		for _, r := range DefaultRules() {
			if !slices.Contains(legacyDefaultIDs, r.ID) || r.ID == "builtin-cpu-high" {
				continue // not a default then, or deleted by the user
			}
			if err := r.normalize(); err != nil {
				t.Fatal(err)
			}
			if err := saveRule(ctx, d, r); err != nil {
				t.Fatal(err)
			}
		}
		if taken {
			mine := Rule{ID: "builtin-container-restarting", Name: "mine", Kind: KindThreshold, Metric: "x", Op: ">", Threshold: 1, Enabled: true}
			if err := mine.normalize(); err != nil {
				t.Fatal(err)
			}
			if err := saveRule(ctx, d, mine); err != nil {
				t.Fatal(err)
			}
		}
		if err := setMeta(ctx, d, metaDefaultsCreated, t0.Format(time.RFC3339)); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}

		clk := newClock(t0)
		h := openHarness(t, dir, clk, Options{Defaults: true})
		got := ruleIDs(h.e.Rules())
		if len(got) != 8 || slices.Contains(got, "builtin-cpu-high") || !slices.Contains(got, "builtin-container-restarting") {
			t.Fatalf("taken %v: rules after upgrade %v", taken, got)
		}
		r, _ := h.e.Rule("builtin-container-restarting")
		if r.Builtin == taken || (r.Name == "mine") != taken {
			t.Fatalf("taken %v: container rule %+v", taken, r)
		}
		// Marked either way: deleting it keeps it deleted.
		if err := h.e.DeleteRule(ctx, "builtin-container-restarting"); err != nil {
			t.Fatal(err)
		}
		h.stop()
		h2 := openHarness(t, dir, clk, Options{Defaults: true})
		if got := ruleIDs(h2.e.Rules()); len(got) != 7 || slices.Contains(got, "builtin-container-restarting") || slices.Contains(got, "builtin-cpu-high") {
			t.Fatalf("taken %v: rules after a second start %v", taken, got)
		}
	}
	f(false)
	f(true)
}

// TestDefaultsLaterEnabled: a hub started without defaults gets all of
// them once it starts with them.
func TestDefaultsLaterEnabled(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(t0)
	h := openHarness(t, dir, clk, Options{})
	if n := len(h.e.Rules()); n != 0 {
		t.Fatalf("%d rules without defaults", n)
	}
	h.stop()
	h2 := openHarness(t, dir, clk, Options{Defaults: true})
	if got := len(h2.e.Rules()); got != len(DefaultRules()) {
		t.Fatalf("%d rules, want %d", got, len(DefaultRules()))
	}
}
