package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sysmonstm/sysmonstm/internal/bus/bustest"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// startNATS runs an embedded NATS server with JetStream on a free port.
func startNATS(t testing.TB) *server.Server { return bustest.NATS(t) }

// startCluster runs a 3-node JetStream cluster in-process and waits for
// its meta leader. JetStream needs every node's routes configured, so the
// route ports are taken from the OS first (listen, close, hand over).
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	var nodes []*server.Server
	for _, o := range clusterOptions(t) {
		nodes = append(nodes, startNode(t, o))
	}
	waitClusterReady(t, nodes)
	return nodes
}

// clusterOptions are the options of a 3-node JetStream cluster's servers
// on free loopback ports.
func clusterOptions(t *testing.T) []*server.Options {
	t.Helper()
	var routes []*url.URL
	var ports []int
	for range 3 {
		ln := listen(t)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: ln.Addr().String()})
		ln.Close()
	}
	var opts []*server.Options
	for i := range 3 {
		opts = append(opts, &server.Options{ServerName: fmt.Sprint("n", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, NoLog: true, Routes: routes,
			Cluster: server.ClusterOpts{Name: "sysmonstm", Host: "127.0.0.1", Port: ports[i]}})
	}
	return opts
}

// startNode starts one server and waits until it takes connections.
func startNode(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatalf("nats server %s not ready", s.Name())
	}
	return s
}

// waitClusterReady waits until the nodes are routed to each other and
// JetStream has a meta leader.
func waitClusterReady(t *testing.T, nodes []*server.Server) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "JetStream meta leader", func() error {
		for _, s := range nodes {
			if s.NumRoutes() < 2 {
				return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
			}
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", s.Name())
			}
		}
		for _, s := range nodes {
			if s.JetStreamIsLeader() {
				return nil
			}
		}
		return errors.New("no meta leader yet")
	})
}

func urlsOf(nodes ...*server.Server) []string {
	out := make([]string, len(nodes))
	for i, s := range nodes {
		out[i] = s.ClientURL()
	}
	return out
}

// newLive is a real live state for a test hub.
func newLive(t *testing.T) *live.State {
	t.Helper()
	st, err := live.New(live.Options{OfflineAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newBus connects a test hub's bus and runs it until the test ends.
func newBus(t *testing.T, opts Options) *Bus {
	t.Helper()
	if opts.Live == nil {
		opts.Live = newLive(t)
	}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	b, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	return b
}

// batch builds a test batch of n series (cpu{core="i"}) with value seq+i.
func batch(machine string, instance, seq uint64, ts int64, n int) ingest.BusBatch {
	x := ingest.BusBatch{Machine: machine, Instance: instance, Seq: seq, Ts: ts}
	for i := range n {
		x.Series = append(x.Series, live.NewSeries("cpu_usage_percent", metric.Labels{{Name: "core", Value: fmt.Sprint(i)}}))
		x.Values = append(x.Values, float64(seq)+float64(i))
	}
	return x
}

// startVM runs VictoriaMetrics with identical samples de-duplicated
// (-dedup.minScrapeInterval=1ms, what the docs tell operators) and returns
// its address.
func startVM(t *testing.T) string {
	t.Helper()
	bin := testutil.NeedBinary(t, "victoria-metrics", "apt-get install victoria-metrics")
	addr := testutil.FreeAddr(t)
	testutil.StartProcess(t, "victoria-metrics", bin, "http://"+addr+"/health",
		"-httpListenAddr", addr, "-storageDataPath", t.TempDir(), "-retentionPeriod", "100y",
		"-dedup.minScrapeInterval=1ms", "-loggerLevel", "WARN")
	return addr
}

func vmTarget(addr string) []remotewrite.Target {
	return []remotewrite.Target{{URL: "http://" + addr + "/api/v1/write"}}
}

// vmExport returns every sample VictoriaMetrics holds of match, by
// series key, as "ts=value" strings in time order.
func vmExport(t *testing.T, addr, match string) map[string][]string {
	return testutil.VMSamples(t, addr, match)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func targets(urls []string) []remotewrite.Target {
	out := make([]remotewrite.Target, len(urls))
	for i, u := range urls {
		out[i] = remotewrite.Target{URL: u}
	}
	return out
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
