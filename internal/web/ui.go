package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/webdom"
)

// The dashboard: index.html is the single page for / and /machines/{id};
// app.js boots it and loads the modules and styles under /ui/. Everything is
// embedded so the binary needs no network and no files beside it. js/dom.js
// is the one the edge serves too (package webdom).
//
//go:embed ui/index.html ui/app.js ui/css ui/js ui/vendor
var uiFiles embed.FS

// uiAsset is one embedded file with its validator.
type uiAsset struct {
	body []byte
	etag string
}

var (
	uiOnce   sync.Once
	uiAssets map[string]uiAsset // by path under ui/, e.g. "js/overview.js"
)

// uiFS is the dashboard's file tree: the files under ui/ and, at js/, the
// files shared with the edge.
func uiFS() map[string]fs.FS {
	own, _ := fs.Sub(uiFiles, "ui")
	return map[string]fs.FS{"": own, "js/": webdom.Files()}
}

// loadUI reads every embedded file once and computes its ETag.
func loadUI() {
	uiAssets = make(map[string]uiAsset)
	for prefix, fsys := range uiFS() {
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			uiAssets[prefix+p] = uiAsset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
			return nil
		})
	}
}

// uiTypes maps the embedded files' extensions to their content types.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".md":   "text/plain; charset=utf-8",
	".svg":  "image/svg+xml",
}

// CSP is the Content-Security-Policy of every response: same-origin
// resources only (no inline script or style, no eval), no plugins, no
// framing by anyone, forms and <base> locked down.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// SecurityHeaders sets the headers every response carries: the CSP, no
// MIME sniffing, no framing, no referrer, a same-origin opener, and HSTS
// on TLS connections.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// uiHeaders sets the headers of the UI files (the security headers come
// from SecurityHeaders).
func uiHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
}

// serveUIFile answers with the embedded file name (relative to ui/), or a
// JSON 404. Revalidation uses the ETag, so an unchanged file costs a 304.
func serveUIFile(w http.ResponseWriter, r *http.Request, name string) {
	uiOnce.Do(loadUI)
	a, ok := uiAssets[name]
	ct, known := uiTypes[path.Ext(name)]
	if !ok || !known || name == "LICENSE" {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	uiHeaders(w, ct)
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// serveIndex answers / and /machines/{id}: the page is the same, app.js
// reads the path.
func serveIndex(w http.ResponseWriter, r *http.Request) {
	serveUIFile(w, r, "index.html")
}

func serveAppJS(w http.ResponseWriter, r *http.Request) {
	serveUIFile(w, r, "app.js")
}

// serveUIAsset answers GET /ui/{path...}: styles, modules and vendored files.
func serveUIAsset(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if p == "index.html" || p == "app.js" || strings.Contains(p, "..") {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	serveUIFile(w, r, p)
}
