//go:build !agentonly

package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/hub"
)

// adminPasswordEnv sets the first admin's password on first start. It is
// an environment variable only: a flag would show in the process list.
const adminPasswordEnv = "SYSMONSTM_ADMIN_PASSWORD"

// securityFlags registers the hub's security flags (shared by hub and up).
func securityFlags(fs *flag.FlagSet, c *hub.SecurityConfig) {
	c.MaxMachinesPerToken = auth.DefaultMaxMachinesPerToken
	fs.Var((*atLeastInt)(&c.MaxMachinesPerToken), "max-machines-per-token", "an agent token without --machine may write as at most `N` distinct machine ids (counted in the database)")
	c.SessionTTL = auth.DefaultSessionIdle
	fs.Var(&atLeastDuration{&c.SessionTTL, time.Minute}, "session-ttl", "end a login session unused for this `duration`")
	c.SessionMaxAge = auth.DefaultSessionMaxAge
	fs.Var(&atLeastDuration{&c.SessionMaxAge, time.Minute}, "session-max-age", "end a login session this `duration` after login, used or not")
	fs.BoolVar(&c.MetricsPublic, "metrics-public", false, "serve /metrics without login (otherwise /metrics needs login like the API, unless anonymous read access is on)")
	fs.BoolVar(&c.RequireLogin, "require-login", false, "refuse anonymous read-only access even while --listen-http is on loopback (e.g. behind a reverse proxy on this host)")
	c.AdminPassword = os.Getenv(adminPasswordEnv)
}

// atLeastInt is an int flag of at least 1.
type atLeastInt int

func (v *atLeastInt) String() string { return strconv.Itoa(int(*v)) }

func (v *atLeastInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number")
	}
	if n < 1 {
		return fmt.Errorf("must be at least 1")
	}
	*v = atLeastInt(n)
	return nil
}

// atLeastDuration is a duration flag with a lower bound.
type atLeastDuration struct {
	d   *time.Duration
	min time.Duration
}

func (v *atLeastDuration) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v *atLeastDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 24h")
	}
	if d < v.min {
		return fmt.Errorf("must be at least %s", v.min)
	}
	*v.d = d
	return nil
}
