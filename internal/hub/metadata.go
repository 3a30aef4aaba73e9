package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/config"
	"github.com/sysmonstm/sysmonstm/internal/db"
)

// metadataResync is how often a hub on PostgreSQL re-reads its cached
// metadata (tokens, rules, notifiers, silences) even without a change
// notification: a safety net for a notification lost in a way the
// listening connection did not notice.
const metadataResync = 30 * time.Second

// openMetadata opens the metadata database: PostgreSQL at cfg.Postgres,
// shared with other hubs, or else SQLite in the data directory.
func (h *Hub) openMetadata() error {
	var err error
	if h.cfg.Postgres == "" {
		h.db, err = db.Open(h.cfg.DataDir)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if h.db, err = db.OpenPostgres(ctx, h.cfg.Postgres); err != nil {
		return &config.SettingError{Setting: "postgres", Value: db.Redact(h.cfg.Postgres), Reason: "cannot open the metadata database (is PostgreSQL up, and {postgres} right?)", Err: err}
	}
	h.log.Info("metadata in PostgreSQL", "postgres", db.Redact(h.cfg.Postgres))
	return nil
}

// runMetadataWatch, on PostgreSQL, listens for changes other hubs and the
// admin commands commit, and applies them: tokens are re-read and every
// open agent stream re-checked (a revoked token's streams close), the
// alert engine re-reads rules, notifiers and silences, and adopts
// acknowledgements made on other hubs of the alerts it evaluates.
func (h *Hub) runMetadataWatch(ctx context.Context, comps *errgroup.Group) {
	if h.cfg.Postgres == "" {
		return
	}
	up := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sysmonstm_metadata_notifications_up",
		Help: "1 while the hub listens for metadata changes on PostgreSQL (--postgres), 0 while it reconnects.",
	})
	if err := h.reg.Register(up); err != nil {
		h.log.Warn("register metric", "err", err)
	}
	log := h.log.With("component", "metadata")
	comps.Go(func() error {
		return db.Watch(ctx, h.cfg.Postgres, db.WatchOptions{
			Resync:  metadataResync,
			Logger:  log,
			OnState: func(ok bool) { up.Set(map[bool]float64{false: 0, true: 1}[ok]) },
			OnChange: func(table string) {
				h.metadataChanged(ctx, table)
			},
		})
	})
}

// metadataChanged applies a change of table ("" = any) made elsewhere.
func (h *Hub) metadataChanged(ctx context.Context, table string) {
	switch table {
	case "", "agent_tokens":
		h.sec.store.InvalidateTokens()
		h.ingest.RecheckAuth()
	}
	switch table {
	case "", "alert_rules", "alert_notifiers", "alert_silences":
		if h.alerts.engine == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if changed, err := h.alerts.engine.Reload(rctx); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("re-read alert rules, notifiers and silences", "err", fmt.Errorf("%w (the previous copy stays in force)", err))
			}
		} else if changed && table == "" {
			h.log.Info("alert rules, notifiers or silences changed elsewhere while notifications were down; applied")
		}
	}
	switch table {
	case "", "alerts":
		if h.alerts.engine == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := h.alerts.engine.ReloadAcks(rctx); err != nil && ctx.Err() == nil {
			h.log.Warn("re-read alert acknowledgements", "err", err)
		}
		// A follower publishes the leader's alert changes to its clients.
		if err := h.alerts.engine.Follow(rctx); err != nil && ctx.Err() == nil {
			h.log.Warn("follow the alert leader's alerts", "err", err)
		}
	}
}
