package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/server"
)

// rawGet sends a request without following redirects or checking the spec, for answers that
// are not API operations (redirects, HTML).
func rawGet(t *testing.T, client *http.Client, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestBodyLimitIsOneMiB: MaxBodyBytes is exactly 1 MiB, whether the size is announced or only
// found while reading.
func TestBodyLimitIsOneMiB(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	body := func(n int) string { // a well-formed login body of exactly n bytes
		const head, tail = `{"username":"nobody","password":"x"`, `}`
		return head + strings.Repeat(" ", n-len(head)-len(tail)) + tail
	}
	for _, chunked := range []bool{false, true} {
		for _, tc := range []struct {
			size   int
			status int
		}{{server.MaxBodyBytes, http.StatusUnauthorized}, {server.MaxBodyBytes + 1, http.StatusRequestEntityTooLarge}} {
			var r io.Reader = strings.NewReader(body(tc.size))
			if chunked {
				r = io.MultiReader(r) // hides the length, so the request is sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/auth/token/", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%d-byte body (chunked %v): status %d, want %d; body %.200s", tc.size, chunked, resp.StatusCode, tc.status, got)
			}
		}
	}
}

// TestAppendSlash: a GET or HEAD that lacks only the trailing slash is redirected to the route,
// with its query, as the demo's Django did; nothing else is.
func TestAppendSlash(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	for _, tc := range []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/api/v1", 308, "/api/v1/"},
		{"HEAD", "/api/v1", 308, "/api/v1/"},
		{"GET", "/api/v1/account/management/7", 308, "/api/v1/account/management/7/"},
		{"GET", "/api/v1/account/management?limit=2&offset=4", 308, "/api/v1/account/management/?limit=2&offset=4"},
		{"GET", "/api/v1/swagger/ui", 308, "/api/v1/swagger/ui/"},
		{"GET", "/api/v1/", 401, ""},
		{"GET", "/healthz", 200, ""},
		{"GET", "/api/v1/nope", 404, ""},
		{"GET", "//api/v1", 404, ""},
		{"POST", "/api/v1/auth/token", 404, ""}, // a redirect would lose the body
		{"DELETE", "/api/v1/account/management/7/delete", 404, ""},
	} {
		resp, _ := rawGet(t, http.DefaultClient, tc.method, e.url+tc.path)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s %s: %d Location %q, want %d %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
		}
	}
}

// TestSecurityHeaders: every response forbids what JSON never needs; the Swagger UI page allows
// its own scripts and styles, inline ones only by hash; HSTS comes over HTTPS only.
func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	resp, _ := rawGet(t, http.DefaultClient, "GET", e.url+"/api/v1/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none';") {
		t.Errorf("API response CSP %q, want default-src 'none'", csp)
	}
	if v := resp.Header.Get("Strict-Transport-Security"); v != "" {
		t.Errorf("HSTS over plain HTTP: %q", v)
	}

	resp, page := rawGet(t, http.DefaultClient, "GET", e.url+"/api/v1/swagger/ui/")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(page, "swagger-ui") {
		t.Fatalf("Swagger UI: %d", resp.StatusCode)
	}
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	if directives["default-src"] != "'none'" || directives["frame-ancestors"] != "'none'" {
		t.Errorf("Swagger UI CSP %q: want default-src and frame-ancestors 'none'", csp)
	}
	for directive, tag := range map[string]string{"script-src": "script", "style-src": "style"} {
		allowed := directives[directive]
		if strings.Contains(allowed, "unsafe") || strings.Contains(allowed, "*") {
			t.Errorf("%s %q is not strict", directive, allowed)
		}
		blocks := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
		if len(blocks) == 0 {
			t.Errorf("no inline <%s> on the page: the test no longer checks hashes", tag)
		}
		for _, b := range blocks {
			sum := sha256.Sum256([]byte(b[1]))
			if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(allowed, want) {
				t.Errorf("%s %q lacks %s for an inline <%s>", directive, allowed, want, tag)
			}
		}
	}

	tlsServer := httptest.NewTLSServer(e.handler)
	defer tlsServer.Close()
	for _, path := range []string{"/healthz", "/api/v1/", "/api/v1/swagger/ui/", "/api/v1/nope/"} {
		resp, _ := rawGet(t, tlsServer.Client(), "GET", tlsServer.URL+path)
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("HTTPS %s: Strict-Transport-Security %q", path, got)
		}
	}
}

// TestCredentialedResponsesAreNotCached: every API path answers no-store, with credentials or
// without (a 401 too), and so does any response to a request with credentials; the public
// documents a cache may keep vary by Authorization, so that no caller gets another's.
func TestCredentialedResponsesAreNotCached(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	root := e.mustUser(t, "root", superRole)
	pair := e.mustLogin(t, "root")
	auth := "Bearer " + pair.Access
	id, sid := strconv.FormatInt(root.ID, 10), sid(t, pair.Access)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/", ""},
		{"GET", "/api/v1/auth/sessions/", ""},
		{"GET", "/api/v1/account/", ""},
		{"GET", "/api/v1/account/management/", ""},
		{"GET", "/api/v1/account/management/" + id + "/", ""},
		{"GET", "/api/v1/account/management/" + id + "/sessions/", ""},
		{"GET", "/api/v1/keys/", ""},
		{"GET", "/api/v1/audit/", ""},
		{"GET", "/api/v1/account/management/999999/", ""},
		{"PATCH", "/api/v1/account/management/" + id + "/update/", `{"first_name": "Rosa"}`},
		{"POST", "/api/v1/account/management/create/", `{"username": "x"}`},
		{"POST", "/api/v1/auth/token/verify/", `{"token": "` + pair.Access + `"}`},
		{"DELETE", "/api/v1/auth/sessions/NOPE/", ""},
		{"GET", "/api/v1/account/management/" + id + "/sessions/" + sid + "/", ""},
		{"GET", "/api/v1/no-such-path/", ""},
		{"GET", "/healthz", ""}, // not the API's, but asked with credentials
		{"GET", "/readyz", ""},
	} {
		for _, creds := range []string{auth, ""} {
			var headers []string
			if creds != "" {
				headers = []string{"Authorization", creds}
			} else if !strings.HasPrefix(tc.path, "/api/v1/") {
				continue // public without credentials
			}
			r, _ := e.do(t, tc.method, tc.path, "application/json", tc.body, headers...)
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s %s (credentials %t): %d, Cache-Control %q, want no-store", tc.method, tc.path, creds != "", r.StatusCode, got)
			}
		}
	}
	for _, path := range []string{"/.well-known/jwks.json", "/api/v1/swagger/ui/", "/admin/"} {
		for _, creds := range []string{auth, ""} {
			r, _ := e.do(t, "GET", path, "", "", "Authorization", creds)
			if got := r.Header.Values("Vary"); !slices.Contains(got, "Authorization") {
				t.Errorf("GET %s (credentials %t): Vary %q, want Authorization", path, creds != "", got)
			}
		}
	}
}
