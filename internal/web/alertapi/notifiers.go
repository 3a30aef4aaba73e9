package alertapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/alert"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// testTimeout bounds POST /api/notifiers/{id}/test (retries included).
const testTimeout = 30 * time.Second

// notifierView is a notifier as the API answers it: the redacted config
// plus "provisioned", "status", "created_at" and "updated_at".
func (a *API) notifierView(n alert.Notifier) (map[string]any, error) {
	b, err := json.Marshal(n.Config.Redact())
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	out["provisioned"] = n.Provisioned
	var st notify.Status
	if a.sender != nil {
		st = a.sender.Status(n.Config.ID)
	}
	out["status"] = st
	out["created_at"] = n.CreatedAt.UTC()
	out["updated_at"] = n.UpdatedAt.UTC()
	return out, nil
}

func (a *API) writeNotifier(w http.ResponseWriter, r *http.Request, status int, n alert.Notifier) {
	v, err := a.notifierView(n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// handleNotifierTypes answers the channel types with the fields of each,
// from notify's channel table; the UI builds its notifier form from it.
func (a *API) handleNotifierTypes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, notify.TypeForms())
}

func (a *API) handleListNotifiers(w http.ResponseWriter, r *http.Request) {
	list := a.notifiers.Notifiers()
	out := make([]map[string]any, 0, len(list))
	for _, n := range list {
		v, err := a.notifierView(n)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleGetNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, ok := a.notifiers.Notifier(id)
	if !ok {
		writeNotFound(w, "notifier", id)
		return
	}
	a.writeNotifier(w, r, http.StatusOK, n)
}

// readNotifier reads and decodes a notifier body, answering the error
// itself when it fails.
func (a *API) readNotifier(w http.ResponseWriter, r *http.Request) (notify.Config, bool) {
	b, err := readBody(w, r, false)
	if err == nil {
		var cfg notify.Config
		if cfg, err = alert.DecodeNotifier(b); err == nil {
			return cfg, true
		}
	}
	a.fail(w, r, err)
	return notify.Config{}, false
}

func (a *API) handleCreateNotifier(w http.ResponseWriter, r *http.Request) {
	cfg, ok := a.readNotifier(w, r)
	if !ok {
		return
	}
	n, err := a.notifiers.CreateNotifier(r.Context(), cfg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "notifier created", "notifier", n.Config.ID, "type", n.Config.Type)
	a.writeNotifier(w, r, http.StatusCreated, n)
}

func (a *API) handleUpdateNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := a.notifiers.Notifier(id); !ok {
		writeNotFound(w, "notifier", id)
		return
	}
	cfg, ok := a.readNotifier(w, r)
	if !ok {
		return
	}
	n, err := a.notifiers.UpdateNotifier(r.Context(), id, cfg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "notifier updated", "notifier", id, "type", n.Config.Type)
	a.writeNotifier(w, r, http.StatusOK, n)
}

func (a *API) handleDeleteNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.notifiers.DeleteNotifier(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	a.logWrite(r, "notifier deleted", "notifier", id)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) handleTestNotifier(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, ok := a.notifiers.Notifier(id)
	if !ok {
		writeNotFound(w, "notifier", id)
		return
	}
	if a.sender == nil {
		writeError(w, http.StatusServiceUnavailable, "notifications are not configured on this hub")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	msg := a.notifiers.TestMessage(n)
	a.logWrite(r, "test notification", "notifier", id, "type", n.Config.Type)
	if err := a.sender.Send(ctx, n.Config, msg); err != nil {
		writeError(w, http.StatusBadGateway, "test notification failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "sent"})
}
