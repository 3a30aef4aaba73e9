package hub

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/web"
)

// SecurityConfig is the hub's authentication settings.
type SecurityConfig struct {
	// MaxMachinesPerToken bounds the distinct machine ids one agent token
	// without a machine binding may write as; default 100.
	MaxMachinesPerToken int
	// SessionTTL ends a login session unused for this long; default 24h.
	SessionTTL time.Duration
	// SessionMaxAge ends a login session this long after login; default 7d.
	SessionMaxAge time.Duration
	// MetricsPublic serves /metrics without login; otherwise it follows
	// the API's rule.
	MetricsPublic bool
	// RequireLogin refuses anonymous read access even while the HTTP
	// listener is on loopback (e.g. behind a reverse proxy on this host).
	RequireLogin bool
	// AdminPassword is the first admin's password on first start
	// (SYSMONSTM_ADMIN_PASSWORD); empty generates one.
	AdminPassword string
	// LocalAgent is the machine id of `up` mode's in-process agent: the
	// hub issues it an in-memory credential (LocalAgentToken) valid for
	// that id only. Empty for `sysmonstm hub`.
	LocalAgent string
}

// securityPart holds tokens, users and sessions.
type securityPart struct {
	store      *auth.Store
	http       *auth.HTTP
	localToken string
}

// How often last-use times of agent tokens are written, and expired
// sessions deleted.
const (
	tokenUseFlushEvery = 30 * time.Second
	sessionSweepEvery  = 10 * time.Minute
)

// setupSecurity opens the token and user stores on h.db, bootstraps the
// first admin and appends the auth and admin API routes to h.routes.
func (h *Hub) setupSecurity() error {
	ctx := context.Background()
	c := h.cfg.Security
	log := h.log.With("component", "auth")
	if c.SessionTTL > 0 && c.SessionMaxAge > 0 && c.SessionMaxAge < c.SessionTTL {
		return fmt.Errorf("--session-max-age %s: must be at least --session-ttl (%s)", c.SessionMaxAge, c.SessionTTL)
	}
	st, err := auth.Open(ctx, h.db, auth.Options{
		MaxMachinesPerToken: c.MaxMachinesPerToken,
		SessionIdle:         c.SessionTTL,
		SessionMaxAge:       c.SessionMaxAge,
		Logger:              log,
	})
	if err != nil {
		return fmt.Errorf("open auth store: %w", err)
	}
	created, pw, file, err := st.Bootstrap(ctx, h.cfg.DataDir, c.AdminPassword)
	if err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	switch {
	case created && pw != "":
		log.Warn("first start: created user \"admin\" with a random password, shown only now and kept in the file (mode 0600); log in, change it, then delete the file",
			"user", "admin", "password", pw, "file", file)
	case created:
		log.Info("first start: created user \"admin\" with the password from SYSMONSTM_ADMIN_PASSWORD")
	}
	h.sec.store = st
	if c.LocalAgent != "" {
		if h.sec.localToken, err = st.SetLocalAgent(c.LocalAgent); err != nil {
			return err
		}
	}
	anonymous := !c.RequireLogin && config.IsLoopback(h.cfg.ListenHTTP)
	if anonymous {
		log.Info("anonymous read-only access on: the HTTP listener is on loopback", "listen_http", h.cfg.ListenHTTP)
	}
	h.sec.http = auth.NewHTTP(auth.HTTPOptions{
		Store:         st,
		AnonymousRead: anonymous,
		MetricsPublic: c.MetricsPublic,
		Registerer:    h.reg,
		Logger:        log,
	})
	for _, rt := range h.sec.http.Routes() {
		h.routes = append(h.routes, web.Route{Pattern: rt.Pattern, Handler: rt.Handler})
	}
	return nil
}

// LocalAgentToken is the in-memory credential of `up` mode's own agent
// (SecurityConfig.LocalAgent); "" when none was asked for.
func (h *Hub) LocalAgentToken() string { return h.sec.localToken }

// ingestAuth checks agent tokens for gRPC and HTTP ingest.
func (h *Hub) ingestAuth() ingest.AuthFunc {
	st := h.sec.store
	return func(ctx context.Context, token, machine string) error {
		_, err := st.VerifyAgent(ctx, token, machine)
		if err != nil && auth.IsPermission(err) {
			return fmt.Errorf("%w: %w", ingest.ErrPermissionDenied, err)
		}
		return err
	}
}

// middleware authenticates and authorizes every HTTP request.
func (h *Hub) middleware() func(http.Handler) http.Handler { return h.sec.http.Middleware }

// runSecurity starts the security goroutines (session expiry, revocation
// checks) on comps.
func (h *Hub) runSecurity(ctx context.Context, comps *errgroup.Group) {
	st, log := h.sec.store, h.log.With("component", "auth")
	comps.Go(func() error {
		flush := time.NewTicker(tokenUseFlushEvery)
		defer flush.Stop()
		sweep := time.NewTicker(sessionSweepEvery)
		defer sweep.Stop()
		for {
			select {
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := st.FlushLastUsed(fctx); err != nil {
					log.Warn("record agent token use", "err", err)
				}
				return nil
			case <-flush.C:
				if err := st.FlushLastUsed(ctx); err != nil {
					log.Warn("record agent token use", "err", err)
				}
			case <-sweep.C:
				if n, err := st.DeleteExpiredSessions(ctx); err != nil {
					log.Warn("delete expired sessions", "err", err)
				} else if n > 0 {
					log.Debug("expired sessions deleted", "count", n)
				}
			}
		}
	})
}
