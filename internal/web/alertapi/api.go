// Package alertapi serves the alerting HTTP API — /api/rules, /api/alerts,
// /api/silences, /api/notifiers (docs/api.md, "Alerts") — over the alert
// engine, which it reaches through the small interfaces below: the engine
// knows nothing of HTTP, as Prometheus' rules package knows nothing of its
// web/api/v1.
package alertapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/sysmonstm/sysmonstm/internal/alert"
	"github.com/sysmonstm/sysmonstm/internal/auth"
	"github.com/sysmonstm/sysmonstm/internal/httpjson"
	"github.com/sysmonstm/sysmonstm/internal/notify"
)

// RuleStore is what the rule endpoints need; *alert.Engine satisfies it.
type RuleStore interface {
	Rules() []alert.Rule
	Rule(id string) (alert.Rule, bool)
	CreateRule(ctx context.Context, r alert.Rule) (alert.Rule, error)
	UpdateRule(ctx context.Context, id string, r alert.Rule) (alert.Rule, error)
	DeleteRule(ctx context.Context, id string) error
	// Preview evaluates an unsaved rule against the latest values.
	Preview(r alert.Rule) alert.Preview
}

// AlertStore is what the alert endpoints need; *alert.Engine satisfies it.
type AlertStore interface {
	Alerts(ctx context.Context, q alert.AlertQuery) ([]alert.Alert, error)
	Alert(ctx context.Context, id string) (alert.Alert, error)
	Acknowledge(ctx context.Context, id string, ack bool, who, comment string) (alert.Alert, error)
}

// SilenceStore is what the silence endpoints need; *alert.Engine satisfies
// it.
type SilenceStore interface {
	Silences() []alert.Silence
	Silence(id string) (alert.Silence, bool)
	// CreateSilence creates a silence from its JSON form on behalf of by.
	CreateSilence(ctx context.Context, body []byte, by string) (alert.Silence, error)
	ExpireSilence(ctx context.Context, id string) (alert.Silence, error)
}

// NotifierStore is what the notifier endpoints need; *alert.Engine
// satisfies it.
type NotifierStore interface {
	Notifiers() []alert.Notifier
	Notifier(id string) (alert.Notifier, bool)
	CreateNotifier(ctx context.Context, cfg notify.Config) (alert.Notifier, error)
	UpdateNotifier(ctx context.Context, id string, cfg notify.Config) (alert.Notifier, error)
	DeleteNotifier(ctx context.Context, id string) error
	// TestMessage is the message the test endpoint sends to n.
	TestMessage(n alert.Notifier) notify.Message
}

// Sender delivers the test notification and reports each channel's
// delivery record; *notify.Dispatcher satisfies it.
type Sender interface {
	Send(ctx context.Context, c notify.Config, m notify.Message) error
	Status(id string) notify.Status
}

// Options configure an API. Rules, Alerts, Silences and Notifiers are
// required (the hub passes its one *alert.Engine for all four).
type Options struct {
	Rules     RuleStore
	Alerts    AlertStore
	Silences  SilenceStore
	Notifiers NotifierStore
	// Sender is the engine's notification sender; nil means notifications
	// are off: the test endpoint answers 503 and every status is empty.
	Sender Sender
	// Logger receives configuration changes (with the principal's name)
	// and internal errors; nil logs nothing.
	Logger *slog.Logger
}

// API is the alerting API's handlers.
type API struct {
	rules     RuleStore
	alerts    AlertStore
	silences  SilenceStore
	notifiers NotifierStore
	sender    Sender
	log       *slog.Logger
}

// New builds the API.
func New(opts Options) (*API, error) {
	if opts.Rules == nil || opts.Alerts == nil || opts.Silences == nil || opts.Notifiers == nil {
		return nil, errors.New("alertapi: Options.Rules, Alerts, Silences and Notifiers are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{
		rules: opts.Rules, alerts: opts.Alerts, silences: opts.Silences, notifiers: opts.Notifiers,
		sender: opts.Sender, log: opts.Logger,
	}, nil
}

// maxBodyBytes bounds every request body of the alerting API.
const maxBodyBytes = 256 << 10

// Routes returns the alerting API's handlers (see docs/api.md, "Alerts").
// Authorization (writes need an admin) is the hub middleware's job; the
// handlers record the principal's name.
func (a *API) Routes() []httpjson.Route {
	h := func(pattern string, f http.HandlerFunc) httpjson.Route {
		return httpjson.Route{Pattern: pattern, Handler: f}
	}
	return []httpjson.Route{
		h("GET /api/rules", a.handleListRules),
		h("POST /api/rules", a.handleCreateRule),
		h("POST /api/rules/preview", a.handlePreview),
		h("GET /api/rules/{id}", a.handleGetRule),
		h("PUT /api/rules/{id}", a.handleUpdateRule),
		h("DELETE /api/rules/{id}", a.handleDeleteRule),

		h("GET /api/alerts", a.handleListAlerts),
		h("GET /api/alerts/{id}", a.handleGetAlert),
		h("POST /api/alerts/{id}/ack", a.handleAck),
		h("DELETE /api/alerts/{id}/ack", a.handleUnack),

		h("GET /api/silences", a.handleListSilences),
		h("POST /api/silences", a.handleCreateSilence),
		h("GET /api/silences/{id}", a.handleGetSilence),
		h("DELETE /api/silences/{id}", a.handleExpireSilence),

		h("GET /api/notifier-types", a.handleNotifierTypes),
		h("GET /api/notifiers", a.handleListNotifiers),
		h("POST /api/notifiers", a.handleCreateNotifier),
		h("GET /api/notifiers/{id}", a.handleGetNotifier),
		h("PUT /api/notifiers/{id}", a.handleUpdateNotifier),
		h("DELETE /api/notifiers/{id}", a.handleDeleteNotifier),
		h("POST /api/notifiers/{id}/test", a.handleTestNotifier),
	}
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) { httpjson.Error(w, status, msg) }

// writeNotFound answers 404 `<what> "<id>" not found`, the text of the
// engine's own not-found errors.
func writeNotFound(w http.ResponseWriter, what, id string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q not found", what, id))
}

// fail answers err with its status: the body error's own, 400 for field
// errors, 404, 409, else 500 (logged, with a generic message).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *alert.FieldError
	var be *bodyError
	switch {
	case errors.As(err, &be):
		writeError(w, be.status, be.msg)
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Error())
	case errors.Is(err, alert.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, alert.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		a.log.Error("alerting API", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error: the hub could not complete the request (see its log)")
	}
}

// fieldErr is a validation error of the request itself (its query), in
// the engine's form.
func fieldErr(field, format string, args ...any) error {
	return &alert.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
func (a *API) logWrite(r *http.Request, what string, attrs ...any) {
	a.log.LogAttrs(r.Context(), slog.LevelInfo, what, slog.String("by", principal(r)), slog.Group("", attrs...))
}
