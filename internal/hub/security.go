package hub

import (
	"context"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
)

// SecurityConfig is the hub's authentication settings.
type SecurityConfig struct{}

// securityPart holds tokens, users and sessions.
type securityPart struct{}

// setupSecurity opens the token and user stores on h.db, bootstraps the
// first admin and appends the auth and admin API routes to h.routes.
func (h *Hub) setupSecurity() error { return nil }

// ingestAuth checks agent tokens for gRPC and HTTP ingest.
func (h *Hub) ingestAuth() ingest.AuthFunc { return nil }

// middleware authenticates and authorizes every HTTP request.
func (h *Hub) middleware() func(http.Handler) http.Handler { return nil }

// runSecurity starts the security goroutines (session expiry, revocation
// checks) on comps.
func (h *Hub) runSecurity(ctx context.Context, comps *errgroup.Group) {}
