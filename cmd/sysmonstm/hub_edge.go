//go:build !agentonly

package main

import (
	"flag"

	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// edgeFlags registers the hub's edge flags (shared by hub and up).
func edgeFlags(fs *flag.FlagSet, c *hub.EdgeConfig) {}
