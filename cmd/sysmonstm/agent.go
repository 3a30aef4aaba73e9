package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sysmonstm/sysmonstm/internal/agent"
	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/push"
	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// agentConfig is the agent's settings.
type agentConfig struct {
	hub        string
	token      string
	machineID  string
	interval   time.Duration
	labels     config.LabelsValue
	tlsCA      string
	tlsName    string
	tlsOn      bool   // --tls: TLS with the system's CAs
	tlsCert    string // client certificate for mutual TLS
	tlsKey     string
	insecure   bool // plaintext to a non-loopback hub was asked for
	bufferMiB  int
	procPath   string
	sysPath    string
	rootFS     string
	colTimeout time.Duration

	textfileDir     string
	smartInterval   time.Duration
	gpuInterval     time.Duration
	serviceInterval time.Duration
	disable         string // comma-separated collector names
	dirSizes        string // SERVICE=PATH,… for the dirsize collector
	dirSizeInterval time.Duration

	topProcesses      int           // top list length; 0 disables the process snapshot
	processesInterval time.Duration // how often the snapshot is taken

	pushSocket   string        // unix socket for `sysmonstm push`; "" disables
	pushExplicit bool          // pushSocket was set (flag, env or file), not defaulted
	pushTTL      time.Duration // pushed values go stale after this; 0 = never
}

func agentFlags(fs *flag.FlagSet, withHub bool) *agentConfig {
	c := &agentConfig{}
	host, _ := os.Hostname()
	if withHub {
		fs.StringVar(&c.hub, "hub", "127.0.0.1:50051", "hub gRPC address `HOST:PORT`")
		fs.StringVar(&c.token, "token", "", "agent `TOKEN` issued by the hub (sysmonstm token create)")
		fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM CA bundle `FILE` to verify the hub's TLS certificate (enables TLS)")
		fs.StringVar(&c.tlsName, "tls-server-name", "", "expected `NAME` in the hub's certificate (default: host of --hub)")
		fs.BoolVar(&c.tlsOn, "tls", false, "connect with TLS, verifying the hub against the system's CAs (implied by --tls-ca and --tls-cert)")
		fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM client certificate `FILE` for hubs that require mutual TLS (with --tls-key)")
		fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
		fs.BoolVar(&c.insecure, "insecure", false, "allow plaintext to a hub that is not on loopback (the token and metrics cross the network unencrypted)")
		fs.IntVar(&c.bufferMiB, "buffer-mib", 8, "memory bound of the replay buffer for batches the hub has not acknowledged, in `MiB`")
	}
	fs.StringVar(&c.machineID, "machine-id", host, "this machine's `ID` (defaults to the hostname)")
	fs.DurationVar(&c.interval, "interval", time.Second, "collection interval")
	fs.Var(&c.labels, "labels", "labels for this machine: `k=v,…` (e.g. env=prod,role=db)")
	fs.StringVar(&c.procPath, "proc-path", "/proc", "procfs mount point `DIR`")
	fs.StringVar(&c.sysPath, "sys-path", "/sys", "sysfs mount point `DIR`")
	fs.StringVar(&c.rootFS, "rootfs", "/", "root `DIR` of the host filesystem (e.g. /host in a container)")
	fs.DurationVar(&c.colTimeout, "collector-timeout", 0, "hard per-collector timeout per tick (default: half the interval, at most 5s)")
	fs.StringVar(&c.textfileDir, "textfile-dir", "", "`DIR` of *.prom files (Prometheus text format) whose samples are sent as gauges")
	fs.DurationVar(&c.smartInterval, "smart-interval", collect.DefaultSmartInterval, "how often smartctl is run for disk health")
	fs.DurationVar(&c.gpuInterval, "gpu-interval", collect.DefaultGPUInterval, "how often nvidia-smi is run")
	fs.DurationVar(&c.serviceInterval, "service-interval", collect.DefaultServiceInterval, "how often systemctl is asked for service states")
	fs.StringVar(&c.dirSizes, "dir-sizes", "", "opt-in disk usage of directories per service: `SERVICE=PATH,…` (like du -sx)")
	fs.DurationVar(&c.dirSizeInterval, "dir-size-interval", collect.DefaultDirSizeInterval, "how often --dir-sizes directories are measured")
	fs.StringVar(&c.disable, "disable-collectors", "", "collectors to leave out: `NAME,…` (e.g. systemd,smart)")
	fs.IntVar(&c.topProcesses, "top-processes", collect.DefaultTopProcesses, "length `N` of the live top-process list (top N by CPU and by memory); 0 disables it and processes_state")
	fs.DurationVar(&c.processesInterval, "processes-interval", collect.DefaultProcessesInterval, "how often the top-process list and processes_state are taken")
	fs.StringVar(&c.pushSocket, "push-socket", push.DefaultSocket(), "unix socket `PATH` on which the push command reaches this agent; empty disables it")
	fs.DurationVar(&c.pushTTL, "push-ttl", 0, "drop a pushed value not pushed again within this long; 0 keeps it until the agent restarts")
	return c
}

// noteExplicit records which settings were given rather than defaulted.
func (c *agentConfig) noteExplicit(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "push-socket" {
			c.pushExplicit = true
		}
	})
}

func (c *agentConfig) validate() error {
	if err := metric.ValidateMachineID(c.machineID); err != nil {
		return fmt.Errorf("--machine-id: %w", err)
	}
	if c.interval < 100*time.Millisecond || c.interval > time.Hour {
		return fmt.Errorf("--interval %s: must be between 100ms and 1h", c.interval)
	}
	if c.hub != "" {
		if _, _, err := net.SplitHostPort(c.hub); err != nil {
			return fmt.Errorf("--hub %q: want HOST:PORT: %w", c.hub, err)
		}
	}
	if c.bufferMiB < 0 || c.bufferMiB > 4096 {
		return fmt.Errorf("--buffer-mib %d: must be between 1 and 4096", c.bufferMiB)
	}
	if err := collect.CheckCollectorNames(c.disabled()); err != nil {
		return fmt.Errorf("--disable-collectors: %w", err)
	}
	if _, err := collect.ParseDirSpecs(c.dirSizes); err != nil {
		return fmt.Errorf("--dir-sizes: %w", err)
	}
	if c.dirSizeInterval < time.Minute || c.dirSizeInterval > 7*24*time.Hour {
		return fmt.Errorf("--dir-size-interval %s: must be between 1m and 168h", c.dirSizeInterval)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--smart-interval", c.smartInterval}, {"--gpu-interval", c.gpuInterval}, {"--service-interval", c.serviceInterval}} {
		if d.v < time.Second || d.v > 24*time.Hour {
			return fmt.Errorf("%s %s: must be between 1s and 24h", d.name, d.v)
		}
	}
	if c.topProcesses < 0 || c.topProcesses > collect.MaxTopProcesses {
		return fmt.Errorf("--top-processes %d: must be between 0 and %d", c.topProcesses, collect.MaxTopProcesses)
	}
	if c.processesInterval < time.Second || c.processesInterval > time.Hour {
		return fmt.Errorf("--processes-interval %s: must be between 1s and 1h", c.processesInterval)
	}
	if c.pushTTL < 0 {
		return fmt.Errorf("--push-ttl %s: must not be negative", c.pushTTL)
	}
	if c.colTimeout == 0 {
		c.colTimeout = min(c.interval/2, 5*time.Second)
	}
	return nil
}

// disabled returns the --disable-collectors names.
func (c *agentConfig) disabled() []string {
	var out []string
	for _, n := range strings.Split(c.disable, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (c *agentConfig) collectOptions(log *slog.Logger) collect.Options {
	return collect.Options{ProcPath: c.procPath, SysPath: c.sysPath, RootFS: c.rootFS, Timeout: c.colTimeout, Logger: log,
		TextfileDir: c.textfileDir, SmartInterval: c.smartInterval, GPUInterval: c.gpuInterval,
		ServiceInterval: c.serviceInterval, Disable: c.disabled(),
		DirSizes: c.dirSpecs(), DirSizeInterval: c.dirSizeInterval}
}

// dirSpecs returns the parsed --dir-sizes (validate reports errors first).
func (c *agentConfig) dirSpecs() []collect.DirSpec {
	ds, _ := collect.ParseDirSpecs(c.dirSizes)
	return ds
}

// agentRun is an agent and what runs beside it: the push socket.
type agentRun struct {
	agent *agent.Agent
	push  *push.Server // nil when disabled
}

// Run runs the agent and the push socket until ctx ends.
func (r *agentRun) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.agent.Run(gctx) })
	if r.push != nil {
		g.Go(func() error { return r.push.Run(gctx) })
	}
	return g.Wait()
}

// newAgent builds the agent: the collectors as its source, plus the
// process-state totals and the pushed values; the top-process snapshot on
// its own ticker; and the push socket.
func newAgent(c *agentConfig, log *slog.Logger, dial []grpc.DialOption) (*agentRun, error) {
	copts := c.collectOptions(log.With("component", "collect"))
	set := collect.NewDefault(copts)
	var top *collect.TopProcesses
	if c.topProcesses > 0 {
		top = collect.NewTopProcesses(copts, c.topProcesses)
	}
	pushed := push.NewStore(c.pushTTL)
	srv, err := listenPush(c, pushed, log.With("component", "push"))
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
	hi, err := collect.ReadHostInfo(copts)
	if err != nil {
		log.Warn("host information incomplete", "err", err)
	}
	info := &pb.HostInfo{
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
	opts := agent.Options{
		Hub:         c.hub,
		Token:       c.token,
		MachineID:   c.machineID,
		Hostname:    hostname,
		Labels:      c.labels.Labels,
		Info:        info,
		Version:     version,
		Interval:    c.interval,
		BufferBytes: c.bufferMiB << 20,
		DialOptions: dial,
		Logger:      log.With("component", "agent"),
	}
	if top != nil {
		opts.Snapshots = processSnapshots(top, log)
		opts.SnapshotInterval = c.processesInterval
	}
	a, err := agent.New(opts, src)
	if err != nil {
		if srv != nil {
			srv.Close()
		}
		return nil, err
	}
	return &agentRun{agent: a, push: srv}, nil
}

// processSnapshots adapts the top-process collector to the agent's
// snapshot option.
func processSnapshots(top *collect.TopProcesses, log *slog.Logger) func(context.Context) *pb.ProcessSnapshot {
	var lastErr string
	return func(ctx context.Context) *pb.ProcessSnapshot {
		procs, err := top.Snapshot(ctx)
		if err != nil {
			if err.Error() != lastErr {
				log.Warn("top processes unavailable", "err", err)
			}
			lastErr = err.Error()
			return nil
		}
		lastErr = ""
		out := &pb.ProcessSnapshot{TimestampMs: time.Now().UnixMilli(), Processes: make([]*pb.Process, len(procs))}
		for i, p := range procs {
			out.Processes[i] = &pb.Process{Pid: p.PID, Name: p.Name, User: p.User, Command: p.Command,
				CpuPercent: p.CPUPercent, RssBytes: p.RSSBytes, State: p.State}
		}
		return out
	}
}

// listenPush opens the push socket. When the socket was not asked for
// explicitly and cannot be opened (another agent holds the default path),
// the agent runs without it and says so; an explicit --push-socket must work.
func listenPush(c *agentConfig, store *push.Store, log *slog.Logger) (*push.Server, error) {
	if c.pushSocket == "" {
		return nil, nil
	}
	mode := os.FileMode(0o600)
	if os.Geteuid() == 0 {
		mode = 0o660 // root's agent: a group may be given access with chgrp
	}
	srv, err := push.Listen(c.pushSocket, mode, store, log)
	if err == nil {
		log.Info("push socket listening", "path", c.pushSocket)
		return srv, nil
	}
	if c.pushExplicit {
		return nil, fmt.Errorf("--push-socket: %w", err)
	}
	log.Warn("push socket disabled: `sysmonstm push` cannot reach this agent; set --push-socket to another path", "err", err)
	return nil, nil
}

func (c *agentConfig) dialOptions(log *slog.Logger) ([]grpc.DialOption, error) {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.tlsCA == "" && c.tlsCert == "" && !c.tlsOn {
		if !config.IsLoopback(c.hub) {
			if !c.insecure {
				return nil, fmt.Errorf("refusing plaintext to %s, which is not on loopback: the token and metrics would cross the network unencrypted; use --tls (system CAs) or --tls-ca FILE, or --insecure to accept the risk", c.hub)
			}
			log.Warn("INSECURE: streaming to a non-loopback hub without TLS (--insecure); anyone on the path can read the token and the metrics", "hub", c.hub)
		}
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.tlsName}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", c.tlsCA)
		}
		conf.RootCAs = pool
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}, nil
}

func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, lf := newFlagSet("agent", "Collect this machine's metrics and stream them to a hub.", stderr)
	c := agentFlags(fs, true)
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	c.noteExplicit(fs)
	if c.bufferMiB == 0 {
		return errors.New("--buffer-mib must be at least 1")
	}
	if err := c.validate(); err != nil {
		return err
	}
	dial, err := c.dialOptions(log)
	if err != nil {
		return err
	}
	a, err := newAgent(c, log, dial)
	if err != nil {
		return err
	}
	log.Info("agent starting", "machine", c.machineID, "hub", c.hub, "interval", c.interval)
	return a.Run(ctx)
}
