package edge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/webdom"
)

// The read-only page: index.html loads edge.js (an ES module) and edge.css.
// Embedded, so the binary needs nothing beside it. The edge never serves
// the hub's dashboard files, except dom.js, which both share (package
// webdom).
//
//go:embed ui/index.html ui/edge.js ui/edge.css
var uiFiles embed.FS

// uiAsset is one embedded file with its validator.
type uiAsset struct {
	body  []byte
	etag  string
	ctype string
}

// uiAssets maps a file name under ui/ to its asset.
var uiAssets = loadUI()

func loadUI() map[string]uiAsset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
	}
	out := map[string]uiAsset{}
	own, _ := fs.Sub(uiFiles, "ui")
	for _, fsys := range []fs.FS{own, webdom.Files()} {
		entries, _ := fs.ReadDir(fsys, ".")
		for _, e := range entries {
			b, err := fs.ReadFile(fsys, e.Name())
			if err != nil {
				continue
			}
			sum := sha256.Sum256(b)
			out[e.Name()] = uiAsset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: types[path.Ext(e.Name())]}
		}
	}
	return out
}

// serveFile answers with an embedded file (ETag revalidation) or a JSON 404.
func serveFile(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := uiAssets[name]
	if !ok || a.ctype == "" {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// serveIndex answers GET /.
func serveIndex(w http.ResponseWriter, r *http.Request) { serveFile(w, r, "index.html") }

// serveAsset answers GET /ui/{file}.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	serveFile(w, r, name)
}
