package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

const consolePath = "/admin/"

// consoleCSP lets the console run its own scripts and styles and call this origin's API, and
// nothing else: no inline script or style, no other host, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'" +
	"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Hashed assets never change under their name; index.html names the current ones, so it is
// revalidated on every load (cheaply, by ETag).
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// consoleFile is one file of the console's build, read once at start.
type consoleFile struct {
	name  string
	body  []byte
	etag  string
	cache string
}

// registerConsole serves the admin console from dist: files by name, and index.html for
// every other path below /admin/, where the app routes on the client.
func registerConsole(e *echo.Echo, dist fs.FS) error {
	files := map[string]consoleFile{}
	err := fs.WalkDir(dist, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(dist, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		cache := cacheRevalidate
		if strings.HasPrefix(name, "assets/") {
			cache = cacheImmutable
		}
		files[name] = consoleFile{
			name: name, body: body, cache: cache,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the console's build: %w", err)
	}
	index, ok := files["index.html"]
	if !ok {
		return fmt.Errorf("the console's build has no index.html: run 'make gen'")
	}

	e.GET(strings.TrimSuffix(consolePath, "/"), func(c echo.Context) error {
		to := (&url.URL{Path: consolePath, RawQuery: c.Request().URL.RawQuery}).String()
		return c.Redirect(http.StatusPermanentRedirect, to)
	})
	serve := func(c echo.Context) error {
		name := strings.TrimPrefix(c.Request().URL.Path, consolePath)
		f, ok := files[name]
		if !ok {
			// A missing asset is an error, not the app: a stale index.html would otherwise get
			// HTML for its script and fail in a confusing way.
			if strings.HasPrefix(name, "assets/") {
				return echo.ErrNotFound
			}
			f = index
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentSecurityPolicy, consoleCSP)
		h.Set(echo.HeaderCacheControl, f.cache)
		h.Set("ETag", f.etag)
		http.ServeContent(c.Response(), c.Request(), f.name, time.Time{}, bytes.NewReader(f.body))
		return nil
	}
	e.GET(consolePath, serve)
	e.GET(consolePath+"*", serve)
	return nil
}
