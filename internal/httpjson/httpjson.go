// Package httpjson writes the JSON answers every sysmonstm HTTP server
// gives: a value with its status, or {"error": "…"} (SPEC §5: never a stack
// trace, never a 200 with an error inside).
package httpjson

import (
	"encoding/json"
	"net/http"
)

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
