//go:build !agentonly

package main

import (
	"flag"
	"strconv"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// alertingFlags registers the hub's alerting flags (shared by hub and up).
func alertingFlags(fs *flag.FlagSet, c *hub.AlertingConfig) {
	fs.StringVar(&c.ConfigFile, "alerts-config", "", "YAML `FILE` of provisioned alert rules and notifiers (keys rules: and notifiers:), read-only in the API and re-synced at each start")
	fs.DurationVar(&c.Retention, "alerts-retention", 720*time.Hour, "how long resolved alerts and expired silences are kept (at least 1h)")
	fs.DurationVar(&c.GroupWait, "alerts-group-wait", 500*time.Millisecond, "alert changes within this window go out as one notification per channel")
	c.RepeatInterval = 4 * time.Hour
	fs.Var(repeatFlag{&c.RepeatInterval}, "alerts-repeat-interval", "re-send unacknowledged, unsilenced firing alerts every `duration` (default 4h); 0 disables repeats")
	fs.BoolVar(&c.LeaderElection, "alerts-leader-election", false, "with --postgres: the hubs on the database elect one that writes alert state and sends notifications (exactly one per transition); for hubs that all receive every machine's data")
	fs.Var(invertedBool{&c.NoDefaultRules}, "alerts-defaults", "create the built-in default alert rules, each once: on the first start, and after an upgrade that adds one (default true)")
}

// repeatFlag is a duration where 0 means "off" (stored as -1).
type repeatFlag struct{ d *time.Duration }

func (f repeatFlag) String() string {
	if f.d == nil {
		return "4h0m0s"
	}
	if *f.d < 0 {
		return "0s"
	}
	return f.d.String()
}

func (f repeatFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		d = -1
	}
	*f.d = d
	return nil
}

// invertedBool is a boolean flag stored negated (so that the config's zero
// value is the flag's default).
type invertedBool struct{ p *bool }

func (b invertedBool) String() string {
	if b.p == nil {
		return "true"
	}
	return strconv.FormatBool(!*b.p)
}

func (b invertedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b.p = !v
	return nil
}

func (b invertedBool) IsBoolFlag() bool { return true }
