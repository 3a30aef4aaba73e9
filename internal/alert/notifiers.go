package alert

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// Notifier is a stored notification channel. Config holds its secrets
// (URLs, tokens, passwords): answer Config.Redact(), never the Notifier.
type Notifier struct {
	Config notify.Config
	// Provisioned notifiers come from the alerts config file and are
	// read-only through the engine.
	Provisioned bool
	CreatedAt   time.Time // UTC, ms precision
	UpdatedAt   time.Time // UTC, ms precision
}

// Notifiers returns every notifier, sorted by name then id.
func (e *Engine) Notifiers() []Notifier {
	e.mu.Lock()
	list := make([]Notifier, 0, len(e.notifiers))
	for _, n := range e.notifiers {
		list = append(list, n)
	}
	e.mu.Unlock()
	slices.SortFunc(list, func(a, b Notifier) int {
		if c := strings.Compare(a.Config.Name, b.Config.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Config.ID, b.Config.ID)
	})
	return list
}

// Notifier returns notifier id.
func (e *Engine) Notifier(id string) (Notifier, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.notifiers[id]
	return n, ok
}

// CreateNotifier validates and stores a new notifier (an id is generated
// when cfg has none).
func (e *Engine) CreateNotifier(ctx context.Context, cfg notify.Config) (Notifier, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if cfg.ID == "" {
		cfg.ID = newID()
	} else if !validID(cfg.ID) {
		return Notifier{}, fieldErr("id", "%q: use 1–%d letters, digits, '-', '_' or '.'", truncate(cfg.ID, 80), maxIDLen)
	} else if _, ok := e.Notifier(cfg.ID); ok {
		return Notifier{}, conflict("notifier id %q is taken; leave id out to get a new one", cfg.ID)
	}
	if err := validateNotifier(cfg); err != nil {
		return Notifier{}, err
	}
	now := e.nowUTC()
	n := Notifier{Config: cfg, CreatedAt: now, UpdatedAt: now}
	if err := saveNotifier(ctx, e.db, n); err != nil {
		return Notifier{}, err
	}
	e.mu.Lock()
	e.notifiers[cfg.ID] = n
	e.mu.Unlock()
	return n, nil
}

// validateNotifier checks a config with notify's rules, as a field error.
func validateNotifier(cfg notify.Config) error {
	if err := cfg.Validate(); err != nil {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if ok && field != "" && !strings.Contains(field, " ") {
			return &FieldError{Field: field, Msg: msg}
		}
		return &FieldError{Field: "notifier", Msg: err.Error()}
	}
	return nil
}

// UpdateNotifier replaces notifier id with cfg (keeping its id and
// creation time); secrets given as notify.Redacted keep their stored value.
func (e *Engine) UpdateNotifier(ctx context.Context, id string, cfg notify.Config) (Notifier, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.Notifier(id)
	if !ok {
		return Notifier{}, notFound("notifier %q", id)
	}
	if old.Provisioned {
		return Notifier{}, conflict("notifier %q is provisioned from the alerts config file (--alerts-config) and read-only here; change it in the file and restart the hub", id)
	}
	if cfg.ID != "" && cfg.ID != id {
		return Notifier{}, fieldErr("id", "%q does not match the notifier in the URL (%q)", cfg.ID, id)
	}
	cfg.ID = id
	cfg = cfg.KeepSecrets(old.Config)
	if err := validateNotifier(cfg); err != nil {
		return Notifier{}, err
	}
	n := Notifier{Config: cfg, CreatedAt: old.CreatedAt, UpdatedAt: e.nowUTC()}
	if err := saveNotifier(ctx, e.db, n); err != nil {
		return Notifier{}, err
	}
	e.mu.Lock()
	e.notifiers[id] = n
	e.mu.Unlock()
	return n, nil
}

// DeleteNotifier removes notifier id, unless a rule still uses it, and
// stops its delivery goroutine.
func (e *Engine) DeleteNotifier(ctx context.Context, id string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.Notifier(id)
	if !ok {
		return notFound("notifier %q", id)
	}
	if old.Provisioned {
		return conflict("notifier %q is provisioned from the alerts config file (--alerts-config) and read-only here; remove it from the file and restart the hub", id)
	}
	var users []string
	for _, r := range e.Rules() {
		if slices.Contains(r.Notifiers, id) {
			users = append(users, r.Name)
		}
	}
	if len(users) > 0 {
		return conflict("notifier %q is used by the rules %s; remove it from them first", id, strings.Join(users, ", "))
	}
	if err := deleteRow(ctx, e.db, "alert_notifiers", id); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.notifiers, id)
	e.removeWorkerLocked(id)
	e.mu.Unlock()
	return nil
}

// TestMessage is the test notification for n: a firing warning from a
// made-up alert, marked Test, linking to the dashboard's alert page when
// the hub knows its URL.
func (e *Engine) TestMessage(n Notifier) notify.Message {
	now := e.now().UTC()
	msg := notify.Message{
		Status: notify.StatusFiring,
		Title:  "[TEST] sysmonstm test notification",
		Test:   true,
		Alerts: []notify.Alert{{
			ID: "test", RuleID: "test", RuleName: "Test notification", Machine: "sysmonstm",
			Metric: "test_metric", Labels: map[string]string{}, Severity: SeverityWarning,
			State: StateFiring, Value: 1, Threshold: 0, Op: ">",
			Description: "This is a test of the notifier " + n.Config.Name + ", sent from the sysmonstm hub.",
			StartedAt:   now,
		}},
	}
	if e.opts.URL != nil {
		if base := e.opts.URL(); base != "" {
			msg.URL = strings.TrimRight(base, "/") + "/alerts"
		}
	}
	return msg
}
