package verifier

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAssurance: the level and age checks, and RFC 9470's refusal by RequireAssurance.
func TestAssurance(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	aal2 := Assurance{ACR: "aal2", MaxAge: 10 * time.Minute, Now: clock}
	for _, tc := range []struct {
		name string
		c    Claims
		a    Assurance
		want bool
	}{
		{"aal2 recent", Claims{ACR: "aal2", AuthTime: now.Add(-time.Minute)}, aal2, true},
		{"aal2 at the limit", Claims{ACR: "aal2", AuthTime: now.Add(-10 * time.Minute)}, aal2, true},
		{"aal2 too old", Claims{ACR: "aal2", AuthTime: now.Add(-10*time.Minute - time.Second)}, aal2, false},
		{"aal1 recent", Claims{ACR: "aal1", AuthTime: now}, aal2, false},
		{"no acr", Claims{AuthTime: now}, aal2, false},
		{"no auth_time", Claims{ACR: "aal2"}, aal2, false},
		{"aal3 meets aal2", Claims{ACR: "aal3", AuthTime: now}, aal2, true},
		{"level only", Claims{ACR: "aal2"}, AAL2(0), true},
		{"age only", Claims{ACR: "aal1", AuthTime: now.Add(-time.Minute)}, Assurance{MaxAge: 2 * time.Minute, Now: clock}, true},
		{"other levels meet only themselves", Claims{ACR: "gold", AuthTime: now}, Assurance{ACR: "aal1"}, false},
	} {
		if got := tc.c.Satisfies(tc.a); got != tc.want {
			t.Errorf("%s: Satisfies %v, want %v", tc.name, got, tc.want)
		}
	}

	h := RequireAssurance(aal2, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	do := func(c *Claims) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if c != nil {
			r = r.WithContext(WithClaims(r.Context(), c))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do(&Claims{ACR: "aal2", AuthTime: now}); w.Code != 200 || w.Body.String() != "ok" {
		t.Fatalf("aal2: %d %s", w.Code, w.Body)
	}
	w := do(&Claims{ACR: "aal1", AuthTime: now})
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != 401 || err != nil || body["error"] != "insufficient_user_authentication" {
		t.Fatalf("aal1: %d %s", w.Code, w.Body)
	}
	h2 := w.Header().Get("WWW-Authenticate")
	for _, want := range []string{`Bearer `, `error="insufficient_user_authentication"`, `error_description="`, `acr_values="aal2"`, `max_age=600`} {
		if !strings.Contains(h2, want) {
			t.Errorf("WWW-Authenticate %q lacks %s", h2, want)
		}
	}
	if w := do(nil); w.Code != 401 || !strings.Contains(w.Body.String(), "invalid_request") {
		t.Fatalf("without Middleware's claims: %d %s", w.Code, w.Body)
	}
}
