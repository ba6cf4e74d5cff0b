package server_test

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/authapi/authapi/admin"
)

// TestConsoleServing: /admin redirects to /admin/; every client route below it gets
// index.html, revalidated on each load; hashed assets are cached for good; a missing asset is
// a 404, not the app; and every answer carries the console's strict CSP.
func TestConsoleServing(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	asset := consoleAsset(t, ".js")

	resp, _ := rawGet(t, http.DefaultClient, "GET", e.url+"/admin?x=1")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/admin/?x=1" {
		t.Errorf("GET /admin: %d Location %q, want 308 /admin/?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}

	index, err := fs.ReadFile(admin.Dist(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string // the expected body, "" for none checked
		cache        string
		contentType  string
	}{
		{"GET", "/admin/", 200, string(index), "no-cache", "text/html"},
		{"GET", "/admin/users", 200, string(index), "no-cache", "text/html"},
		{"GET", "/admin/users/7?search=al", 200, string(index), "no-cache", "text/html"},
		{"GET", "/admin/keys/", 200, string(index), "no-cache", "text/html"},
		{"HEAD", "/admin/audit", 200, "", "no-cache", "text/html"},
		{"GET", "/admin/" + asset, 200, "", "public, max-age=31536000, immutable", "text/javascript"},
		{"GET", "/admin/favicon.svg", 200, "", "no-cache", "image/svg+xml"},
		{"GET", "/admin/assets/index-missing.js", 404, "", "", "application/json"},
	} {
		resp, body := rawGet(t, http.DefaultClient, tc.method, e.url+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.body != "" && body != tc.body {
			t.Errorf("%s %s: body is not index.html: %.100q", tc.method, tc.path, body)
		}
		if tc.method == "HEAD" && body != "" {
			t.Errorf("HEAD %s: body %.100q", tc.path, body)
		}
		if got := resp.Header.Get("Cache-Control"); tc.cache != "" && got != tc.cache {
			t.Errorf("%s %s: Cache-Control %q, want %q", tc.method, tc.path, got, tc.cache)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, got, tc.contentType)
		}
		assertConsoleCSP(t, tc.method+" "+tc.path, resp.Header.Get("Content-Security-Policy"), resp.StatusCode == 200)
	}

	// index.html is revalidated by ETag: an unchanged one costs a 304 and no body.
	resp, _ = rawGet(t, http.DefaultClient, "GET", e.url+"/admin/")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("index.html has no ETag")
	}
	req, _ := http.NewRequest("GET", e.url+"/admin/users", nil)
	req.Header.Set("If-None-Match", etag)
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s: %d, want 304", etag, again.StatusCode)
	}
}

// assertConsoleCSP: scripts and styles from the origin only (no inline code, nothing else),
// API calls to the origin only, no framing. Error answers keep the API's deny-all policy.
func assertConsoleCSP(t *testing.T, what, csp string, page bool) {
	t.Helper()
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{"default-src": "'none'", "frame-ancestors": "'none'"}
	if page {
		want["script-src"] = "'self'"
		want["style-src"] = "'self'"
		want["connect-src"] = "'self'"
	}
	for name, value := range want {
		if directives[name] != value {
			t.Errorf("%s: CSP %s is %q, want %q (CSP %q)", what, name, directives[name], value, csp)
		}
	}
}

// TestConsoleBuildRunsUnderCSP: the built index.html loads its code from files only: no
// inline script, style or event handler, which the console's CSP would block.
func TestConsoleBuildRunsUnderCSP(t *testing.T) {
	dist := admin.Dist()
	err := fs.WalkDir(dist, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".html") {
			return err
		}
		page, err := fs.ReadFile(dist, name)
		if err != nil {
			return err
		}
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`), // a script with a body
			regexp.MustCompile(`<style[\s>]`),
			regexp.MustCompile(`\sstyle\s*=`),
			regexp.MustCompile(`\son[a-z]+\s*=`),
			regexp.MustCompile(`(src|href)\s*=\s*"(https?:)?//`), // another host
		} {
			if m := bad.Find(page); m != nil {
				t.Errorf("%s: %q would break under the console's CSP", name, m)
			}
		}
		for _, ref := range regexp.MustCompile(`(?:src|href)="/admin/([^"]+)"`).FindAllSubmatch(page, -1) {
			if _, err := fs.Stat(dist, string(ref[1])); err != nil {
				t.Errorf("%s names %s, which the build lacks", name, ref[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// consoleAsset returns the path (below /admin/) of a built asset with the given extension.
func consoleAsset(t *testing.T, ext string) string {
	t.Helper()
	matches, err := fs.Glob(admin.Dist(), "assets/*"+ext)
	if err != nil || len(matches) == 0 {
		t.Fatalf("no assets/*%s in the console's build (%v): run 'make gen'", ext, err)
	}
	return matches[0]
}
