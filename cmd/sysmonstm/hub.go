//go:build !agentonly

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/hub"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
)

const defaultDataDir = "sysmonstm-data"

// hubFlags registers the hub's flags on fs.
func hubFlags(fs *flag.FlagSet) *hub.Config {
	c := &hub.Config{}
	fs.StringVar(&c.ListenHTTP, "listen-http", "127.0.0.1:8000", "HTTP address `HOST:PORT`: dashboard, REST API, WebSocket, /metrics")
	fs.StringVar(&c.ListenGRPC, "listen-grpc", "127.0.0.1:50051", "gRPC address `HOST:PORT` agents stream to")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "`DIR` of the embedded storage and hub state")
	postgresFlag(fs, &c.Postgres)
	fs.StringVar(&c.StorageEngine, "storage-engine", "auto", "`ENGINE` of the raw samples: \"tsdb\" (Prometheus TSDB), \"vm\" (VictoriaMetrics' storage engine: about half the disk and a quarter of the memory per series, more CPU per sample, values kept to 12 significant digits) or \"auto\": the data dir's, tsdb for a new one")
	fs.DurationVar(&c.RetentionRaw, "retention-raw", 24*time.Hour, "how long every raw sample is kept")
	fs.DurationVar(&c.Retention1m, "retention-1m", 30*24*time.Hour, "how long 1-minute rollups are kept")
	fs.DurationVar(&c.Retention1h, "retention-1h", 365*24*time.Hour, "how long 1-hour rollups are kept")
	fs.DurationVar(&c.OfflineAfter, "offline-after", 15*time.Second, "a machine with no data for this long is offline")
	fs.DurationVar(&c.ForgetOfflineAfter, "forget-offline-after", 0, "forget a machine with no data for this `DURATION` (e.g. 168h); its history stays; 0 = never")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `FILE` for HTTPS and gRPC TLS (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `FILE` for --tls-cert (both are re-read on SIGHUP)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM CA bundle `FILE`: agents must present a client certificate it signed (mutual TLS on gRPC)")
	fs.StringVar(&c.ExternalURL, "external-url", "", "`URL` users reach the dashboard at (e.g. https://monitor.example.com/), for links in notifications")
	fs.IntVar(&c.Query.MaxSamples, "query-max-samples", 50_000_000, "`N` samples one PromQL query may hold in memory at once (Prometheus' --query.max-samples); beyond, it fails with errorType execution")
	fs.DurationVar(&c.Query.Timeout, "query-timeout", 2*time.Minute, "`DURATION` one PromQL query may run (Prometheus' --query.timeout); a request's timeout parameter may shorten it")
	fs.IntVar(&c.Query.MaxSeries, "query-max-series", 500_000, "`N` series one PromQL query may select or answer, and one /api/v1/series answer list; beyond, it fails with errorType execution")
	fs.IntVar(&c.Limits.MaxSeriesPerMachine, "max-series-per-machine", 100_000, "`N` distinct active series of one machine over all its streams and HTTP ingest; new series beyond are refused")
	fs.IntVar(&c.Limits.MaxActiveSeries, "max-active-series", 2_000_000, "`N` distinct active series of all machines; new series beyond are refused")
	fs.IntVar(&c.Limits.MaxLiveSeriesPerMachine, "max-live-series-per-machine", 10_000, "`N` series per machine whose latest value the live state keeps (dashboard, /ws snapshot, machine object)")
	fs.IntVar(&c.Limits.MaxLabels, "max-labels-per-series", 30, "`N` labels per series; a series with more is dropped")
	fs.IntVar(&c.Limits.MaxLabelValueLength, "max-label-value-length", 1024, "`BYTES` of one label value; a longer one drops its series")
	fs.IntVar(&c.Limits.MaxMessageBytes, "max-message-bytes", 8<<20, "`BYTES` of one gRPC message from an agent")
	fs.Int64Var(&c.Limits.MaxBodyBytes, "max-body-bytes", 4<<20, "`BYTES` of one POST /api/v1/ingest body or POST /api/v1/write body (compressed; decompressed up to 8 times that)")
	fs.Var(maxMemoryFlag{&c.Limits.MaxMemory}, "max-memory", "`BYTES` (or 512MiB, 2GiB) the hub may use: above 80% of it new series are refused (existing series keep flowing) and Go's soft memory limit is 90% of it; \"auto\" (default): the cgroup memory limit (/sys/fs/cgroup/memory.max) when set, else off; \"off\": none")
	fs.StringVar(&c.RemoteWriteMachineLabel, "remote-write-machine-label", "instance", "`LABEL` whose value groups series received by Prometheus remote write (POST /api/v1/write) into dashboard machines")
	fs.IntVar(&c.Conn.MaxPerIP, "max-conns-per-ip", 256, "`N` open connections one client address (an IPv6 /64) may hold on each listener, HTTP and gRPC; more are closed at once (0: no limit)")
	c.Conn.Exempt = netguard.Loopback()
	fs.Var(prefixesFlag{&c.Conn.Exempt}, "conn-limit-exempt", "client `ADDRS` or CIDR prefixes, comma-separated, without the --max-conns-per-ip limit (\"none\": none)")
	c.Conn.BodyTimeout = 30 * time.Second
	fs.Var(&atLeastDuration{&c.Conn.BodyTimeout, time.Second}, "request-body-timeout", "`DURATION` an HTTP request body may take to arrive after its headers; a slower one is cut and its connection closed")
	fs.IntVar(&c.MinFreeDiskMiB, "min-free-disk-mib", 256, "`MIB` kept free on the data dir's filesystem: below it samples are refused (agents buffer them) and /ready answers 503")
	alertingFlags(fs, &c.Alerting)
	securityFlags(fs, &c.Security)
	edgeFlags(fs, &c.Edge)
	remoteWriteFlags(fs, &c.RemoteWrite)
	busFlags(fs, &c.Bus)
	historyFlags(fs, &c.History)
	return c
}

// validateHub checks the hub settings (hub.Config.Validate), named as
// flags. It maps --max-conns-per-ip 0 (no limit) to the Config's -1.
func validateHub(c *hub.Config) error {
	switch {
	case c.Conn.MaxPerIP < 0:
		return fmt.Errorf("--max-conns-per-ip %d: must be 0 (no limit) or more", c.Conn.MaxPerIP)
	case c.Conn.MaxPerIP == 0:
		c.Conn.MaxPerIP = -1 // hub.Config's "no limit"; its 0 is the default
	}
	return config.Flagged(c.Validate())
}

// maxMemoryFlag is --max-memory: auto, off or bytes (hub.ParseMaxMemory).
type maxMemoryFlag struct{ p *int64 }

func (f maxMemoryFlag) String() string {
	switch {
	case f.p == nil || *f.p == hub.MaxMemoryAuto:
		return "auto"
	case *f.p == hub.MaxMemoryOff:
		return "off"
	}
	return fmt.Sprint(*f.p)
}

func (f maxMemoryFlag) Set(s string) error {
	v, err := hub.ParseMaxMemory(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// prefixesFlag is a flag of comma-separated addresses and CIDR prefixes.
type prefixesFlag struct{ p *[]netip.Prefix }

func (f prefixesFlag) String() string {
	if f.p == nil {
		return ""
	}
	parts := make([]string, len(*f.p))
	for i, p := range *f.p {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (f prefixesFlag) Set(s string) error {
	ps, err := netguard.ParsePrefixes(s)
	if err != nil {
		return err
	}
	*f.p = ps
	return nil
}

func runHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("hub", "Run the central hub: gRPC ingest, embedded storage, HTTP API.", stderr)
	cfg := hubFlags(fs)
	check := fs.Bool("check-config", false, "parse and check the settings (flags, environment, --config file), then exit without opening anything: 0 when they are valid")
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	if err := validateHub(cfg); err != nil {
		return err
	}
	if *check {
		fmt.Fprintln(stdout, "sysmonstm hub: settings valid")
		return nil
	}
	cfg.Logger = log
	h, err := hub.New(*cfg)
	if err != nil {
		return config.Flagged(err)
	}
	fmt.Fprintf(stdout, "sysmonstm hub: dashboard %s, agents connect to %s\n", h.URL(), h.GRPCAddr())
	go reloadOnSIGHUP(ctx, h, log)
	return h.Run(ctx)
}

// reloadOnSIGHUP re-reads the hub's TLS certificate on every SIGHUP until
// ctx ends; a failed reload is logged and the previous certificate stays.
func reloadOnSIGHUP(ctx context.Context, h *hub.Hub, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := h.ReloadTLS(); err != nil {
				log.Error("SIGHUP: TLS reload failed; the previous certificate stays in use", "err", config.Flagged(err))
			}
		}
	}
}
