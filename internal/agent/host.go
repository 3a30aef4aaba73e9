package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/push"
	"github.com/sysmonstm/sysmonstm/internal/scrape"
	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// Host is the agent of one machine, assembled from a Config: the default
// collector set plus the process-state totals and the pushed values as the
// stream's Source, the top-process snapshot on its own ticker, and the push
// socket beside the stream.
type Host struct {
	agent  *Agent
	push   *push.Server    // nil when disabled
	scrape *scrape.Scraper // nil without targets
}

// NewHost fills in cfg's defaults, validates it, reads the host
// description, opens the push socket and builds the stream; it does not
// connect (Run does). Errors about a setting are *config.SettingError.
func NewHost(cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	dial, err := cfg.dialOptions(log)
	if err != nil {
		return nil, err
	}
	copts := cfg.collectOptions(log.With("component", "collect"))
	set := collect.NewDefault(copts)
	var top *collect.TopProcesses
	if cfg.TopProcesses > 0 {
		top = collect.NewTopProcesses(copts, cfg.TopProcesses)
	}
	pushed := push.NewStore(cfg.PushTTL)
	srv, err := cfg.listenPush(pushed, log.With("component", "push"))
	if err != nil {
		return nil, err
	}
	src := func(ctx context.Context) []metric.Sample {
		samples := set.Collect(ctx)
		if top != nil {
			samples = top.AppendStates(samples)
		}
		return pushed.Append(samples)
	}
	info, hostname := hostInfo(copts, log)
	opts := Options{
		Hub:         cfg.Hub,
		Token:       cfg.Token,
		MachineID:   cfg.MachineID,
		Hostname:    hostname,
		Labels:      cfg.Labels,
		Info:        info,
		Version:     cfg.Version,
		Interval:    cfg.Interval,
		BufferBytes: cfg.BufferMiB << 20,
		DialOptions: dial,
		Logger:      log.With("component", "agent"),
	}
	if top != nil {
		opts.Snapshots = processSnapshots(top, log)
		opts.SnapshotInterval = cfg.ProcessesInterval
	}
	a, err := New(opts, src)
	if err != nil {
		if srv != nil {
			srv.Close()
		}
		return nil, err
	}
	h := &Host{agent: a, push: srv}
	if len(cfg.Scrape) > 0 {
		h.scrape, err = scrape.New(scrape.Options{Targets: cfg.Scrape, Emit: a.Submit,
			UserAgent: "sysmonstm-agent/" + cfg.Version, Logger: log.With("component", "scrape")})
		if err != nil {
			if srv != nil {
				srv.Close()
			}
			return nil, &config.SettingError{Setting: "scrape", Err: err}
		}
	}
	return h, nil
}

// Run runs the stream and the push socket until ctx ends; call it once.
func (h *Host) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.agent.Run(gctx) })
	if h.push != nil {
		g.Go(func() error { return h.push.Run(gctx) })
	}
	if h.scrape != nil {
		g.Go(func() error { return h.scrape.Run(gctx) })
	}
	return g.Wait()
}

// PushSocket returns the path of the push socket, "" when there is none.
func (h *Host) PushSocket() string {
	if h.push == nil {
		return ""
	}
	return h.push.Path()
}

// collectOptions returns the collectors' options; c has its defaults.
func (c *Config) collectOptions(log *slog.Logger) collect.Options {
	timeout := c.CollectorTimeout
	if timeout == 0 {
		timeout = min(c.Interval/2, 5*time.Second)
	}
	dirs, _ := collect.ParseDirSpecs(c.DirSizes) // Validate reported errors
	return collect.Options{ProcPath: c.ProcPath, SysPath: c.SysPath, RootFS: c.RootFS, Timeout: timeout, Logger: log,
		TextfileDir: c.TextfileDir, SmartInterval: c.SmartInterval, GPUInterval: c.GPUInterval,
		ServiceInterval: c.ServiceInterval, Disable: c.disabled(),
		DirSizes: dirs, DirSizeInterval: c.DirSizeInterval}
}

// hostInfo returns the hello's host description and the hostname; what
// cannot be read is logged and left out.
func hostInfo(copts collect.Options, log *slog.Logger) (*sysmonstmv1.HostInfo, string) {
	hi, err := collect.ReadHostInfo(copts)
	if err != nil {
		log.Warn("host information incomplete", "err", err)
	}
	info := &sysmonstmv1.HostInfo{
		Os: hi.OS, Platform: hi.Platform, KernelVersion: hi.KernelVersion, Arch: hi.Arch,
		CpuModel: hi.CPUModel, CpuCores: hi.CPUCores, CpuThreads: hi.CPUThreads,
		MemoryTotalBytes: hi.MemoryTotalBytes,
	}
	if !hi.BootTime.IsZero() {
		info.BootTimeUnix = hi.BootTime.Unix()
	}
	hostname := hi.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	return info, hostname
}

// processSnapshots adapts the top-process collector to Options.Snapshots;
// a failure is logged once per distinct error.
func processSnapshots(top *collect.TopProcesses, log *slog.Logger) func(context.Context) *sysmonstmv1.ProcessSnapshot {
	var lastErr string
	return func(ctx context.Context) *sysmonstmv1.ProcessSnapshot {
		procs, err := top.Snapshot(ctx)
		if err != nil {
			if err.Error() != lastErr {
				log.Warn("top processes unavailable", "err", err)
			}
			lastErr = err.Error()
			return nil
		}
		lastErr = ""
		out := &sysmonstmv1.ProcessSnapshot{TimestampMs: time.Now().UnixMilli(), Processes: make([]*sysmonstmv1.Process, len(procs))}
		for i, p := range procs {
			out.Processes[i] = &sysmonstmv1.Process{Pid: p.PID, Name: p.Name, User: p.User, Command: p.Command,
				CpuPercent: p.CPUPercent, RssBytes: p.RSSBytes, State: p.State}
		}
		return out
	}
}

// listenPush opens the push socket. When it is not required and cannot be
// opened (another agent holds the default path), the agent runs without it
// and says so.
func (c *Config) listenPush(store *push.Store, log *slog.Logger) (*push.Server, error) {
	if c.PushSocket == "" {
		return nil, nil
	}
	mode := os.FileMode(0o600)
	if os.Geteuid() == 0 {
		mode = 0o660 // root's agent: a group may be given access with chgrp
	}
	srv, err := push.Listen(c.PushSocket, mode, store, log)
	if err == nil {
		log.Info("push socket listening", "path", c.PushSocket)
		return srv, nil
	}
	if c.PushSocketRequired {
		return nil, &config.SettingError{Setting: "push-socket", Err: err}
	}
	log.Warn("push socket disabled: `sysmonstm push` cannot reach this agent; set --push-socket to another path", "err", err)
	return nil, nil
}

// dialOptions returns the gRPC dial options of c's TLS settings, reading
// the CA and client certificate files; Validate has checked the rest.
func (c *Config) dialOptions(log *slog.Logger) ([]grpc.DialOption, error) {
	if len(c.DialOptions) > 0 {
		return c.DialOptions, nil
	}
	if c.plaintext() {
		if remote := c.remoteHub(); remote != "" {
			log.Warn("INSECURE: streaming to a non-loopback hub without TLS (--insecure); anyone on the path can read the token and the metrics", "hub", remote)
		}
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, &config.SettingError{Setting: "tls-ca", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.SettingError{Setting: "tls-ca", Value: c.TLSCA, Reason: "no PEM certificate found"}
		}
		conf.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, &config.SettingError{Reason: "{tls-cert}/{tls-key}", Err: err}
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}, nil
}
