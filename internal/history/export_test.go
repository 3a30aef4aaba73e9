package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/store"
)

// exportRows runs an export into "name labels t v" lines.
func exportRows(t *testing.T, h interface {
	Export(context.Context, store.Query, store.ExportFunc) error
}, q store.Query) []string {
	t.Helper()
	var rows []string
	err := h.Export(context.Background(), q, func(name string, ls metric.Labels, ts int64, v float64) error {
		rows = append(rows, fmt.Sprintf("%s %v %d %g", name, ls, ts, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestExportEqualsEmbedded: an export over chunk boundaries (odd chunks,
// cut range ends, a sparse series) gives every raw sample once, in the
// embedded store's order, from VictoriaMetrics and Prometheus.
func TestExportEqualsEmbedded(t *testing.T) {
	start, samples := testData(t)
	emb := embedded(t, samples)
	es := testEngines(t, samples)
	queries := []store.Query{
		{Machine: "m1", From: start.Add(59*time.Minute + 500*time.Millisecond), To: start.Add(71 * time.Minute)},
		{Metric: testMetric, Machine: "m1", From: start, To: start.Add(2 * time.Hour)},
		{Metric: testMetric, From: start.Add(time.Hour), To: start.Add(time.Hour + 10*time.Second), Matchers: map[string]string{"cpu": "0"}},
	}
	for _, e := range es {
		c := newClient(t, e, func(o *Options) { o.ExportChunk = 7*time.Minute + 13*time.Second })
		for i, q := range queries {
			want, got := exportRows(t, emb, q), exportRows(t, c, q)
			if len(want) < 20 {
				t.Fatalf("query %d: only %d rows from the embedded store", i, len(want))
			}
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				n := 0
				for n < min(len(want), len(got)) && want[n] == got[n] {
					n++
				}
				t.Errorf("%s query %d: %d rows, want %d; first difference at row %d: got %q, want %q", e.name, i, len(got), len(want), n,
					got[min(n, len(got)-1)], want[min(n, len(want)-1)])
			}
		}
	}
}

// TestExportStops: an error from fn ends the export and is returned.
func TestExportStops(t *testing.T) {
	start, samples := testData(t)
	e := startVM(t)
	remoteWrite(t, e, samples[:3000])
	c := newClient(t, e, nil)
	stop := errors.New("stop")
	n := 0
	err := c.Export(context.Background(), store.Query{Machine: "m1", From: start, To: start.Add(time.Hour)}, func(string, metric.Labels, int64, float64) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("got %v after %d rows", err, n)
	}
}

// TestResponseBound: an answer larger than MaxResponseBytes fails the
// request with a client error (400) that says what to do; nothing of it is
// decoded.
func TestResponseBound(t *testing.T) {
	start, samples := testData(t)
	e := startVM(t)
	remoteWrite(t, e, samples[:20000])
	c := newClient(t, e, func(o *Options) { o.MaxResponseBytes = 4096 })
	err := c.Export(context.Background(), store.Query{Machine: "m1", From: start, To: start.Add(time.Hour)}, func(string, metric.Labels, int64, float64) error { return nil })
	var ce interface{ ClientError() bool }
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "exceeds 4096 bytes") {
		t.Fatalf("got %v", err)
	}
}
