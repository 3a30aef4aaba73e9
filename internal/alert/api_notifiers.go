package alert

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// testTimeout bounds POST /api/notifiers/{id}/test (retries included).
const testTimeout = 30 * time.Second

// notifierView is a notifier as the API answers it: the redacted config
// plus "provisioned", "status", "created_at" and "updated_at".
func (e *Engine) notifierView(n notifierEntry) (map[string]any, error) {
	b, err := json.Marshal(n.cfg.Redact())
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	out["provisioned"] = n.provisioned
	var st notify.Status
	if e.opts.Sender != nil {
		st = e.opts.Sender.Status(n.cfg.ID)
	}
	out["status"] = st
	out["created_at"] = n.createdAt.UTC()
	out["updated_at"] = n.updatedAt.UTC()
	return out, nil
}

func (e *Engine) notifier(id string) (notifierEntry, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.notifiers[id]
	return n, ok
}

func (e *Engine) writeNotifier(w http.ResponseWriter, r *http.Request, status int, n notifierEntry) {
	v, err := e.notifierView(n)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (e *Engine) handleListNotifiers(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	list := make([]notifierEntry, 0, len(e.notifiers))
	for _, n := range e.notifiers {
		list = append(list, n)
	}
	e.mu.Unlock()
	slices.SortFunc(list, func(a, b notifierEntry) int {
		if c := strings.Compare(a.cfg.Name, b.cfg.Name); c != 0 {
			return c
		}
		return strings.Compare(a.cfg.ID, b.cfg.ID)
	})
	out := make([]map[string]any, 0, len(list))
	for _, n := range list {
		v, err := e.notifierView(n)
		if err != nil {
			e.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Engine) handleGetNotifier(w http.ResponseWriter, r *http.Request) {
	n, ok := e.notifier(r.PathValue("id"))
	if !ok {
		e.fail(w, r, notFound("notifier %q", r.PathValue("id")))
		return
	}
	e.writeNotifier(w, r, http.StatusOK, n)
}

// readNotifier reads and decodes a notifier body, answering the error
// itself when it fails.
func (e *Engine) readNotifier(w http.ResponseWriter, r *http.Request) (notify.Config, bool) {
	b, err := readBody(w, r, false)
	if err == nil {
		var cfg notify.Config
		if cfg, err = decodeNotifier(b); err == nil {
			return cfg, true
		}
	}
	e.fail(w, r, err)
	return notify.Config{}, false
}

func (e *Engine) handleCreateNotifier(w http.ResponseWriter, r *http.Request) {
	cfg, ok := e.readNotifier(w, r)
	if !ok {
		return
	}
	n, err := e.createNotifier(r.Context(), cfg)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "notifier created", "notifier", n.cfg.ID, "type", n.cfg.Type)
	e.writeNotifier(w, r, http.StatusCreated, n)
}

func (e *Engine) createNotifier(ctx context.Context, cfg notify.Config) (notifierEntry, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if cfg.ID == "" {
		cfg.ID = newID()
	} else if !validID(cfg.ID) {
		return notifierEntry{}, fieldErr("id", "%q: use 1–%d letters, digits, '-', '_' or '.'", truncate(cfg.ID, 80), maxIDLen)
	} else if _, ok := e.notifier(cfg.ID); ok {
		return notifierEntry{}, conflict("notifier id %q is taken; leave id out to get a new one", cfg.ID)
	}
	if err := validateNotifier(cfg); err != nil {
		return notifierEntry{}, err
	}
	now := e.nowUTC()
	n := notifierEntry{cfg: cfg, createdAt: now, updatedAt: now}
	if err := saveNotifier(ctx, e.db, n); err != nil {
		return notifierEntry{}, err
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

func (e *Engine) handleUpdateNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := e.notifier(id); !ok {
		e.fail(w, r, notFound("notifier %q", id))
		return
	}
	cfg, ok := e.readNotifier(w, r)
	if !ok {
		return
	}
	n, err := e.updateNotifier(r.Context(), id, cfg)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "notifier updated", "notifier", id, "type", n.cfg.Type)
	e.writeNotifier(w, r, http.StatusOK, n)
}

func (e *Engine) updateNotifier(ctx context.Context, id string, cfg notify.Config) (notifierEntry, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.notifier(id)
	if !ok {
		return notifierEntry{}, notFound("notifier %q", id)
	}
	if old.provisioned {
		return notifierEntry{}, conflict("notifier %q is provisioned from the alerts config file (--alerts-config) and read-only here; change it in the file and restart the hub", id)
	}
	if cfg.ID != "" && cfg.ID != id {
		return notifierEntry{}, fieldErr("id", "%q does not match the notifier in the URL (%q)", cfg.ID, id)
	}
	cfg.ID = id
	cfg = cfg.KeepSecrets(old.cfg)
	if err := validateNotifier(cfg); err != nil {
		return notifierEntry{}, err
	}
	n := notifierEntry{cfg: cfg, createdAt: old.createdAt, updatedAt: e.nowUTC()}
	if err := saveNotifier(ctx, e.db, n); err != nil {
		return notifierEntry{}, err
	}
	e.mu.Lock()
	e.notifiers[id] = n
	e.mu.Unlock()
	return n, nil
}

func (e *Engine) handleDeleteNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := e.deleteNotifier(r.Context(), id); err != nil {
		e.fail(w, r, err)
		return
	}
	e.logWrite(r, "notifier deleted", "notifier", id)
	w.WriteHeader(http.StatusNoContent)
}

func (e *Engine) deleteNotifier(ctx context.Context, id string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old, ok := e.notifier(id)
	if !ok {
		return notFound("notifier %q", id)
	}
	if old.provisioned {
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

func (e *Engine) handleTestNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, ok := e.notifier(id)
	if !ok {
		e.fail(w, r, notFound("notifier %q", id))
		return
	}
	if e.opts.Sender == nil {
		writeError(w, http.StatusServiceUnavailable, "notifications are not configured on this hub")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	now := e.now().UTC()
	msg := notify.Message{
		Status: notify.StatusFiring,
		Title:  "[TEST] sysmonstm test notification",
		Test:   true,
		Alerts: []notify.Alert{{
			ID: "test", RuleID: "test", RuleName: "Test notification", Machine: "sysmonstm",
			Metric: "test_metric", Labels: map[string]string{}, Severity: SeverityWarning,
			State: StateFiring, Value: 1, Threshold: 0, Op: ">",
			Description: "This is a test of the notifier " + n.cfg.Name + ", sent from the sysmonstm hub.",
			StartedAt:   now,
		}},
	}
	if e.opts.URL != nil {
		if base := e.opts.URL(); base != "" {
			msg.URL = strings.TrimRight(base, "/") + "/alerts"
		}
	}
	e.logWrite(r, "test notification", "notifier", id, "type", n.cfg.Type)
	if err := e.opts.Sender.Send(ctx, n.cfg, msg); err != nil {
		writeError(w, http.StatusBadGateway, "test notification failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "sent"})
}
