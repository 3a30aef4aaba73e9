package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// History and exports of averaged buckets, from the real store, show
// averages rounded to the metric family's precision (docs/metrics.md),
// never float noise: a percentage averaging 0.1, 0.2, 0.2 is 0.17, whole
// bytes stay whole, and a metric the agent does not define keeps 12
// significant digits.
func TestAveragesRoundedToFamilyPrecision(t *testing.T) {
	base := now.Add(-8 * time.Hour)
	var mu sync.Mutex
	clock := base
	st, err := store.Open(store.Options{Dir: t.TempDir(), RetentionRaw: time.Hour, Retention1m: 6 * time.Hour,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	st.Raw().DisableCompactions()
	pattern := func(a, b float64) func(int) float64 {
		return func(i int) float64 {
			if i%3 == 0 {
				return a
			}
			return b
		}
	}
	const n = 8 * 360 // 8 h every 10 s
	all := []struct {
		ls  labels.Labels
		f   func(int) float64
		ref store.SeriesRef
	}{
		{ls: labels.FromStrings("__name__", "cpu_usage_percent", "machine", "m1", "cpu", "total"), f: pattern(0.1, 0.2)},
		{ls: labels.FromStrings("__name__", "memory_used_bytes", "machine", "m1"), f: pattern(1, 2)},
		{ls: labels.FromStrings("__name__", "app_queue_depth", "machine", "m1"), f: pattern(0.1, 0.2)},
	}
	app := st.Appender(context.Background())
	for i := range n {
		for k := range all {
			s := &all[k]
			if s.ref, err = app.Append(s.ref, s.ls, base.Add(time.Duration(i)*10*time.Second).UnixMilli(), s.f(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	st.NoteWritten("m1", base.Add((n-1)*10*time.Second).UnixMilli())
	mu.Lock()
	clock = base.Add(8*time.Hour + 30*time.Second)
	mu.Unlock()
	if err := st.Rollup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Raw().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.History = st })
	want := map[string]string{"cpu_usage_percent": "0.17", "memory_used_bytes": "2", "app_queue_depth": "0.166666666667"}
	// Older than the raw tier keeps (it starts at base+4h after compaction):
	// minute averages from the 1m tier.
	from, to := base.Add(3*time.Hour).Format(time.RFC3339), base.Add(3*time.Hour+30*time.Minute).Format(time.RFC3339)

	for metric, v := range want {
		res, raw := e.get(t, fmt.Sprintf("/api/machines/m1/history?metric=%s&from=%s&to=%s&step=1m", metric, from, to), nil)
		if res.StatusCode != 200 {
			t.Fatalf("history %s: %d %s", metric, res.StatusCode, raw)
		}
		var out struct {
			Series []struct{ Points []json.RawMessage }
		}
		if err := json.Unmarshal(raw, &out); err != nil || len(out.Series) != 1 || len(out.Series[0].Points) < 30 {
			t.Fatalf("history %s: %v %s", metric, err, raw)
		}
		for _, p := range out.Series[0].Points {
			if !strings.HasSuffix(string(p), ","+v+"]") {
				t.Fatalf("history %s: point %s, want the average %s", metric, p, v)
			}
		}
	}

	res, raw := e.get(t, "/api/export?machine=m1&format=csv&from="+from+"&to="+to, nil)
	if res.StatusCode != 200 {
		t.Fatalf("export csv: %d %s", res.StatusCode, raw)
	}
	recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(recs) < 90 {
		t.Fatalf("export csv: %d rows, %v\n%s", len(recs), err, raw)
	}
	for _, r := range recs[1:] {
		if r[4] != want[r[2]] {
			t.Fatalf("export csv row %v: want the average %s", r, want[r[2]])
		}
	}

	res, raw = e.get(t, "/api/export?machine=m1&format=json&from="+from+"&to="+to, nil)
	if res.StatusCode != 200 {
		t.Fatalf("export json: %d %s", res.StatusCode, raw)
	}
	var rows []struct {
		Metric string
		Value  json.RawMessage
	}
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) < 90 {
		t.Fatalf("export json: %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		if string(r.Value) != want[r.Metric] {
			t.Fatalf("export json %s: value %s, want %s", r.Metric, r.Value, want[r.Metric])
		}
	}
}
