//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/loadgen"
)

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("loadgen", "Simulate many agents over the real protocol, or send the same workload to a Prometheus remote-write endpoint.\nThe last line of output is a JSON summary.", stderr)
	o := loadgen.Options{}
	fs.StringVar(&o.Hub, "hub", "127.0.0.1:50051", "hub gRPC address `HOST:PORT[,HOST:PORT…]`; with several hubs each simulated agent has its own connection and fails over")
	fs.StringVar(&o.Token, "token", "", "agent `TOKEN` for every simulated machine, created without --machine (the hub's --max-machines-per-token must be at least --machines); the bearer token with --remote-write")
	fs.IntVar(&o.Machines, "machines", 100, "`N` simulated machines")
	fs.IntVar(&o.Series, "series", 100, "`N` series per machine")
	fs.DurationVar(&o.Interval, "interval", time.Second, "collection interval of each machine")
	fs.BoolVar(&o.SyncTicks, "sync-ticks", false, "tick every simulated machine on the same wall-clock boundary (the worst case); by default each machine has its own fixed phase, spread evenly over the interval as a real fleet's are")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "how long to run (0 = until interrupted)")
	fs.StringVar(&o.RemoteWrite, "remote-write", "", "send to this Prometheus remote-write `URL` instead of a hub")
	fs.StringVar(&o.MachinePrefix, "machine-prefix", "loadgen-", "`PREFIX` of the simulated machine ids")
	fs.StringVar(&o.Watch, "watch", "", "also read the hub's live stream at `URL` (ws://HOST:PORT/ws) and report the latency from each batch's timestamp to its WebSocket event (live_latency in the summary)")
	fs.DurationVar(&o.WatchWindow, "watch-window", 0, "with --watch, also report the latency per `DURATION` of the run (live_latency.windows: events, p50, p99, max), to find where a tail comes from")
	fs.DurationVar(&o.WatchWarmup, "watch-warmup", 0, "`DURATION` at the start not measured by --watch (default: 5s or 2 intervals, whichever is longer)")
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case o.Machines < 1 || o.Machines > 100_000:
		return fmt.Errorf("--machines %d: must be between 1 and 100000", o.Machines)
	case o.Series < 20 || o.Series > 50_000:
		return fmt.Errorf("--series %d: must be between 20 and 50000", o.Series)
	case o.Interval < 10*time.Millisecond:
		return fmt.Errorf("--interval %s: must be at least 10ms", o.Interval)
	case o.Duration < 0:
		return fmt.Errorf("--duration %s: must not be negative", o.Duration)
	}
	if o.RemoteWrite != "" {
		u, err := url.Parse(o.RemoteWrite)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--remote-write %q: want an http(s) URL", o.RemoteWrite)
		}
	}
	if o.Watch != "" {
		u, err := url.Parse(o.Watch)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--watch %q: want a ws(s)://HOST:PORT/ws URL", o.Watch)
		}
		if o.RemoteWrite != "" {
			return fmt.Errorf("--watch reads a hub's live stream; it does not go with --remote-write")
		}
	}
	if o.WatchWarmup < 0 {
		return fmt.Errorf("--watch-warmup %s: must not be negative", o.WatchWarmup)
	}
	if o.WatchWindow < 0 {
		return fmt.Errorf("--watch-window %s: must not be negative", o.WatchWindow)
	}
	o.Logger = log
	sum, err := loadgen.Run(ctx, o)
	if err != nil {
		return config.Flagged(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false) // reasons quote "<machine>"; keep them readable
	if err := enc.Encode(sum); err != nil {
		return err
	}
	return sum.Err()
}
