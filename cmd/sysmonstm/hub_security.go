//go:build !agentonly

package main

import (
	"flag"

	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// securityFlags registers the hub's security flags (shared by hub and up).
func securityFlags(fs *flag.FlagSet, c *hub.SecurityConfig) {}
