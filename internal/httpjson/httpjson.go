// Package httpjson holds what every sysmonstm HTTP API shares: the Route
// each API contributes to a server's mux, and the JSON answers they give: a
// value with its status, or {"error": "…"} (SPEC §5: never a stack trace,
// never a 200 with an error inside).
package httpjson

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Route is one handler an API contributes to a server's mux (the auth,
// alerting and admin APIs to the hub's web server), with an http.ServeMux
// pattern such as "GET /api/rules/{id}".
type Route struct {
	Pattern string
	Handler http.Handler
}

// Write answers v as JSON with status. API answers are never cached.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		Error(w, http.StatusInternalServerError, "encode response")
		return
	}
	header(w)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Error answers {"error": msg} with status.
func Error(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	header(w)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func header(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// NotFound serves mux, answering its own plain-text 404 and 405 with JSON
// errors (keeping the Allow header); notAllowed is the 405 message.
func NotFound(mux *http.ServeMux, notAllowed string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		cw := &statusOnly{header: w.Header()}
		h.ServeHTTP(cw, r)
		if cw.status == http.StatusMethodNotAllowed {
			Error(w, cw.status, notAllowed)
			return
		}
		Error(w, http.StatusNotFound, "not found")
	})
}

// statusOnly records a status and discards the body.
type statusOnly struct {
	header http.Header
	status int
}

func (c *statusOnly) Header() http.Header         { return c.header }
func (c *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (c *statusOnly) WriteHeader(status int)      { c.status = status }

// UpgradeErrors wraps the writer given to a WebSocket upgrade
// (websocket.Accept) so that its plain-text error answers (bad handshake,
// forbidden origin) become JSON errors; the 101 upgrade and the hijack pass
// through (Unwrap). Call Finish after the upgrade attempt.
type UpgradeErrors struct {
	http.ResponseWriter
	status int
	body   strings.Builder
}

// WriteHeader holds back error statuses.
func (e *UpgradeErrors) WriteHeader(status int) {
	if status >= 400 {
		e.status = status
		return
	}
	e.ResponseWriter.WriteHeader(status)
}

// Write keeps (the start of) an error body.
func (e *UpgradeErrors) Write(b []byte) (int, error) {
	if e.status != 0 {
		if e.body.Len() < 1024 {
			e.body.Write(b)
		}
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets the upgrade reach the real writer.
func (e *UpgradeErrors) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// Finish sends the held-back error, if any, as JSON.
func (e *UpgradeErrors) Finish() {
	if e.status == 0 {
		return
	}
	msg := strings.TrimSpace(e.body.String())
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	Error(e.ResponseWriter, e.status, msg)
}
