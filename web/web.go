// Package web holds the files that meteord serves from its built-in document
// root: the JavaScript client meteor.js, the helper pages its modes load, and
// the demo page.
package web

import (
	"embed"
	"io/fs"
)

//go:embed public
var files embed.FS

// Files returns the built-in document root.
func Files() fs.FS {
	sub, err := fs.Sub(files, "public")
	if err != nil {
		panic(err) // the embedded tree always has "public"
	}
	return sub
}
