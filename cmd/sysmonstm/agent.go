package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/agent"
	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/push"
	"github.com/sysmonstm/sysmonstm/internal/scrape"
)

// agentFlags registers the agent's flags on fs; withHub adds those of the
// connection to a hub (up has its own hub). The returned labels are filled
// by parsing and belong in the Config afterwards (agentConfig).
func agentFlags(fs *flag.FlagSet, withHub bool) (*agent.Config, *config.LabelsValue) {
	c := &agent.Config{Version: version, BufferMiB: agent.DefaultBufferMiB}
	labels := &config.LabelsValue{}
	host, _ := os.Hostname()
	if withHub {
		fs.StringVar(&c.Hub, "hub", "127.0.0.1:50051", "hub gRPC address `HOST:PORT[,HOST:PORT…]`: several hubs (or a name resolving to several) to spread over and fail over between")
		fs.StringVar(&c.Token, "token", "", "agent `TOKEN` issued by the hub (sysmonstm token create)")
		fs.StringVar(&c.TLSCA, "tls-ca", "", "PEM CA bundle `FILE` to verify the hub's TLS certificate (enables TLS)")
		fs.StringVar(&c.TLSServerName, "tls-server-name", "", "expected `NAME` in the hub's certificate (default: host of --hub)")
		fs.BoolVar(&c.TLS, "tls", false, "connect with TLS, verifying the hub against the system's CAs (implied by --tls-ca and --tls-cert)")
		fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM client certificate `FILE` for hubs that require mutual TLS (with --tls-key)")
		fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
		fs.BoolVar(&c.Insecure, "insecure", false, "allow plaintext to a hub that is not on loopback (the token and metrics cross the network unencrypted)")
		fs.IntVar(&c.BufferMiB, "buffer-mib", agent.DefaultBufferMiB, "memory bound of the replay buffer for batches the hub has not acknowledged, in `MiB`")
	}
	fs.StringVar(&c.MachineID, "machine-id", host, "this machine's `ID` (defaults to the hostname)")
	fs.DurationVar(&c.Interval, "interval", time.Second, "collection interval")
	fs.Var(labels, "labels", "labels for this machine: `k=v,…` (e.g. env=prod,role=db)")
	fs.StringVar(&c.ProcPath, "proc-path", "/proc", "procfs mount point `DIR`")
	fs.StringVar(&c.SysPath, "sys-path", "/sys", "sysfs mount point `DIR`")
	fs.StringVar(&c.RootFS, "rootfs", "/", "root `DIR` of the host filesystem (e.g. /host in a container)")
	fs.DurationVar(&c.CollectorTimeout, "collector-timeout", 0, "hard per-collector timeout per tick (default: half the interval, at most 5s)")
	fs.StringVar(&c.TextfileDir, "textfile-dir", "", "`DIR` of *.prom files (Prometheus text format) whose samples are sent as gauges")
	fs.DurationVar(&c.SmartInterval, "smart-interval", collect.DefaultSmartInterval, "how often smartctl is run for disk health")
	fs.DurationVar(&c.GPUInterval, "gpu-interval", collect.DefaultGPUInterval, "how often nvidia-smi is run")
	fs.DurationVar(&c.ServiceInterval, "service-interval", collect.DefaultServiceInterval, "how often systemctl is asked for service states")
	fs.StringVar(&c.DirSizes, "dir-sizes", "", "opt-in disk usage of directories per service: `SERVICE=PATH,…` (like du -sx)")
	fs.DurationVar(&c.DirSizeInterval, "dir-size-interval", collect.DefaultDirSizeInterval, "how often --dir-sizes directories are measured")
	fs.StringVar(&c.Disable, "disable-collectors", "", "collectors to leave out: `NAME,…` (e.g. systemd,smart)")
	fs.IntVar(&c.TopProcesses, "top-processes", collect.DefaultTopProcesses, "length `N` of the live top-process list (top N by CPU and by memory); 0 disables it and processes_state")
	fs.DurationVar(&c.ProcessesInterval, "processes-interval", collect.DefaultProcessesInterval, "how often the top-process list and processes_state are taken")
	fs.Var((*scrape.TargetsValue)(&c.Scrape), "scrape", "scrape a Prometheus exporter on this host: `URL[;job=NAME][;interval=DURATION][;timeout=DURATION][;sample_limit=N][;body_limit=BYTES][;honor_labels=true]`; repeatable, or several separated by commas (default interval 15s, job scrape)")
	fs.StringVar(&c.PushSocket, "push-socket", push.DefaultSocket(), "unix socket `PATH` on which the push command reaches this agent; empty disables it")
	fs.DurationVar(&c.PushTTL, "push-ttl", 0, "drop a pushed value not pushed again within this long; 0 keeps it until the agent restarts")
	return c, labels
}

// agentConfig completes c after parsing: the labels, and whether the push
// socket was asked for rather than defaulted (then it must open). It
// returns Validate's verdict with settings named as flags.
func agentConfig(fs *flag.FlagSet, c *agent.Config, labels *config.LabelsValue) error {
	c.Labels = labels.Labels
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "push-socket" {
			c.PushSocketRequired = true
		}
	})
	return config.Flagged(c.Validate())
}

func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, lf := newFlagSet("agent", "Collect this machine's metrics and stream them to a hub.", stderr)
	c, labels := agentFlags(fs, true)
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	if err := agentConfig(fs, c, labels); err != nil {
		return err
	}
	c.Logger = log
	a, err := agent.NewHost(*c)
	if err != nil {
		return config.Flagged(err)
	}
	log.Info("agent starting", "machine", c.MachineID, "hub", c.Hub, "interval", c.Interval)
	// A process that is only an agent keeps its footprint small (see
	// docs/benchmarks.md, "Agent footprint").
	agent.LeanRuntime()
	go agent.TrimLoop(ctx, log)
	return a.Run(ctx)
}
