package hub

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// EdgeConfig is where the hub forwards its public live view.
type EdgeConfig struct{}

// edgePart holds the forwarder to a `sysmonstm edge` relay.
type edgePart struct{}

// setupEdge builds the forwarder when an edge is configured.
func (h *Hub) setupEdge() error { return nil }

// runEdge starts the forwarder on comps.
func (h *Hub) runEdge(ctx context.Context, comps *errgroup.Group) {}
