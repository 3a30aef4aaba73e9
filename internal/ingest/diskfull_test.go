package ingest

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// diskGate is an Options.Writable the test opens and closes; closed, it
// refuses with the store's own disk-full error.
type diskGate struct {
	full atomic.Pointer[store.DiskFullError]
}

func (g *diskGate) writable() error {
	if e := g.full.Load(); e != nil {
		return e
	}
	return nil
}

func (g *diskGate) fill() {
	g.full.Store(&store.DiskFullError{Dir: "/data/tsdb", Avail: 3 << 20, Reserve: 256 << 20})
}

func (g *diskGate) free() { g.full.Store(nil) }

// While storage refuses writes a batch is not acknowledged: its stream ends
// with Unavailable naming the full disk, a new stream is refused at its
// hello, and once space is back the agent resends and nothing is missing.
func TestDiskFullRefusesStreamUnacknowledged(t *testing.T) {
	gate := &diskGate{}
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.Writable = gate.writable })
	a, err := e.connect("web-1", 7)
	if err != nil {
		t.Fatal(err)
	}
	a.defs("load1", "load5")
	a.batch(1, tick(1), []uint32{0, 1}, []float64{1, 1})
	a.waitAck(1)

	gate.fill()
	a.batch(2, tick(2), []uint32{0, 1}, []float64{2, 2})
	var ended error
	for ended == nil {
		m, err := a.s.Recv()
		if err != nil {
			ended = err
		} else if m.GetAck().GetSeq() >= 2 {
			t.Fatal("batch 2 acknowledged while the disk is full")
		}
	}
	if status.Code(ended) != codes.Unavailable || !strings.Contains(ended.Error(), "disk full") {
		t.Fatalf("stream ended with %v; want Unavailable naming the full disk", ended)
	}
	if _, err := e.connect("web-1", 7); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("hello while full: %v; want Unavailable naming the full disk", err)
	}
	if got := testutil.ToFloat64(e.srv.m.rejected.WithLabelValues(rejectDiskFull)); got != 2 {
		t.Fatalf("rejected_requests_total{disk_full} = %v, want 2 (one stream, one hello)", got)
	}
	if got := testutil.ToFloat64(e.srv.m.dropped.WithLabelValues(reasonDiskFull)); got != 2 {
		t.Fatalf("dropped_samples_total{disk_full} = %v, want 2", got)
	}

	gate.free()
	b, err := e.connect("web-1", 7)
	if err != nil {
		t.Fatal(err)
	}
	if b.welcome.GetLastSeq() != 1 {
		t.Fatalf("welcome last_seq = %d, want 1: batch 2 was refused", b.welcome.GetLastSeq())
	}
	b.defs("load1", "load5")
	b.batch(2, tick(2), []uint32{0, 1}, []float64{2, 2})
	b.batch(3, tick(3), []uint32{0, 1}, []float64{3, 3})
	b.waitAck(3)
	pts := e.points("load1", "web-1")
	if len(pts) != 3 || pts[1][1] != 2 || pts[2][1] != 3 {
		t.Fatalf("stored %v, want 1, 2, 3", pts)
	}
}

// Once a stream's batch is refused, its later batches still queued are
// neither stored nor acknowledged, even if space is back when the writer
// reaches them: storing batch 3 would make the hub's welcome report seq 3
// as stored, and the agent would drop batch 2 from its buffer unsent.
func TestRefusedStreamStoresNoLaterBatch(t *testing.T) {
	gate := &diskGate{}
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.Writable = gate.writable })
	hello := &pb.Hello{MachineId: "db-1", Instance: 9}
	w := e.srv.writers[0]
	st := newStream(e.srv, hello, w)
	var cause atomic.Value
	st.cancel = func(err error) { cause.CompareAndSwap(nil, err) }
	batch := func(seq uint64) *job { return &job{st: st, seq: seq, ts: tick(int(seq))} }
	ctx := context.Background()

	w.commit(ctx, []*job{batch(1)})
	gate.fill()
	w.commit(ctx, []*job{batch(2)})
	if err, _ := cause.Load().(error); status.Code(err) != codes.Unavailable {
		t.Fatalf("refused stream ended with %v, want Unavailable", err)
	}
	gate.free()
	w.commit(ctx, []*job{batch(3), batch(4)})
	if got := e.srv.seqs.last("db-1", 9); got != 1 {
		t.Fatalf("last stored seq %d after batch 2 was refused, want 1", got)
	}
	if got := st.acked.Load(); got != 1 {
		t.Fatalf("acked up to %d, want 1", got)
	}
	if pts := e.points("sysmonstm_agent_seq", "db-1"); len(pts) != 1 {
		t.Fatalf("stored seqs %v, want only 1", pts)
	}
}

// noSpaceStorage's commits meet ENOSPC the way the store reports it.
type noSpaceStorage struct{ testStore }

func (s noSpaceStorage) Appender(ctx context.Context) storage.Appender {
	return noSpaceAppender{s.testStore.Appender(ctx)}
}

type noSpaceAppender struct{ storage.Appender }

func (a noSpaceAppender) Commit() error {
	_ = a.Appender.Rollback()
	return &store.DiskFullError{Err: fmt.Errorf("write to WAL: log samples: %w",
		&fs.PathError{Op: "write", Path: "/data/tsdb/raw/wal/00000000", Err: syscall.ENOSPC})}
}

// A commit that finds the disk full ends the stream unacknowledged with a
// message naming it (not the hub's paths), and counts the samples.
func TestCommitOnFullDiskNamesIt(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.Storage = noSpaceStorage{o.Storage.(testStore)} })
	w := e.srv.writers[0]
	st := newStream(e.srv, &pb.Hello{MachineId: "db-2", Instance: 1}, w)
	var cause atomic.Value
	st.cancel = func(err error) { cause.CompareAndSwap(nil, err) }
	if err := st.define([]*pb.SeriesDef{{Id: 0, Name: "load1"}}); err != nil {
		t.Fatal(err)
	}
	j := st.batch(&pb.Batch{Seq: 1, TimestampMs: tick(1), SeriesIds: []uint32{0}, Values: []float64{1}})
	w.commit(context.Background(), []*job{j})
	err, _ := cause.Load().(error)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "disk full") || strings.Contains(err.Error(), "/data") {
		t.Fatalf("stream ended with %v; want Unavailable naming the full disk without paths", err)
	}
	if st.acked.Load() != 0 {
		t.Fatal("acknowledged a batch whose commit failed")
	}
	if got := testutil.ToFloat64(e.srv.m.dropped.WithLabelValues(reasonStorage)); got != 1 {
		t.Fatalf("dropped_samples_total{storage_error} = %v, want 1", got)
	}
}

func TestHTTPIngestWhileDiskFull(t *testing.T) {
	gate := &diskGate{}
	e := newEnv(t, t.TempDir(), nil, func(o *Options) { o.Writable = gate.writable })
	h := e.srv.HTTPHandler()
	body := `{"machine":"backup-box","metrics":[{"name":"a","value":1},{"name":"b","value":2}]}`
	gate.fill()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), `"error":"hub storage refuses samples: disk full`) {
		t.Fatalf("while full: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
	if got := testutil.ToFloat64(e.srv.m.dropped.WithLabelValues(reasonDiskFull)); got != 2 {
		t.Fatalf("dropped_samples_total{disk_full} = %v, want 2", got)
	}
	if pts := e.points("a", "backup-box"); len(pts) != 0 {
		t.Fatalf("stored while full: %v", pts)
	}
	gate.free()
	if code, out := post(t, h, body); code != 200 || out["accepted"] != 2.0 {
		t.Fatalf("after space freed: %d %v", code, out)
	}
}
