package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sysmonstm/sysmonstm/internal/agent"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// machinesPerConn is how many simulated agents share one gRPC connection
// (one TCP connection, one HTTP/2 stream per agent).
const machinesPerConn = 100

// runHub runs one agent.Agent per machine against opts.Hub. With one hub,
// up to machinesPerConn agents share a connection; with a list of hubs each
// agent dials on its own, spreading and failing over as real agents do.
func runHub(ctx context.Context, opts Options) (Summary, error) {
	hubs, err := agent.ParseHubs(opts.Hub)
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: %w", agent.CheckHubSetting(opts.Hub))
	}
	nconns := (opts.Machines + machinesPerConn - 1) / machinesPerConn
	if len(hubs) > 1 {
		nconns = 0
	}
	conns := make([]*grpc.ClientConn, 0, nconns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	params := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		MinConnectTimeout: 10 * time.Second,
	}
	for range cap(conns) {
		c, err := grpc.NewClient(opts.Hub, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(params))
		if err != nil {
			return Summary{}, fmt.Errorf("loadgen: dial hub %s: %w", opts.Hub, err)
		}
		conns = append(conns, c)
	}

	var stopped atomic.Bool // set when generation ends; sources then return nothing
	why := newReasons()
	agents := make([]*agent.Agent, opts.Machines)
	for i := range agents {
		w := NewWorkload(i, opts.Series, opts.Seed)
		id := opts.machineID(i)
		// Every agent's warnings are failure reasons; one agent also logs
		// them for all: the others would repeat it.
		log := slog.New(why.handler(id))
		if i == 0 {
			log = slog.New(slog.NewMultiHandler(why.handler(id), minLevel{opts.Logger.Handler(), slog.LevelWarn})).With("machine", id)
		}
		var conn *grpc.ClientConn
		if len(conns) > 0 {
			conn = conns[i/machinesPerConn]
		}
		a, err := agent.New(agent.Options{
			Hub:       opts.Hub,
			Token:     opts.Token,
			MachineID: id,
			Labels:    metric.Labels{{Name: "loadgen", Value: "true"}},
			Info: &sysmonstmv1.HostInfo{
				Os: "linux", Platform: "loadgen", Arch: "amd64", CpuModel: "Simulated CPU",
				CpuThreads: uint32(len(w.cores)), CpuCores: uint32(max(1, len(w.cores)/2)),
				MemoryTotalBytes: uint64(w.memTotal), BootTimeUnix: w.boot,
			},
			Version:  "loadgen",
			Interval: opts.Interval,
			Phase:    opts.Phase(i),
			Conn:     conn,
			Logger:   log,
		}, func(context.Context) []metric.Sample {
			if stopped.Load() {
				return nil
			}
			return w.Tick(time.Now())
		})
		if err != nil {
			return Summary{}, fmt.Errorf("loadgen: machine %s: %w", id, err)
		}
		agents[i] = a
	}

	// Agents outlive the generation phase by a short flush.
	actx, cancelAgents := context.WithCancel(context.WithoutCancel(ctx))
	var watch *watcher
	if opts.Watch != "" {
		var err error
		if watch, err = startWatch(actx, opts.Watch, opts.MachinePrefix, time.Now().Add(opts.WatchWarmup), opts.WatchWindow); err != nil {
			cancelAgents()
			return Summary{}, err
		}
	}
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Go(func() { _ = a.Run(actx) })
	}
	start := time.Now()
	gctx, cancel := runUntil(ctx, opts.Duration)
	defer cancel()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
wait:
	for {
		select {
		case <-gctx.Done():
			break wait
		case <-progress.C:
			s, connected := hubSummary(agents, opts)
			opts.Logger.Info("loadgen progress", "connected", connected, "machines", opts.Machines,
				"acked_samples", s.AckedSamples, "errors", s.Errors)
		}
	}
	stopped.Store(true)
	elapsed := time.Since(start)

	// Flush: wait for acks of what was generated, briefly. A tick that
	// read its samples just before the stop buffers its batch a moment
	// later, so the agents must hold nothing for a while, not once (a
	// batch sent after one empty look went unacknowledged in CI).
	grace := max(2*time.Second, 2*opts.Interval)
	if ctx.Err() != nil {
		grace = time.Second
	}
	const settle = 200 * time.Millisecond
	deadline, emptySince := time.Now().Add(grace), time.Time{}
	for now := time.Now(); now.Before(deadline); now = time.Now() {
		if buffered(agents) > 0 {
			emptySince = time.Time{}
		} else if emptySince.IsZero() {
			emptySince = now
		} else if now.Sub(emptySince) >= settle {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancelAgents()
	wg.Wait()

	s, _ := hubSummary(agents, opts)
	s.ErrorReasons = why.list()
	if watch != nil {
		s.Live = watch.result()
	}
	summarize(&s, elapsed)
	return s, nil
}

func buffered(agents []*agent.Agent) int {
	n := 0
	for _, a := range agents {
		n += a.Stats().Buffered
	}
	return n
}

func hubSummary(agents []*agent.Agent, opts Options) (Summary, int) {
	s := Summary{Machines: opts.Machines, SeriesPerMachine: opts.Series, Ticks: opts.ticks()}
	connected := 0
	for _, a := range agents {
		st := a.Stats()
		s.SentSamples += st.SentSamples
		s.AckedSamples += st.AckedSamples
		s.Errors += st.Errors
		if st.Connected {
			connected++
		}
	}
	return s, connected
}

// minLevel passes on records at or above min only.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
