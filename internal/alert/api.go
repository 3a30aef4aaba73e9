package alert

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/httpjson"
)

// maxBodyBytes bounds every request body of the alerting API.
const maxBodyBytes = 256 << 10

// Routes returns the alerting API's handlers (see docs/api.md, "Alerts").
// Authorization (writes need an admin) is the hub middleware's job; the
// handlers record the principal's name.
func (e *Engine) Routes() []httpjson.Route {
	h := func(pattern string, f http.HandlerFunc) httpjson.Route {
		return httpjson.Route{Pattern: pattern, Handler: f}
	}
	return []httpjson.Route{
		h("GET /api/rules", e.handleListRules),
		h("POST /api/rules", e.handleCreateRule),
		h("POST /api/rules/preview", e.handlePreview),
		h("GET /api/rules/{id}", e.handleGetRule),
		h("PUT /api/rules/{id}", e.handleUpdateRule),
		h("DELETE /api/rules/{id}", e.handleDeleteRule),

		h("GET /api/alerts", e.handleListAlerts),
		h("GET /api/alerts/{id}", e.handleGetAlert),
		h("POST /api/alerts/{id}/ack", e.handleAck),
		h("DELETE /api/alerts/{id}/ack", e.handleUnack),

		h("GET /api/silences", e.handleListSilences),
		h("POST /api/silences", e.handleCreateSilence),
		h("GET /api/silences/{id}", e.handleGetSilence),
		h("DELETE /api/silences/{id}", e.handleExpireSilence),

		h("GET /api/notifiers", e.handleListNotifiers),
		h("POST /api/notifiers", e.handleCreateNotifier),
		h("GET /api/notifiers/{id}", e.handleGetNotifier),
		h("PUT /api/notifiers/{id}", e.handleUpdateNotifier),
		h("DELETE /api/notifiers/{id}", e.handleDeleteNotifier),
		h("POST /api/notifiers/{id}/test", e.handleTestNotifier),
	}
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) { httpjson.Error(w, status, msg) }

// fail answers err with its status: 400 for field errors, 404, 409, else
// 500 (logged, with a generic message).
func (e *Engine) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *FieldError
	var ce *conflictError
	var be *bodyError
	switch {
	case errors.As(err, &be):
		writeError(w, be.status, be.msg)
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Error())
	case errors.As(err, &ce):
		writeError(w, http.StatusConflict, ce.msg)
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		e.log.Error("alerting API", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error: the hub could not complete the request (see its log)")
	}
}

// bodyError is a request body problem with its status.
type bodyError struct {
	status int
	msg    string
}

func (b *bodyError) Error() string { return b.msg }

// readBody reads a bounded JSON request body.
func readBody(w http.ResponseWriter, r *http.Request, allowEmpty bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return nil, &bodyError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &bodyError{http.StatusRequestEntityTooLarge, "body larger than 256 KiB"}
		}
		return nil, &bodyError{http.StatusBadRequest, "read body: " + err.Error()}
	}
	if len(b) == 0 && !allowEmpty {
		return nil, &bodyError{http.StatusBadRequest, "body: empty; send a JSON object"}
	}
	return b, nil
}

func isJSON(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	for len(ct) > 0 && ct[len(ct)-1] == ' ' {
		ct = ct[:len(ct)-1]
	}
	return ct == "application/json"
}

// principal is who made the request, as recorded in acks and silences.
func principal(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Name()
	}
	return "anonymous"
}

// logWrite records a configuration change.
func (e *Engine) logWrite(r *http.Request, what string, attrs ...any) {
	e.log.LogAttrs(r.Context(), slog.LevelInfo, what, slog.String("by", principal(r)), slog.Group("", attrs...))
}
