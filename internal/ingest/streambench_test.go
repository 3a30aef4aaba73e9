package ingest

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/store"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// streamBench is a real ingest server behind a real gRPC server on
// loopback TCP, over a real store in a temporary directory and a real live
// state, with agents' streams open and their batches encoded in advance.
type streamBench struct {
	srv     *Server
	streams []*benchAgent
	series  int
}

// benchAgent is one agent stream of a streamBench; its batches are encoded
// before the clock starts so that the benchmark measures the hub, not the
// client's encoding.
type benchAgent struct {
	s     pb.Ingest_StreamClient
	msgs  []*grpc.PreparedMsg
	acks  chan uint64 // from the stream's receiver, started once
	once  sync.Once
	acked uint64
}

// streamBenchOptions shape the workload: machines agents, conns gRPC
// connections shared by them (loadgen puts 100 on one), series per agent,
// batches per agent, window unacknowledged batches per agent.
type streamBenchOptions struct {
	machines, conns, series, batches, window int
}

func newStreamBench(tb testing.TB, o streamBenchOptions) *streamBench {
	tb.Helper()
	st, err := store.Open(store.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	lv, err := live.New(live.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	// Batches are a second apart from base on; the hub's clock stands
	// where every one of them is within MaxAge and MaxFuture.
	base := time.Now().Add(-time.Hour).UnixMilli() / 1000 * 1000
	now := time.UnixMilli(base + int64(o.batches)*1000)
	srv, err := New(Options{Storage: testStore{st}, Live: lv, Now: func() time.Time { return now }, MaxAge: 2*time.Hour + time.Duration(o.batches)*time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(runDone) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	gs := grpc.NewServer(ServerOptions(8 << 20)...)
	pb.RegisterIngestServer(gs, srv)
	go func() { _ = gs.Serve(ln) }()
	conns := make([]*grpc.ClientConn, o.conns)
	for i := range conns {
		if conns[i], err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			tb.Fatal(err)
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	tb.Cleanup(func() {
		scancel()
		for _, c := range conns {
			c.Close()
		}
		gs.Stop()
		cancel()
		<-runDone
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})

	b := &streamBench{srv: srv, series: o.series}
	defs := make([]*pb.SeriesDef, o.series)
	ids := make([]uint32, o.series)
	for i := range defs {
		defs[i] = &pb.SeriesDef{Id: uint32(i), Name: "bench_metric_" + strconv.Itoa(i%50), Labels: []*pb.Label{
			{Name: "cpu", Value: strconv.Itoa(i / 50)}, {Name: "mode", Value: "user"}}}
		ids[i] = uint32(i)
	}
	vals := make([]float64, o.series)
	for m := range o.machines {
		c := pb.NewIngestClient(conns[m%len(conns)])
		s, err := c.Stream(sctx)
		if err != nil {
			tb.Fatal(err)
		}
		hello := &pb.Hello{MachineId: fmt.Sprintf("bench-%04d", m), Instance: uint64(m + 1), IntervalMs: 1000}
		if err := s.Send(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: hello}}); err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			tb.Fatal(err)
		}
		if err := s.Send(&pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: defs}}}); err != nil {
			tb.Fatal(err)
		}
		a := &benchAgent{s: s, acks: make(chan uint64, o.batches)}
		for k := range o.batches {
			for i := range vals {
				// Gauges with two decimals, as the agents round them.
				vals[i] = float64((i*37+k*11+m)%10000) / 100
			}
			msg := &pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{
				Seq: uint64(k + 1), TimestampMs: base + int64(k)*1000, SeriesIds: ids, Values: vals}}}
			pm := &grpc.PreparedMsg{}
			if err := pm.Encode(s, msg); err != nil {
				tb.Fatal(err)
			}
			a.msgs = append(a.msgs, pm)
		}
		b.streams = append(b.streams, a)
	}
	return b
}

// run sends every agent's batches up to (not including) batch end, at most
// window unacknowledged each, and waits for their acks.
func (b *streamBench) run(tb testing.TB, window, end int) {
	var wg sync.WaitGroup
	errs := make(chan error, len(b.streams))
	for _, a := range b.streams {
		wg.Go(func() {
			acks := a.acks
			a.once.Do(func() {
				go func() {
					for {
						m, err := a.s.Recv()
						if err != nil {
							close(acks)
							return
						}
						acks <- m.GetAck().GetSeq()
					}
				}()
			})
			for k := int(a.acked); k < end; k++ {
				pm := a.msgs[k]
				for uint64(k)-a.acked >= uint64(window) {
					seq, ok := <-acks
					if !ok {
						errs <- fmt.Errorf("stream ended after ack %d of %d", a.acked, end)
						return
					}
					a.acked = seq
				}
				if err := a.s.SendMsg(pm); err != nil {
					errs <- err
					return
				}
			}
			for a.acked < uint64(end) {
				seq, ok := <-acks
				if !ok {
					errs <- fmt.Errorf("stream ended after ack %d of %d", a.acked, len(a.msgs))
					return
				}
				a.acked = seq
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// BenchmarkStreamIngest measures the hub's whole agent path: batches of
// 1,300 series from 100 agents on 10 gRPC connections (loadgen's shape)
// over loopback TCP, decoded, validated, published to the live state,
// group-committed to a real store (WAL write included) and acknowledged.
// One op is one batch; the batches are encoded before the clock starts,
// and each agent's first batch (which creates its series in the store) is
// sent before it too. b.N is rounded up to whole rounds of one batch per
// agent. SYSMONSTM_BENCH_MACHINES sets the number of agents (loadgen's
// documented run has 1,000: 1.3 M series).
func BenchmarkStreamIngest(b *testing.B) {
	o := streamBenchOptions{machines: 100, conns: 10, series: 1300, window: 4}
	if v := os.Getenv("SYSMONSTM_BENCH_MACHINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SYSMONSTM_BENCH_MACHINES=%q: want a number of agents", v)
		}
		o.machines, o.conns = n, (n+99)/100
	}
	rounds := max(1, (b.N+o.machines-1)/o.machines)
	o.batches = rounds + 1
	sb := newStreamBench(b, o)
	sb.run(b, o.window, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU(b)
	b.ResetTimer()
	sb.run(b, o.window, o.batches)
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&after)
	samples := float64(o.machines * rounds * o.series)
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	// CPU time (user and system, client included) depends less on what
	// else runs on the machine than wall time does.
	b.ReportMetric(float64(cpu.Nanoseconds())/samples, "cpu-ns/sample")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/samples, "allocs/sample")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/samples, "B/sample")
}
