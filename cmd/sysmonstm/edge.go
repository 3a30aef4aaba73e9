//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/edge"
	"github.com/sysmonstm/sysmonstm/internal/netguard"
)

func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlagSet("edge", "Run the public relay: receive a hub's live stream (publish key) and serve a read-only dashboard.", stderr)
	o := edge.Options{}
	fs.StringVar(&o.ListenHTTP, "listen-http", "127.0.0.1:8080", "HTTP address `HOST:PORT`: the read-only page, its API, /ws and the hub's publish endpoint /api/publish")
	fs.StringVar(&o.Key, "key", "", "publish `KEY` a hub must send (its --edge-key); required, at least 16 characters; prefer SYSMONSTM_KEY")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate `FILE`: serve HTTPS and wss:// (with --tls-key)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key `FILE` for --tls-cert")
	fs.DurationVar(&o.Window, "window", 5*time.Minute, "span of the sparklines: recent values kept per series, in 300 buckets (30s–24h)")
	fs.IntVar(&o.MaxMachines, "max-machines", 10000, "most machines kept, `N` (1–1000000); messages that would add more are rejected")
	fs.IntVar(&o.MaxViewers, "max-viewers", 50_000, "most browsers streaming at once, `N` (1–1000000); a further one is answered 503")
	fs.IntVar(&o.MaxConnsPerIP, "max-conns-per-ip", 256, "`N` open connections one client address (an IPv6 /64) may hold; more are closed at once (0: no limit)")
	o.ConnLimitExempt = netguard.Loopback()
	fs.Var(prefixesFlag{&o.ConnLimitExempt}, "conn-limit-exempt", "client `ADDRS` or CIDR prefixes, comma-separated, without the --max-conns-per-ip limit (\"none\": none)")
	log, err := parse(fs, lf, args, stderr)
	if err != nil {
		return err
	}
	if o.Window < 30*time.Second || o.Window > 24*time.Hour {
		return fmt.Errorf("--window %s: must be between 30s and 24h", o.Window)
	}
	if o.MaxMachines < 1 || o.MaxMachines > 1_000_000 {
		return fmt.Errorf("--max-machines %d: must be between 1 and 1000000", o.MaxMachines)
	}
	if o.MaxViewers < 1 || o.MaxViewers > 1_000_000 {
		return fmt.Errorf("--max-viewers %d: must be between 1 and 1000000", o.MaxViewers)
	}
	switch {
	case o.MaxConnsPerIP < 0:
		return fmt.Errorf("--max-conns-per-ip %d: must be 0 (no limit) or more", o.MaxConnsPerIP)
	case o.MaxConnsPerIP == 0:
		o.MaxConnsPerIP = -1 // edge.Options' "no limit"; its 0 is the default
	}
	o.Logger = log
	s, err := edge.New(o)
	if err != nil {
		return config.Flagged(err)
	}
	pub := strings.Replace(strings.Replace(s.URL(), "https://", "wss://", 1), "http://", "ws://", 1) + "api/publish"
	fmt.Fprintf(stdout, "sysmonstm edge: read-only dashboard %s, hubs publish to %s\n", s.URL(), pub)
	return s.Run(ctx)
}
