package ingest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// commitBench is one agent stream on a real store and live state, with
// nSeries series defined, and a function that commits its next batch.
func commitBench(tb testing.TB, nSeries int) (s *stream, next func()) {
	st, err := store.Open(store.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	lv, err := live.New(live.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	srv, err := New(Options{Storage: testStore{st}, Live: lv, Now: func() time.Time { return time.UnixMilli(ts) }})
	if err != nil {
		tb.Fatal(err)
	}
	w := srv.writers[0]
	s = newStream(srv, &pb.Hello{MachineId: "bench-1", Instance: 1}, w)
	s.cancel = func(error) {}
	defs := make([]*pb.SeriesDef, nSeries)
	ids := make([]uint32, nSeries)
	vals := make([]float64, nSeries)
	for i := range defs {
		defs[i] = &pb.SeriesDef{Id: uint32(i), Name: "bench_metric", Labels: []*pb.Label{{Name: "i", Value: strconv.Itoa(i)}}}
		ids[i] = uint32(i)
		vals[i] = float64(i)
	}
	if err := s.define(defs); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	jobs := make([]*job, 1)
	seq := uint64(0)
	batch := &pb.Batch{SeriesIds: ids, Values: vals}
	return s, func() {
		ts += 1000
		seq++
		batch.Seq, batch.TimestampMs = seq, ts
		jobs[0] = s.batch(batch)
		w.commit(ctx, jobs)
	}
}

// BenchmarkCommit measures the write path of one agent's batch: 100
// series defined once, then per op one batch through stream.batch and a
// writer's group commit into a real store (WAL write included) and the
// live state. allocs/op is what the path allocates per batch of 100
// samples.
func BenchmarkCommit(b *testing.B) {
	const nSeries = 100
	s, next := commitBench(b, nSeries)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		next()
	}
	b.StopTimer()
	if got := s.acked.Load(); got != uint64(b.N) {
		b.Fatalf("acked %d of %d batches", got, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nSeries), "ns/sample")
}

// TestCommitAllocsPerBatch checks the write path allocates per batch, not
// per sample: a batch of 1,000 series costs no more allocations than one
// of 10.
func TestCommitAllocsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	allocs := func(n int) float64 {
		_, next := commitBench(t, n)
		next() // series refs cached, appender pools warm
		return testing.AllocsPerRun(50, next)
	}
	small, large := allocs(10), allocs(1000)
	if large > small+1 {
		t.Fatalf("a batch of 1000 samples allocates %.1f times, of 10 samples %.1f: the path allocates per sample", large, small)
	}
	t.Logf("allocations per batch: %.1f (10 series), %.1f (1000 series)", small, large)
}
