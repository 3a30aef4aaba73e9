//go:build !agentonly

package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/hub"
	"github.com/sysmonstm/sysmonstm/internal/remotewrite"
)

// remoteWriteFlags registers --remote-write (repeatable) and its per-target
// credentials: each credentials flag applies to the --remote-write given
// last before it.
func remoteWriteFlags(fs *flag.FlagSet, c *hub.RemoteWriteConfig) {
	fs.Var(rwURLFlag{c}, "remote-write", "forward every stored sample to this Prometheus remote-write `URL` (repeatable; https:// for TLS)")
	fs.Var(rwAuthFlag{c, "bearer"}, "remote-write-bearer-token-file", "`FILE` whose first line is the bearer token for the --remote-write URL given just before")
	fs.Var(rwAuthFlag{c, "basic"}, "remote-write-basic-auth-file", "`FILE` whose first line is user:password (basic auth) for the --remote-write URL given just before")
	c.MaxQueueBytes = remotewrite.DefaultMaxQueueBytes
	fs.Int64Var(&c.MaxQueueBytes, "remote-write-max-queue-bytes", remotewrite.DefaultMaxQueueBytes, "`BYTES` of each remote-write target's queue on disk; when full the oldest unsent samples are dropped (counted), ingest never waits")
}

// rwURLFlag adds targets; a comma-separated value (a list in the config
// file) adds several.
type rwURLFlag struct{ c *hub.RemoteWriteConfig }

func (f rwURLFlag) String() string {
	if f.c == nil {
		return ""
	}
	var urls []string
	for _, t := range f.c.Targets {
		urls = append(urls, t.Redacted())
	}
	return strings.Join(urls, ",")
}

func (f rwURLFlag) Set(s string) error {
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u == "" {
			return errors.New("empty URL")
		}
		f.c.Targets = append(f.c.Targets, remotewrite.Target{URL: u})
	}
	return nil
}

// rwAuthFlag sets a credentials file of the last target.
type rwAuthFlag struct {
	c    *hub.RemoteWriteConfig
	kind string // "bearer" or "basic"
}

func (f rwAuthFlag) String() string { return "" }

func (f rwAuthFlag) Set(path string) error {
	if len(f.c.Targets) == 0 {
		return errors.New("give --remote-write URL before it: it applies to the URL given just before")
	}
	t := &f.c.Targets[len(f.c.Targets)-1]
	p := &t.BearerTokenFile
	if f.kind == "basic" {
		p = &t.BasicAuthFile
	}
	if *p != "" {
		return fmt.Errorf("given twice for --remote-write %s", t.Redacted())
	}
	*p = path
	return nil
}
