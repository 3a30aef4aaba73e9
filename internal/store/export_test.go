package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

type exported struct {
	key string
	t   int64
	v   float64
}

func export(t *testing.T, s *Store, q Query) []exported {
	t.Helper()
	var out []exported
	err := s.Export(context.Background(), q, func(name string, ls metric.Labels, ts int64, v float64) error {
		out = append(out, exported{key: name + fmt.Sprint(ls), t: ts, v: v})
		return nil
	})
	if err != nil {
		t.Fatalf("export %+v: %v", q, err)
	}
	return out
}

func TestExport(t *testing.T) {
	s, clk := openTest(t, "", base, func(o *Options) {
		o.RetentionRaw = time.Hour
		o.Retention1m = 3 * time.Hour
	})
	v := func(i int) float64 { return float64(i % 60) }
	appendRange(t, s, series("load5", "m1"), base, 2*3600+1, time.Second, v)
	appendRange(t, s, series("load1", "m2"), base, 2*3600+1, time.Second, v)
	appendRange(t, s, series("load1", "m1"), base, 2*3600+1, time.Second, v)
	clk.Set(base.Add(2*time.Hour + 2*time.Minute))
	mustRollup(t, s)

	// From inside raw retention: raw samples, series by series.
	got := export(t, s, Query{Machine: "m1", From: base.Add(90 * time.Minute), To: base.Add(90*time.Minute + 2*time.Second)})
	want := []exported{
		{"load1[{machine m1}]", ms(base.Add(90 * time.Minute)), 0},
		{"load1[{machine m1}]", ms(base.Add(90*time.Minute + time.Second)), 1},
		{"load1[{machine m1}]", ms(base.Add(90*time.Minute + 2*time.Second)), 2},
		{"load5[{machine m1}]", ms(base.Add(90 * time.Minute)), 0},
		{"load5[{machine m1}]", ms(base.Add(90*time.Minute + time.Second)), 1},
		{"load5[{machine m1}]", ms(base.Add(90*time.Minute + 2*time.Second)), 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("raw export\n got %v\nwant %v", got, want)
	}

	// From beyond raw retention: minute averages.
	got = export(t, s, Query{Metric: "load1", From: base.Add(30 * time.Second), To: base.Add(2 * time.Minute)})
	want = []exported{
		{"load1[{machine m1}]", ms(base), 29.5},
		{"load1[{machine m1}]", ms(base.Add(time.Minute)), 29.5},
		{"load1[{machine m1}]", ms(base.Add(2 * time.Minute)), 29.5},
		{"load1[{machine m2}]", ms(base), 29.5},
		{"load1[{machine m2}]", ms(base.Add(time.Minute)), 29.5},
		{"load1[{machine m2}]", ms(base.Add(2 * time.Minute)), 29.5},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("1m export\n got %v\nwant %v", got, want)
	}

	// From beyond 1m retention: hour averages.
	clk.Set(base.Add(4 * time.Hour))
	got = export(t, s, Query{Metric: "load1", Machine: "m2", From: base, To: base.Add(4 * time.Hour)})
	want = []exported{
		{"load1[{machine m2}]", ms(base), 29.5},
		{"load1[{machine m2}]", ms(base.Add(time.Hour)), 29.5},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("1h export\n got %v\nwant %v", got, want)
	}

	// An error from fn stops the export.
	stop := errors.New("stop")
	n := 0
	err := s.Export(context.Background(), Query{From: base, To: base.Add(time.Hour)}, func(string, metric.Labels, int64, float64) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("export after fn error: err %v after %d calls", err, n)
	}
	if err := s.Export(context.Background(), Query{From: base.Add(time.Hour), To: base}, nil); err == nil {
		t.Fatal("export with from after to succeeded")
	}
}
