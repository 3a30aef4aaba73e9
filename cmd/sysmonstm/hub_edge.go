//go:build !agentonly

package main

import (
	"flag"

	"github.com/sysmonstm/sysmonstm/internal/edge"
	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// edgeFlags registers the hub's edge flags (shared by hub and up).
func edgeFlags(fs *flag.FlagSet, c *hub.EdgeConfig) {
	fs.StringVar(&c.URL, "edge-url", "", "forward the public live view to a sysmonstm edge at `URL`: wss://HOST/api/publish (ws:// for loopback only)")
	fs.StringVar(&c.Key, "edge-key", "", "the edge's publish `KEY` (its --key, at least 16 characters); prefer SYSMONSTM_EDGE_KEY")
	fs.StringVar(&c.Machines, "edge-machines", "*", "`GLOB,…` of the machine ids forwarded (* any run, ? one character, !glob excludes)")
	fs.StringVar(&c.Metrics, "edge-metrics", edge.DefaultMetrics, "`SELECTOR,…` of the series forwarded: name or name{label=\"value\"}, globs allowed")
	fs.StringVar(&c.MachineLabels, "edge-machine-labels", "*", "`GLOB,…` of the machine label names forwarded; !* forwards none")
	fs.StringVar(&c.TLSCA, "edge-tls-ca", "", "PEM CA bundle `FILE` that verifies the edge's certificate (private CA); default: system roots")
}
