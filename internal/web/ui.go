package web

import (
	_ "embed"
	"net/http"
)

// The placeholder UI; the real dashboard replaces it.
var (
	//go:embed ui/index.html
	indexHTML []byte
	//go:embed ui/app.js
	appJS []byte
)

// uiHeaders sets the headers of the UI files: a CSP that allows only
// same-origin resources (no inline script), and no sniffing or framing.
func uiHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", "default-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func serveIndex(w http.ResponseWriter, _ *http.Request) {
	uiHeaders(w, "text/html; charset=utf-8")
	_, _ = w.Write(indexHTML)
}

func serveAppJS(w http.ResponseWriter, _ *http.Request) {
	uiHeaders(w, "text/javascript; charset=utf-8")
	_, _ = w.Write(appJS)
}
