//go:build !agentonly

package main

import (
	"flag"

	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// alertingFlags registers the hub's alerting flags (shared by hub and up).
func alertingFlags(fs *flag.FlagSet, c *hub.AlertingConfig) {}
