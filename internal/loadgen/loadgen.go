// Package loadgen simulates many agents for demos, tests and benchmarks: each
// simulated machine runs the real agent.Agent over the real protocol with a
// realistic Workload as its source, or the identical workload is sent to a
// Prometheus remote-write endpoint for side-by-side comparisons.
package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/agent"
	"github.com/sysmonstm/sysmonstm/internal/config"
)

// Options configure a load run. Hub or RemoteWrite is required.
type Options struct {
	// Hub is the hub's gRPC address, host:port, or several as
	// host:port,host:port,… (each simulated agent then fails over).
	Hub string
	// Token is the agent token every simulated machine sends; with
	// RemoteWrite it is sent as the requests' bearer token, if set.
	Token    string
	Machines int // simulated machines, default 1
	Series   int // series per machine, default 100
	Interval time.Duration
	// SyncTicks makes every simulated machine tick on the same wall-clock
	// boundary (the worst case for the hub and for the live latency).
	// By default the machines are spread over the interval as a real
	// fleet is: machine i ticks at the multiples of Interval plus Phase(i).
	SyncTicks bool
	// Duration of the run; 0 runs until ctx is done.
	Duration time.Duration
	// RemoteWrite, when set, is a Prometheus remote-write URL that receives
	// the workload instead of a hub.
	RemoteWrite   string
	MachinePrefix string       // machine ids are prefix + index; default "loadgen-"
	Logger        *slog.Logger // default: discard
	// Seed makes the workload reproducible; 0 uses 1.
	Seed int64
	// Watch, when set, is the hub's live stream (ws://host:port/ws): the
	// run reads it and reports the latency from each batch's timestamp to
	// its metrics event (Summary.Live), after WatchWarmup.
	Watch string
	// WatchWarmup is the start of the run not measured (agents
	// connecting); default max(5s, 2 intervals).
	WatchWarmup time.Duration
	// WatchWindow, when > 0, also reports the latency per window of this
	// length (LiveLatency.Windows).
	WatchWindow time.Duration
}

// Summary is the outcome of a run; the CLI prints it as its last line.
type Summary struct {
	SentSamples      int64   `json:"sent_samples"`  // samples sent at least once
	AckedSamples     int64   `json:"acked_samples"` // samples the hub acked / the endpoint answered 2xx for
	DurationS        float64 `json:"duration_s"`    // seconds of generation
	SamplesPerSecond float64 `json:"samples_per_second"`
	Machines         int     `json:"machines"`
	SeriesPerMachine int     `json:"series_per_machine"`
	Ticks            string  `json:"ticks"`  // TicksSpread or TicksSync
	Errors           int64   `json:"errors"` // failed streams or requests
	// ErrorReasons says why, most frequent first: each distinct warning a
	// simulated agent logged (it logs a lasting failure once, not on every
	// retry) or each distinct remote-write error, at most 10 plus "other
	// reasons".
	ErrorReasons []Reason `json:"error_reasons,omitempty"`
	// Live is the sample → WebSocket client latency, with Options.Watch.
	Live *LiveLatency `json:"live_latency,omitempty"`
}

// Summary.Ticks: how the simulated machines' ticks lay in the interval.
const (
	TicksSpread = "spread" // each machine at its own phase (Options.Phase)
	TicksSync   = "sync"   // all on the same boundary (Options.SyncTicks)
)

// Defaults of Options.
const (
	DefaultSeries        = 100
	DefaultInterval      = time.Second
	DefaultMachinePrefix = "loadgen-"
)

// Run generates load until opts.Duration has passed or ctx is done, then
// waits briefly for outstanding acknowledgements and returns the summary.
// samples_per_second is acked samples per second of generation.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if err := opts.setDefaults(); err != nil {
		return Summary{}, err
	}
	if opts.RemoteWrite != "" {
		return runRemoteWrite(ctx, opts)
	}
	return runHub(ctx, opts)
}

func (o *Options) setDefaults() error {
	if o.Hub == "" && o.RemoteWrite == "" {
		return fmt.Errorf("loadgen: %w", &config.SettingError{Reason: "no target: set the hub address ({hub}) or a remote-write URL ({remote-write})"})
	}
	if o.RemoteWrite == "" {
		if err := agent.CheckHubSetting(o.Hub); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
	}
	if o.RemoteWrite != "" {
		u, err := url.Parse(o.RemoteWrite)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("loadgen: remote-write URL %q: want http(s)://host[:port]/path", o.RemoteWrite)
		}
	}
	if o.Watch != "" {
		if o.RemoteWrite != "" {
			return fmt.Errorf("loadgen: watch needs a hub, not a remote-write URL")
		}
		if err := validateWatchURL(o.Watch); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
	}
	if o.WatchWarmup < 0 {
		return fmt.Errorf("loadgen: watch warm-up %s is negative", o.WatchWarmup)
	}
	if o.WatchWindow < 0 {
		return fmt.Errorf("loadgen: watch window %s is negative", o.WatchWindow)
	}
	if o.Machines == 0 {
		o.Machines = 1
	}
	if o.Machines < 0 {
		return fmt.Errorf("loadgen: machines %d is negative", o.Machines)
	}
	if o.Series == 0 {
		o.Series = DefaultSeries
	}
	if o.Series < 0 || o.Series > 50_000 {
		return fmt.Errorf("loadgen: series %d per machine out of range 1..50000", o.Series)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Interval < 10*time.Millisecond || o.Interval%time.Millisecond != 0 {
		return fmt.Errorf("loadgen: interval %s: want whole milliseconds, at least 10ms", o.Interval)
	}
	if o.Duration < 0 {
		return fmt.Errorf("loadgen: duration %s is negative", o.Duration)
	}
	if o.MachinePrefix == "" {
		o.MachinePrefix = DefaultMachinePrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WatchWarmup == 0 {
		o.WatchWarmup = max(5*time.Second, 2*o.Interval)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return nil
}

// machineID returns the id of machine i, zero-padded so ids sort in order.
func (o *Options) machineID(i int) string {
	width := len(fmt.Sprint(o.Machines - 1))
	return fmt.Sprintf("%s%0*d", o.MachinePrefix, width, i)
}

// Phase returns machine i's offset of its ticks within the interval: 0
// with SyncTicks, else the machines spread evenly over [0, Interval) in
// whole milliseconds, the same for every run of the same size.
func (o *Options) Phase(i int) time.Duration {
	if o.SyncTicks || o.Machines <= 1 {
		return 0
	}
	ms := o.Interval.Milliseconds() * int64(i) / int64(o.Machines)
	return time.Duration(ms) * time.Millisecond
}

// ticks names the tick layout for Summary.Ticks.
func (o *Options) ticks() string {
	if o.SyncTicks {
		return TicksSync
	}
	return TicksSpread
}

// runUntil returns a context that ends when opts.Duration has passed or the
// parent is done, detached from the parent's cancellation so that
// generators can flush after it.
func runUntil(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

func summarize(s *Summary, elapsed time.Duration) {
	s.DurationS = elapsed.Seconds()
	if s.DurationS > 0 {
		s.SamplesPerSecond = float64(s.AckedSamples) / s.DurationS
	}
}
