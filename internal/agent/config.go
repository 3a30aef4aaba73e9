package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/sysmonstm/sysmonstm/internal/collect"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/metric"
	"github.com/sysmonstm/sysmonstm/internal/scrape"
)

// Config is a host agent's settings: what it collects from this machine,
// where it streams, how the stream is secured, and the push socket beside
// it. `sysmonstm agent` and `sysmonstm up` fill it from their flags.
//
// Validate checks a Config as given. NewHost first fills in the defaults
// of the zero values documented below, then validates.
type Config struct {
	// Hub is the hub's gRPC address, HOST:PORT, or several hubs as
	// HOST:PORT,HOST:PORT,… (ParseHubs); a host name may resolve to
	// several hubs. NewHost requires it; Validate checks its form when
	// set, so a Config may be checked before its hub is known (up binds
	// the hub after checking).
	Hub       string
	Token     string        // agent token issued by the hub
	MachineID string        // required
	Labels    metric.Labels // machine labels, sorted by name
	Version   string        // agent version sent in the hello
	// Interval is the collection interval, 100ms to 1h; default 1s.
	Interval time.Duration
	// BufferMiB bounds the replay buffer of batches the hub has not
	// acknowledged, in MiB, 1 to 4096; default DefaultBufferMiB.
	BufferMiB int

	// TLS connects with TLS, verifying the hub against the system's CAs;
	// TLSCA or TLSCert imply it.
	TLS           bool
	TLSCA         string // PEM CA bundle file to verify the hub with
	TLSServerName string // expected name in the hub's certificate; default the host of Hub
	TLSCert       string // PEM client certificate file for mutual TLS; with TLSKey
	TLSKey        string
	// Insecure allows plaintext to a hub that is not on loopback.
	Insecure bool
	// DialOptions, when set, are used to dial Hub as they are, and the TLS
	// settings above are ignored (up dials its own listener).
	DialOptions []grpc.DialOption

	ProcPath string // procfs mount point; default "/proc"
	SysPath  string // sysfs mount point; default "/sys"
	RootFS   string // root of the host filesystem; default "/"
	// CollectorTimeout is the hard per-collector timeout per tick; 0: half
	// the interval, at most 5s.
	CollectorTimeout time.Duration
	TextfileDir      string // directory of *.prom files; "" disables the textfile collector
	// SmartInterval, GPUInterval and ServiceInterval are how often
	// smartctl, nvidia-smi and systemctl run, 1s to 24h; defaults
	// collect.DefaultSmartInterval, DefaultGPUInterval and
	// DefaultServiceInterval.
	SmartInterval   time.Duration
	GPUInterval     time.Duration
	ServiceInterval time.Duration
	Disable         string // collectors to leave out, comma-separated names
	// DirSizes lists directories whose disk usage is measured, as
	// SERVICE=PATH,… (collect.ParseDirSpecs); "" measures none.
	DirSizes string
	// DirSizeInterval is how often DirSizes are measured, 1m to 168h;
	// default collect.DefaultDirSizeInterval.
	DirSizeInterval time.Duration

	// TopProcesses is the length of the live top-process list (top N by
	// CPU and by memory), at most collect.MaxTopProcesses; 0 disables it
	// and the processes_state totals.
	TopProcesses int
	// ProcessesInterval is how often the list is taken, 1s to 1h; default
	// collect.DefaultProcessesInterval.
	ProcessesInterval time.Duration

	// Scrape lists the Prometheus exporters on this host that the agent
	// scrapes (package scrape); their samples share the stream. None by
	// default.
	Scrape []scrape.Target

	// PushSocket is the unix socket on which `sysmonstm push` reaches the
	// agent; "" disables it.
	PushSocket string
	// PushSocketRequired makes a push socket that cannot be opened an error
	// of NewHost; otherwise the agent runs without it and logs why (another
	// agent holds the default path).
	PushSocketRequired bool
	// PushTTL drops a pushed value not pushed again within this long; 0
	// keeps it until the agent restarts.
	PushTTL time.Duration

	Logger *slog.Logger // default: discard
}

// DefaultBufferMiB is Config.BufferMiB's default: DefaultBufferBytes in MiB.
const DefaultBufferMiB = DefaultBufferBytes >> 20

// withDefaults returns c with the documented defaults of its zero values.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.BufferMiB == 0 {
		c.BufferMiB = DefaultBufferMiB
	}
	if c.SmartInterval == 0 {
		c.SmartInterval = collect.DefaultSmartInterval
	}
	if c.GPUInterval == 0 {
		c.GPUInterval = collect.DefaultGPUInterval
	}
	if c.ServiceInterval == 0 {
		c.ServiceInterval = collect.DefaultServiceInterval
	}
	if c.DirSizeInterval == 0 {
		c.DirSizeInterval = collect.DefaultDirSizeInterval
	}
	if c.ProcessesInterval == 0 {
		c.ProcessesInterval = collect.DefaultProcessesInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks c as given (zero values included) and reports the first
// setting at fault as a *config.SettingError.
func (c *Config) Validate() error {
	invalid := func(setting, value, reason string, args ...any) error {
		return &config.SettingError{Setting: setting, Value: value, Reason: fmt.Sprintf(reason, args...)}
	}
	if err := metric.ValidateMachineID(c.MachineID); err != nil {
		return &config.SettingError{Setting: "machine-id", Err: err}
	}
	if c.Interval < 100*time.Millisecond || c.Interval > time.Hour {
		return invalid("interval", c.Interval.String(), "must be between 100ms and 1h")
	}
	if c.Hub != "" {
		if err := CheckHubSetting(c.Hub); err != nil {
			return err
		}
	}
	if c.BufferMiB < 1 || c.BufferMiB > 4096 {
		return invalid("buffer-mib", fmt.Sprint(c.BufferMiB), "must be between 1 and 4096")
	}
	if err := collect.CheckCollectorNames(c.disabled()); err != nil {
		return &config.SettingError{Setting: "disable-collectors", Err: err}
	}
	if _, err := collect.ParseDirSpecs(c.DirSizes); err != nil {
		return &config.SettingError{Setting: "dir-sizes", Err: err}
	}
	if c.DirSizeInterval < time.Minute || c.DirSizeInterval > 7*24*time.Hour {
		return invalid("dir-size-interval", c.DirSizeInterval.String(), "must be between 1m and 168h")
	}
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{{"smart-interval", c.SmartInterval}, {"gpu-interval", c.GPUInterval}, {"service-interval", c.ServiceInterval}} {
		if d.v < time.Second || d.v > 24*time.Hour {
			return invalid(d.setting, d.v.String(), "must be between 1s and 24h")
		}
	}
	if c.TopProcesses < 0 || c.TopProcesses > collect.MaxTopProcesses {
		return invalid("top-processes", fmt.Sprint(c.TopProcesses), "must be between 0 and %d", collect.MaxTopProcesses)
	}
	if c.ProcessesInterval < time.Second || c.ProcessesInterval > time.Hour {
		return invalid("processes-interval", c.ProcessesInterval.String(), "must be between 1s and 1h")
	}
	if err := scrape.CheckTargets(c.Scrape); err != nil {
		return &config.SettingError{Setting: "scrape", Err: err}
	}
	if c.PushTTL < 0 {
		return invalid("push-ttl", c.PushTTL.String(), "must not be negative")
	}
	return c.validateTransport()
}

// CheckHubSetting checks a hub list (ParseHubs) given as the setting
// "hub" and reports a fault as a *config.SettingError naming the entry.
func CheckHubSetting(list string) error {
	_, err := ParseHubs(list)
	var he *HubAddrError
	if errors.As(err, &he) {
		return &config.SettingError{Setting: "hub", Value: fmt.Sprintf("%q", he.Addr), Reason: he.Reason}
	}
	return err
}

// validateTransport checks the TLS settings that need no file: both halves
// of a client certificate, and no plaintext off loopback unless Insecure.
func (c *Config) validateTransport() error {
	if len(c.DialOptions) > 0 {
		return nil
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return &config.SettingError{Reason: "{tls-cert} and {tls-key} go together: give both or neither"}
	}
	if remote := c.remoteHub(); c.plaintext() && remote != "" && !c.Insecure {
		return &config.SettingError{Reason: fmt.Sprintf("refusing plaintext to %s, which is not on loopback: the token and metrics would cross the network unencrypted; use {tls} (system CAs) or {tls-ca} FILE, or {insecure} to accept the risk", remote)}
	}
	return nil
}

// remoteHub returns the first hub of c.Hub that is not on loopback, "" if
// none is.
func (c *Config) remoteHub() string {
	hubs, _ := ParseHubs(c.Hub)
	for _, h := range hubs {
		if !config.IsLoopback(h) {
			return h
		}
	}
	return ""
}

// plaintext reports whether the TLS settings ask for no TLS.
func (c *Config) plaintext() bool { return c.TLSCA == "" && c.TLSCert == "" && !c.TLS }

// disabled returns the names in Disable.
func (c *Config) disabled() []string {
	var out []string
	for _, n := range strings.Split(c.Disable, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}
