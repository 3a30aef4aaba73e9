package ingest

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// testStore is the real store as ingest sees it; tests wrap it to inject
// failures.
type testStore struct{ *store.Store }

// env is a real ingest server on loopback over a real store and live state.
type env struct {
	t      *testing.T
	dir    string
	st     *store.Store
	live   *live.State
	srv    *Server
	reg    *prometheus.Registry
	conn   *grpc.ClientConn
	client pb.IngestClient
	stop   func()
}

// newEnv starts the env with the hub's gRPC server options; each of with
// may change the ingest options.
func newEnv(t *testing.T, dir string, auth AuthFunc, with ...func(*Options)) *env {
	t.Helper()
	return newEnvGRPC(t, dir, auth, ServerOptions(8<<20), with...) // the hub's default message limit
}

// newEnvGRPC is newEnv with the gRPC server options gopts.
func newEnvGRPC(t *testing.T, dir string, auth AuthFunc, gopts []grpc.ServerOption, with ...func(*Options)) *env {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	lv, err := live.New(live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts := Options{Storage: testStore{st}, Live: lv, Auth: auth, Registerer: reg, HelloTimeout: 2 * time.Second}
	for _, f := range with {
		f(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(runDone) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(gopts...)
	pb.RegisterIngestServer(gs, srv)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, st: st, live: lv, srv: srv, reg: reg, conn: conn, client: pb.NewIngestClient(conn)}
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		gs.Stop()
		cancel()
		<-runDone
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(e.stop)
	return e
}

// agentConn is a hand-driven agent stream.
type agentConn struct {
	t       *testing.T
	s       pb.Ingest_StreamClient
	welcome *pb.Welcome
	cancel  func()
}

func (e *env) connect(machine string, instance uint64) (*agentConn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.client.Stream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	err = s.Send(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{
		MachineId: machine, Hostname: machine + ".example", Instance: instance, IntervalMs: 1000,
		Labels: []*pb.Label{{Name: "env", Value: "test"}},
		Info:   &pb.HostInfo{Os: "linux", CpuThreads: 4},
	}}})
	if err != nil {
		cancel()
		return nil, err
	}
	m, err := s.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	if m.GetWelcome() == nil {
		cancel()
		return nil, errors.New("no welcome")
	}
	e.t.Cleanup(cancel)
	return &agentConn{t: e.t, s: s, welcome: m.GetWelcome(), cancel: cancel}, nil
}

func (a *agentConn) send(m *pb.AgentMessage) {
	a.t.Helper()
	if err := a.s.Send(m); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agentConn) defs(names ...string) {
	var d []*pb.SeriesDef
	for i, n := range names {
		d = append(d, &pb.SeriesDef{Id: uint32(i), Name: n, Labels: []*pb.Label{{Name: "cpu", Value: "total"}}})
	}
	a.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: d}}})
}

func (a *agentConn) batch(seq uint64, ts int64, ids []uint32, vals []float64) {
	a.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{Seq: seq, TimestampMs: ts, SeriesIds: ids, Values: vals}}})
}

// waitAck reads until an ack ≥ seq arrives.
func (a *agentConn) waitAck(seq uint64) {
	a.t.Helper()
	for {
		m, err := a.s.Recv()
		if err != nil {
			a.t.Fatalf("waiting for ack %d: %v", seq, err)
		}
		if m.GetAck().GetSeq() >= seq {
			return
		}
	}
}

// points reads a series' stored samples from the raw tier.
func (e *env) points(name, machine string) [][2]float64 {
	e.t.Helper()
	q, err := e.st.Raw().Querier(math.MinInt64/2, math.MaxInt64/2)
	if err != nil {
		e.t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil,
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name),
		labels.MustNewMatcher(labels.MatchEqual, "machine", machine))
	var out [][2]float64
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			t, v := it.At()
			out = append(out, [2]float64{float64(t), v})
		}
	}
	return out
}

func tick(i int) int64 { return tickBase() + int64(i)*1000 }

// tickBase is a minute before the first tick call, whole seconds, and the
// same for the package's whole run: a test that calls tick(2) and later
// tick(1) must not find them equal because a second went by in between.
var tickBase = sync.OnceValue(func() int64 {
	return time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
})

func TestStreamStoresAcksAndFeedsLive(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	a, err := e.connect("web-1", 7)
	if err != nil {
		t.Fatal(err)
	}
	if a.welcome.GetLastSeq() != 0 {
		t.Fatalf("welcome last_seq = %d for a new instance", a.welcome.GetLastSeq())
	}
	a.defs("cpu_usage_percent", "load1")
	for i := 1; i <= 3; i++ {
		a.batch(uint64(i), tick(i), []uint32{0, 1}, []float64{float64(10 * i), 0.5})
	}
	a.waitAck(3)
	pts := e.points("cpu_usage_percent", "web-1")
	if len(pts) != 3 || pts[0][1] != 10 || pts[2][1] != 30 || int64(pts[1][0]) != tick(2) {
		t.Fatalf("stored %v", pts)
	}
	m, ok := e.live.Machine("web-1")
	if !ok || !m.Online || m.Info.Hostname != "web-1.example" || m.Info.Labels.Get("env") != "test" {
		t.Fatalf("live machine %+v", m)
	}
	var cpu float64
	for _, v := range m.Metrics {
		if v.Name == "cpu_usage_percent" {
			cpu = v.Value
		}
	}
	if cpu != 30 {
		t.Fatalf("live cpu = %v, want 30", cpu)
	}
	if got := testutil.ToFloat64(e.srv.m.ingested); got != 6 {
		t.Fatalf("ingested counter %v, want 6", got)
	}
}

func TestReplayedBatchesAreStoredOnce(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, nil)
	a, _ := e.connect("db-1", 42)
	a.defs("load1")
	for i := 1; i <= 5; i++ {
		a.batch(uint64(i), tick(i), []uint32{0}, []float64{float64(i)})
	}
	a.waitAck(5)
	a.cancel()

	// Same instance reconnects: the welcome says what is stored, and batches
	// replayed anyway are acknowledged but not written twice.
	b, err := e.connect("db-1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if b.welcome.GetLastSeq() != 5 {
		t.Fatalf("welcome last_seq = %d, want 5", b.welcome.GetLastSeq())
	}
	b.defs("load1")
	for i := 4; i <= 7; i++ {
		b.batch(uint64(i), tick(i), []uint32{0}, []float64{float64(i)})
	}
	b.waitAck(7)
	if pts := e.points("load1", "db-1"); len(pts) != 7 {
		t.Fatalf("stored %d points, want 7: %v", len(pts), pts)
	}

	// After a restart the hub still knows, from storage, what it stored.
	b.cancel()
	e.stop()
	e2 := newEnv(t, dir, nil)
	c, err := e2.connect("db-1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if c.welcome.GetLastSeq() != 7 {
		t.Fatalf("after restart welcome last_seq = %d, want 7", c.welcome.GetLastSeq())
	}
	c.defs("load1")
	c.batch(7, tick(7), []uint32{0}, []float64{7})
	c.batch(8, tick(8), []uint32{0}, []float64{8})
	c.waitAck(8)
	if pts := e2.points("load1", "db-1"); len(pts) != 8 {
		t.Fatalf("after restart stored %d points, want 8", len(pts))
	}
	// A new agent instance starts its own sequence.
	d, _ := e2.connect("db-1", 43)
	if d.welcome.GetLastSeq() != 0 {
		t.Fatalf("new instance welcome last_seq = %d", d.welcome.GetLastSeq())
	}
}

func TestBadInputIsDroppedAndCounted(t *testing.T) {
	e := newEnv(t, t.TempDir(), nil)
	a, _ := e.connect("edge-1", 1)
	a.send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: []*pb.SeriesDef{
		{Id: 0, Name: "good"},
		{Id: 1, Name: "bad name!"},
		{Id: 2, Name: "dup_labels", Labels: []*pb.Label{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}}},
		{Id: 3, Name: "machine_spoof", Labels: []*pb.Label{{Name: "machine", Value: "other"}}},
	}}}})
	a.batch(1, tick(1), []uint32{0, 1, 2, 3, 99}, []float64{1, 2, 3, 4, 5})          // only "good" survives
	a.batch(2, tick(2), []uint32{0}, []float64{math.NaN()})                          // NaN dropped
	a.batch(3, tick(3), []uint32{0}, []float64{math.Inf(1)})                         // Inf dropped
	a.batch(4, tick(4), []uint32{0, 0}, []float64{1})                                // length mismatch
	a.batch(5, time.Now().Add(time.Hour).UnixMilli(), []uint32{0}, []float64{1})     // future
	a.batch(6, time.Now().Add(-48*time.Hour).UnixMilli(), []uint32{0}, []float64{1}) // ancient
	a.batch(7, tick(7), []uint32{0}, []float64{7})
	a.waitAck(7)
	pts := e.points("good", "edge-1")
	if len(pts) != 2 || pts[0][1] != 1 || pts[1][1] != 7 {
		t.Fatalf("stored %v, want the two valid samples", pts)
	}
	if n := len(e.points("good", "other")); n != 0 {
		t.Fatalf("a series wrote as another machine")
	}
	for reason, want := range map[string]float64{
		reasonUnknownSeries: 4, reasonInvalidValue: 2, reasonInvalidBatch: 1, reasonTooNew: 1, reasonTooOld: 1,
	} {
		if got := testutil.ToFloat64(e.srv.m.dropped.WithLabelValues(reason)); got != want {
			t.Errorf("dropped{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(e.srv.m.invalidSeries); got != 3 {
		t.Errorf("invalid series = %v, want 3", got)
	}
	// Another agent was never affected.
	b, _ := e.connect("edge-2", 1)
	b.defs("good")
	b.batch(1, tick(1), []uint32{0}, []float64{1})
	b.waitAck(1)
}

func TestHelloIsChecked(t *testing.T) {
	e := newEnv(t, t.TempDir(), func(_ context.Context, token, machine string) error {
		if token != "s3cret" {
			return errors.New("unknown token")
		}
		return nil
	})
	code := func(h *pb.Hello, first *pb.AgentMessage) codes.Code {
		s, err := e.client.Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = &pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: h}}
		}
		if err := s.Send(first); err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		return status.Code(err)
	}
	if c := code(&pb.Hello{MachineId: "m", Token: "wrong"}, nil); c != codes.Unauthenticated {
		t.Errorf("wrong token: %v", c)
	}
	if c := code(&pb.Hello{MachineId: "", Token: "s3cret"}, nil); c != codes.InvalidArgument {
		t.Errorf("empty machine id: %v", c)
	}
	if c := code(&pb.Hello{MachineId: "a\x1b[2Jb", Token: "s3cret"}, nil); c != codes.InvalidArgument {
		t.Errorf("control characters in machine id: %v", c)
	}
	if c := code(&pb.Hello{MachineId: "m", Token: "s3cret", Labels: []*pb.Label{{Name: "1bad", Value: "x"}}}, nil); c != codes.InvalidArgument {
		t.Errorf("bad label: %v", c)
	}
	batchFirst := &pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{Seq: 1}}}
	if c := code(nil, batchFirst); c != codes.InvalidArgument {
		t.Errorf("batch before hello: %v", c)
	}
	if c := code(&pb.Hello{MachineId: "m", Token: "s3cret"}, nil); c != codes.OK {
		t.Errorf("good hello: %v", c)
	}
}

func TestProcessSnapshotValidation(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	s, err := New(Options{Storage: nopStorage{}, Live: nopLive{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ts := now.UnixMilli()
	_, procs, err := s.processSnapshot(&pb.ProcessSnapshot{TimestampMs: ts, Processes: []*pb.Process{
		{Pid: 9, Name: "ok", User: "bad\xffutf8", Command: strings.Repeat("é", 200), CpuPercent: math.NaN(), RssBytes: 7, State: "R"},
		{Pid: 10, CpuPercent: -1},
		{Pid: 11, CpuPercent: 150.5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := procs[0]
	if p.PID != 9 || p.Name != "ok" || p.User != "bad\uFFFDutf8" || len(p.Command) != 256 || !utf8.ValidString(p.Command) || p.CPUPercent != 0 || p.RSSBytes != 7 || p.State != "R" {
		t.Fatalf("sanitised %+v (command %d bytes)", p, len(p.Command))
	}
	if procs[1].CPUPercent != 0 || procs[2].CPUPercent != 150.5 {
		t.Fatalf("cpu %v %v", procs[1].CPUPercent, procs[2].CPUPercent)
	}
	for name, ps := range map[string]*pb.ProcessSnapshot{
		"too many":    {TimestampMs: ts, Processes: make([]*pb.Process, 101)},
		"future":      {TimestampMs: ts + int64(time.Hour/time.Millisecond)},
		"too old":     {TimestampMs: ts - int64(3*time.Hour/time.Millisecond)},
		"no time set": {},
	} {
		if _, _, err := s.processSnapshot(ps); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
