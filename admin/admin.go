// Package admin is the admin console served at /admin/: a Svelte single-page app whose source
// is in src/ and whose build, dist/, is committed and embedded here, so that building the
// server needs no Node.js. `make gen` rebuilds dist/ from package-lock.json.
package admin

import (
	"embed"
	"io/fs"
)

// all: keeps a chunk whose name starts with "_", which the bundler may emit.
//
//go:embed all:dist
var dist embed.FS

// Dist returns the built console: index.html at its root and the hashed assets in assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub fails only on an invalid one
	}
	return sub
}
