package hub

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sysmonstm/sysmonstm/internal/alert"
	"github.com/sysmonstm/sysmonstm/internal/ingest"
	"github.com/sysmonstm/sysmonstm/internal/live"
	"github.com/sysmonstm/sysmonstm/internal/notify"
	"github.com/sysmonstm/sysmonstm/internal/web/alertapi"
)

// AlertingConfig is the alert engine's settings; zero values take the
// defaults.
type AlertingConfig struct {
	// ConfigFile provisions rules and notifiers from YAML (read-only in the
	// API, re-synced at each start); "" provisions nothing.
	ConfigFile string
	// Retention keeps resolved alerts and expired silences; default 720h,
	// at least 1h.
	Retention time.Duration
	// GroupWait collects alert changes into one message per channel;
	// default 500ms, 10ms to 10m.
	GroupWait time.Duration
	// RepeatInterval re-sends unacknowledged firing alerts; default 4h,
	// negative disables repeats.
	RepeatInterval time.Duration
	// NoDefaultRules skips creating the built-in rules (each is created once,
	// on the first start or after an upgrade that adds it).
	NoDefaultRules bool
	// LeaderElection (needs Postgres): the hubs on the database elect one
	// that writes alert state and sends notifications, for hubs that all
	// receive every machine's data; the others evaluate and follow.
	LeaderElection bool
}

// alertsPart holds the alert engine and its notification dispatcher.
type alertsPart struct {
	engine     *alert.Engine
	dispatcher *notify.Dispatcher
}

// setupAlerts builds the alert engine on h.db and h.live and appends the
// alerting API's routes (internal/web/alertapi, over the engine) to
// h.routes. Called after setupSecurity, before ingest.
func (h *Hub) setupAlerts() error {
	c := h.cfg.Alerting // checked by Config.Validate
	d, err := notify.NewDispatcher(notify.DispatcherOptions{
		Logger:     h.log.With("component", "notify"),
		Registerer: h.reg,
	})
	if err != nil {
		return err
	}
	e, err := alert.New(alert.Options{
		DB:             h.db,
		Machines:       h.live,
		Publish:        h.live.Publish,
		Sender:         d,
		Provisioning:   c.ConfigFile,
		Defaults:       !c.NoDefaultRules,
		GroupWait:      c.GroupWait,
		RepeatInterval: c.RepeatInterval,
		Retention:      c.Retention,
		Elect:          c.LeaderElection,
		Logger:         h.log.With("component", "alert"),
		Registerer:     h.reg,
		URL: func() string {
			if h.httpLn == nil {
				return ""
			}
			return h.URL()
		},
	})
	if err != nil {
		return err
	}
	api, err := alertapi.New(alertapi.Options{
		Rules: e, Alerts: e, Silences: e, Notifiers: e,
		Sender: d,
		Logger: h.log.With("component", "alert"),
	})
	if err != nil {
		return err
	}
	h.alerts = alertsPart{engine: e, dispatcher: d}
	h.routes = append(h.routes, api.Routes()...)
	return nil
}

// liveSink is what ingest feeds: the live state, and the alert engine
// watching the same batches.
func (h *Hub) liveSink() ingest.Live {
	if h.alerts.engine == nil {
		return h.live
	}
	return alertSink{State: h.live, engine: h.alerts.engine}
}

// alertSink forwards every ingest.Live call to the live state and shows
// hellos and batches to the alert engine.
type alertSink struct {
	*live.State
	engine *alert.Engine
}

// Connect records the hello in the live state, then in the engine.
func (s alertSink) Connect(info live.MachineInfo) {
	s.State.Connect(info)
	s.engine.Connected(info)
}

// Update records the batch in the live state, then evaluates it.
func (s alertSink) Update(id string, ts int64, series []*live.Series, values []float64) {
	s.State.Update(id, ts, series, values)
	s.engine.Observe(id, ts, series, values)
}

// runAlerts starts the alert engine's goroutines on comps.
func (h *Hub) runAlerts(ctx context.Context, comps *errgroup.Group) {
	if h.alerts.engine != nil {
		comps.Go(func() error { return h.alerts.engine.Run(ctx) })
	}
}
