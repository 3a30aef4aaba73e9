//go:build !agentonly

package main

import (
	"flag"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/bus"
	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// busFlags registers --nats and its settings (several hubs on NATS
// JetStream; docs/configuration.md, "Several hubs").
func busFlags(fs *flag.FlagSet, c *hub.BusConfig) {
	fs.Var(natsURLsFlag{c}, "nats", "NATS `URLS` (nats://HOST:4222, comma-separated for a cluster; user:password@ allowed, never logged): run as one of several hubs on NATS JetStream; needs --postgres and --remote-write")
	fs.StringVar(&c.CredsFile, "nats-creds", "", "NATS credentials `FILE` (JWT and seed) for --nats")
	fs.IntVar(&c.Replicas, "nats-replicas", 1, "`N` replicas of the JetStream streams (3 in a 3-node NATS cluster)")
	fs.DurationVar(&c.MaxAge, "nats-max-age", bus.DefaultMaxAge, "`DURATION` batches stay on the JetStream stream: how far the storage consumers may fall behind the TSDB before the oldest batches are lost")
	fs.Int64Var(&c.MaxBytes, "nats-max-bytes", 0, "`BYTES` bound of the JetStream samples stream (oldest batches dropped beyond); 0: bounded by --nats-max-age only")
}

// natsURLsFlag is --nats: a comma-separated list.
type natsURLsFlag struct{ c *hub.BusConfig }

func (f natsURLsFlag) String() string {
	if f.c == nil {
		return ""
	}
	return bus.RedactURLs(f.c.URLs)
}

func (f natsURLsFlag) Set(s string) error {
	f.c.URLs = f.c.URLs[:0]
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			f.c.URLs = append(f.c.URLs, u)
		}
	}
	return nil
}
