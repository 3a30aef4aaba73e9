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

// BenchmarkCommit measures the write path of one agent's batch: 100
// series defined once, then per op one batch through stream.batch and a
// writer's group commit into a real store (WAL write included) and the
// live state. allocs/op is what the path allocates per batch of 100
// samples.
func BenchmarkCommit(b *testing.B) {
	const nSeries = 100
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lv, err := live.New(live.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	srv, err := New(Options{Storage: testStore{st}, Live: lv, Now: func() time.Time { return time.UnixMilli(ts) }})
	if err != nil {
		b.Fatal(err)
	}
	w := srv.writers[0]
	s := newStream(srv, &pb.Hello{MachineId: "bench-1", Instance: 1}, w)
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
		b.Fatal(err)
	}
	ctx := context.Background()
	jobs := make([]*job, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ts += 1000
		jobs[0] = s.batch(&pb.Batch{Seq: uint64(i + 1), TimestampMs: ts, SeriesIds: ids, Values: vals})
		w.commit(ctx, jobs)
	}
	b.StopTimer()
	if got := s.acked.Load(); got != uint64(b.N) {
		b.Fatalf("acked %d of %d batches", got, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nSeries), "ns/sample")
}
