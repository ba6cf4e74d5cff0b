package verifier

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	e := newEnv(t, true, func(c *Config) { c.OnStale = Refuse })
	tok := e.live("42", "s1")
	h := e.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			t.Error("no claims in the handler's context")
		}
		_, _ = w.Write([]byte(c.Subject + "/" + c.SessionID))
	}))
	do := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	check := func(name string, w *httptest.ResponseRecorder, status int, code, challenge string) {
		t.Helper()
		if w.Code != status {
			t.Fatalf("%s: status %d, want %d (%s)", name, w.Code, status, w.Body)
		}
		if !strings.Contains(w.Header().Get("WWW-Authenticate"), challenge) {
			t.Fatalf("%s: WWW-Authenticate %q, want %q in it", name, w.Header().Get("WWW-Authenticate"), challenge)
		}
		if code == "" {
			return
		}
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != code {
			t.Fatalf("%s: body %s, want error %s", name, w.Body, code)
		}
	}
	if w := do("Bearer " + tok); w.Code != 200 || w.Body.String() != "42/s1" {
		t.Fatalf("valid: %d %s", w.Code, w.Body)
	}
	if w := do("bearer  " + tok); w.Code != 200 {
		t.Fatalf("lower-case scheme: %d %s", w.Code, w.Body)
	}
	check("no token", do(""), 401, "invalid_request", `Bearer realm="api"`)
	check("basic", do("Basic eDp5"), 401, "invalid_request", `Bearer`)
	check("garbage", do("Bearer x.y.z"), 401, "invalid_token", `error="invalid_token"`)
	e.iss.emit(SessionRevoked, "42", "s1")
	e.applied(1)
	check("revoked", do("Bearer "+tok), 401, "invalid_token", `error="invalid_token"`)
	e.iss.setDown(true)
	e.clock.Add(DefaultStaleAfter + 1)
	w := do("Bearer " + e.iss.accessToken("42", "s2", e.clock.Now()))
	check("stale", w, 503, "temporarily_unavailable", "")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("stale: no Retry-After")
	}
}
