package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestAppenderErrors checks the refusals Append reports match the store's
// error values, and that a refused sample leaves the appender usable.
func TestAppenderErrors(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	ls := series("load1", "m1")
	appendRange(t, s, ls, base, 3, time.Second, func(i int) float64 { return float64(i) })
	app := s.Appender(context.Background())
	if _, err := app.Append(0, ls, ms(base)+2000, 99); !errors.Is(err, ErrDuplicateSample) {
		t.Errorf("newest timestamp, other value: %v, want ErrDuplicateSample", err)
	}
	// Older samples within the out-of-order window are taken; beyond it
	// they are too old.
	if _, err := app.Append(0, ls, ms(base.Add(-DefaultOutOfOrderWindow))-1000, 1); !errors.Is(err, ErrTooOld) {
		t.Errorf("older than the out-of-order window: %v, want ErrTooOld", err)
	}
	ref, err := app.Append(0, ls, ms(base)+3000, 3)
	if err != nil || ref == 0 {
		t.Fatalf("append after refusals: ref %d, %v", ref, err)
	}
	if again, err := app.Append(ref, ls, ms(base)+4000, 4); err != nil || again != ref {
		t.Fatalf("append by ref: ref %d (want %d), %v", again, ref, err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestNewestSamplesAndMachineSeries(t *testing.T) {
	s, _ := openTest(t, "", base, nil)
	step := time.Second
	appendRange(t, s, series("seq", "m1", "instance", "a"), base, 10, step, func(i int) float64 { return float64(i + 1) })
	appendRange(t, s, series("seq", "m2", "instance", "b"), base, 3, step, func(i int) float64 { return float64(100 + i) })
	appendRange(t, s, series("load1", "m1"), base, 10, step, func(i int) float64 { return 1 })
	appendRange(t, s, series("late", "m3"), base.Add(time.Hour), 2, step, func(i int) float64 { return 1 })
	appendRange(t, s, labels.FromStrings(labels.MetricName, "nomachine"), base, 2, step, func(i int) float64 { return 1 })

	ctx := context.Background()
	type got struct {
		machine string
		t       int64
		v       float64
	}
	var seen []got
	// The range ends before m1's last samples: the newest within it counts.
	err := s.NewestSamples(ctx, "seq", ms(base), ms(base)+5000, func(ls labels.Labels, t int64, v float64) {
		seen = append(seen, got{ls.Get("machine"), t, v})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(seen, func(a, b got) int { return cmp.Compare(a.machine, b.machine) })
	want := []got{{"m1", ms(base) + 5000, 6}, {"m2", ms(base) + 2000, 102}}
	if !slices.Equal(seen, want) {
		t.Fatalf("NewestSamples = %v, want %v", seen, want)
	}
	seen = nil
	if err := s.NewestSamples(ctx, "seq", ms(base)+3000, ms(base)+5000, func(ls labels.Labels, t int64, v float64) {
		seen = append(seen, got{ls.Get("machine"), t, v})
	}); err != nil {
		t.Fatal(err)
	}
	if want := []got{{"m1", ms(base) + 5000, 6}}; !slices.Equal(seen, want) {
		t.Fatalf("NewestSamples after m2's last sample = %v, want %v", seen, want)
	}

	var names []string
	if err := s.MachineSeries(ctx, ms(base), ms(base)+60_000, func(ls labels.Labels) {
		names = append(names, ls.Get(labels.MetricName)+"/"+ls.Get("machine"))
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{"load1/m1", "seq/m1", "seq/m2"}; !slices.Equal(names, want) {
		t.Fatalf("MachineSeries = %v, want %v", names, want)
	}
}
