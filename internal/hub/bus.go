package hub

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/bus"
	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
)

// BusConfig makes the hub one of several on NATS JetStream (`--nats`,
// internal/bus): agents' batches are acknowledged once JetStream has them,
// the storage consumer writes them to the RemoteWrite targets, and every
// hub's live state shows every machine. The embedded store then keeps no
// agent samples.
type BusConfig struct {
	URLs      []string      // nats:// (or tls://) URLs of one NATS cluster
	CredsFile string        // NATS credentials file; "" for none
	Replicas  int           // stream replicas; default 1
	MaxAge    time.Duration // how long batches stay on the stream; default 2h
	MaxBytes  int64         // bound of the samples stream, bytes; 0: none but MaxAge
}

// validateBus checks --nats and what it needs: --postgres (users, tokens
// and rules shared by the hubs) and --remote-write (where the batches are
// stored).
func (c *Config) validateBus() error {
	b := c.Bus
	if len(b.URLs) == 0 {
		for _, s := range []struct {
			key string
			set bool
		}{{"nats-creds", b.CredsFile != ""}, {"nats-replicas", b.Replicas > 1}, {"nats-max-bytes", b.MaxBytes != 0}} {
			if s.set {
				return &config.SettingError{Setting: s.key, Reason: "needs {nats}"}
			}
		}
		return nil
	}
	for _, s := range b.URLs {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
			return &config.SettingError{Setting: "nats", Value: bus.RedactURLs([]string{s}),
				Reason: "want nats://HOST:PORT (or tls://), comma-separated for a cluster"}
		}
	}
	if c.Postgres == "" {
		return &config.SettingError{Setting: "nats", Value: bus.RedactURLs(b.URLs),
			Reason: "needs {postgres}: the hubs share users, tokens and alert rules there"}
	}
	if len(c.RemoteWrite.Targets) == 0 {
		return &config.SettingError{Setting: "nats", Value: bus.RedactURLs(b.URLs),
			Reason: "needs at least one {remote-write} URL: batches acknowledged to agents are stored there (the embedded store keeps none)"}
	}
	if b.Replicas < 0 || b.Replicas > 5 {
		return &config.SettingError{Setting: "nats-replicas", Value: fmt.Sprint(b.Replicas), Reason: "want 1 to 5 (3 in a 3-node cluster)"}
	}
	if b.MaxAge != 0 && b.MaxAge < time.Minute {
		return &config.SettingError{Setting: "nats-max-age", Value: b.MaxAge.String(), Reason: "must be at least 1m"}
	}
	if b.MaxBytes < 0 {
		return &config.SettingError{Setting: "nats-max-bytes", Value: fmt.Sprint(b.MaxBytes), Reason: "must be 0 (no bound) or more"}
	}
	if b.CredsFile != "" {
		if _, err := os.ReadFile(b.CredsFile); err != nil {
			return &config.SettingError{Setting: "nats-creds", Value: b.CredsFile, Reason: "cannot read it", Err: err}
		}
	}
	return nil
}

// setupBus connects to NATS and creates the streams (after the alert
// engine: other hubs' updates go to the same live sink as this hub's).
func (h *Hub) setupBus() error {
	c := h.cfg.Bus
	if len(c.URLs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.New(ctx, bus.Options{
		URLs: c.URLs, CredsFile: c.CredsFile, Replicas: c.Replicas, MaxAge: c.MaxAge, MaxBytes: c.MaxBytes,
		Targets: h.cfg.RemoteWrite.Targets,
		Live:    h.liveSink(),
		// The followers start in Run, after New built ingest.
		NoteSeq:    func(machine string, instance, seq uint64) { h.ingest.NoteSeq(machine, instance, seq) },
		Limits:     limits(h.cfg.Limits),
		Logger:     h.log.With("component", "bus"),
		Registerer: h.reg,
	})
	if err != nil {
		return &config.SettingError{Setting: "nats", Value: bus.RedactURLs(c.URLs), Reason: "cannot use NATS JetStream", Err: err}
	}
	h.bus = b
	h.log.Info("several hubs on NATS JetStream: agents' batches, HTTP ingest and remote write go to the bus and the remote-write targets, not the embedded store",
		"nats", bus.RedactURLs(c.URLs), "replicas", max(c.Replicas, 1))
	return nil
}

// ingestBus is ingest's Bus: nil without --nats.
func (h *Hub) ingestBus() ingest.Bus {
	if h.bus == nil {
		return nil
	}
	return h.bus
}

// ingestLive is what ingest feeds: the live sink, and with --nats the bus,
// which publishes hellos, disconnects and process lists to the other hubs.
func (h *Hub) ingestLive() ingest.Live {
	if h.bus == nil {
		return h.liveSink()
	}
	return h.bus.Sink(h.liveSink())
}

// readyBus is nil without --nats or while NATS is connected (/ready).
// Ingest needs no such check: with NATS unreachable its publishes and
// welcome lookups fail at once and the agents' streams end Unavailable.
func (h *Hub) readyBus() error {
	if h.bus == nil {
		return nil
	}
	return h.bus.Ready()
}

// runBus starts the bus's followers and storage consumer on comps.
func (h *Hub) runBus(ctx context.Context, comps *errgroup.Group) {
	if h.bus != nil {
		comps.Go(func() error { return h.bus.Run(ctx) })
	}
}

func (h *Hub) closeBus() {
	if h.bus != nil {
		h.bus.Close()
		h.bus = nil
	}
}
