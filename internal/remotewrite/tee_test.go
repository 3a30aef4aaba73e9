package remotewrite

import (
	"context"
	"math"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sysmonstm/sysmonstm/internal/store"
)

// decode reads a queued body with Prometheus' own codec.
func decode(t *testing.T, body []byte) prompb.WriteRequest {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return wr
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), MinFree: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestTeeQueuesWhatTheStoreCommits(t *testing.T) {
	st := openStore(t)
	q1 := openQ(t, t.TempDir(), 1<<30, 0, nil)
	q2 := openQ(t, t.TempDir(), 1<<30, 0, nil)
	defer q1.Close()
	defer q2.Close()
	tee := NewTee([]*Queue{q1, q2}, nil, nil)
	ctx := context.Background()

	cpu := labels.FromStrings("__name__", "cpu_usage_percent", "core", "0", "machine", "web-1")
	mem := labels.FromStrings("__name__", "memory_used_bytes", "machine", "web-1")
	seq := labels.FromStrings("__name__", "sysmonstm_agent_seq", "machine", "web-1")

	app := tee.Wrap(st.Appender(ctx))
	mustAppend := func(ls labels.Labels, ts int64, v float64) {
		if _, err := app.Append(0, ls, ts, v); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(cpu, 1_700_000_001_000, 12.5)
	mustAppend(mem, 1_700_000_001_000, 0) // a zero value still travels
	mustAppend(seq, 1_700_000_001_000, 7) // internal: PromQL hides it, so does the tee
	mustAppend(cpu, 1_700_000_002_000, math.Inf(1))
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// A sample the store refuses is not forwarded.
	app = tee.Wrap(st.Appender(ctx))
	if _, err := app.Append(0, cpu, 1_700_000_002_000, 99); err == nil {
		t.Fatal("duplicate sample accepted")
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// A rolled-back appender queues nothing.
	app = tee.Wrap(st.Appender(ctx))
	mustAppend(cpu, 1_700_000_003_000, 1)
	if err := app.Rollback(); err != nil {
		t.Fatal(err)
	}

	for _, q := range []*Queue{q1, q2} {
		b, ok, err := q.Next()
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if len(b.Records) != 1 || b.Samples != 3 || b.Records[0].MinTs != 1_700_000_001_000 {
			t.Fatalf("batch: %d records, %d samples, min ts %d", len(b.Records), b.Samples, b.Records[0].MinTs)
		}
		wr := decode(t, b.Records[0].Body)
		type sample struct {
			ls string
			t  int64
			v  float64
		}
		var got []sample
		for _, ts := range wr.Timeseries {
			for _, s := range ts.Samples {
				got = append(got, sample{labels.New(prompbLabels(ts.Labels)...).String(), s.Timestamp, s.Value})
			}
		}
		want := []sample{
			{cpu.String(), 1_700_000_001_000, 12.5},
			{mem.String(), 1_700_000_001_000, 0},
			{cpu.String(), 1_700_000_002_000, math.Inf(1)},
		}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("sample %d: got %v, want %v", i, got[i], want[i])
			}
		}
		_ = q.Commit(b)
		if _, ok, _ := q.Next(); ok {
			t.Fatal("the rolled-back appender queued samples")
		}
	}
}

func prompbLabels(ls []prompb.Label) []labels.Label {
	out := make([]labels.Label, len(ls))
	for i, l := range ls {
		out[i] = labels.Label{Name: l.Name, Value: l.Value}
	}
	return out
}

func TestTeeCountsAQueueThatFails(t *testing.T) {
	st := openStore(t)
	q := openQ(t, t.TempDir(), 1<<30, 0, nil)
	_ = q.Close() // appends now fail
	var failed int
	tee := NewTee([]*Queue{q}, nil, func(i, n int) { failed += n })
	app := tee.Wrap(st.Appender(context.Background()))
	if _, err := app.Append(0, labels.FromStrings("__name__", "x", "machine", "m"), 1000, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("a failing queue failed the store's commit: %v", err)
	}
	if failed != 1 {
		t.Fatalf("failed %d samples, want 1", failed)
	}
}

// The encoder allocates nothing per sample once its buffer has grown.
func TestEncoderAllocations(t *testing.T) {
	ls := labels.FromStrings("__name__", "cpu_usage_percent", "core", "3", "machine", "web-1")
	e := &Encoder{}
	for range 100 {
		e.Add(ls, 1_700_000_000_000, 1.5)
	}
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset()
		for range 100 {
			e.Add(ls, 1_700_000_000_000, 1.5)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per 100 samples", allocs)
	}
}

func BenchmarkTeeEncode(b *testing.B) {
	ls := labels.FromStrings("__name__", "cpu_usage_percent", "core", "3", "machine", "web-0001", "mode", "user")
	e := &Encoder{}
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		for i := range 1000 {
			e.Add(ls, 1_700_000_000_000+int64(i), float64(i))
		}
		e.snap = snappy.Encode(e.snap[:cap(e.snap)], e.buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/sample")
	b.ReportMetric(float64(len(e.snap))/1000, "bytes/sample")
}
