package hub

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
)

// AlertingConfig is the alert engine's settings.
type AlertingConfig struct{}

// alertsPart holds the alert engine and its notification dispatcher.
type alertsPart struct{}

// setupAlerts builds the alert engine on h.db and h.live and appends its
// API routes to h.routes. Called after setupSecurity, before ingest.
func (h *Hub) setupAlerts() error { return nil }

// liveSink is what ingest feeds: the live state, and the alert engine
// watching the same batches.
func (h *Hub) liveSink() ingest.Live { return h.live }

// runAlerts starts the alert engine's goroutines on comps.
func (h *Hub) runAlerts(ctx context.Context, comps *errgroup.Group) {}
