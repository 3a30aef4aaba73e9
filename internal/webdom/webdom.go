// Package webdom holds dom.js, the DOM helpers that the hub's dashboard and
// the edge's page both serve: one source for how an untrusted string
// reaches a page (as text, with its control and bidi characters visible).
package webdom

import (
	"embed"
	"io/fs"
)

//go:embed dom.js
var files embed.FS

// Files is the shared browser files, by name ("dom.js"); each page serves
// them beside its own modules.
func Files() fs.FS { return files }
