package echoverifier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/internal/token/tokentest"
	"github.com/authapi/authapi/verifier"
	"github.com/authapi/authapi/verifier/echoverifier"
)

func TestMiddleware(t *testing.T) {
	key := tokentest.NewKey("k", "EdDSA")
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_, _ = w.Write([]byte(`{"issuer":"` + issuer + `","jwks_uri":"` + issuer + `/jwks"}`))
		case "/jwks":
			_, _ = w.Write(tokentest.JWKS(key))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	v, err := verifier.New(context.Background(), verifier.Config{Issuer: issuer, Audience: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	e := echo.New()
	e.Use(echoverifier.Middleware(v))
	me := func(c echo.Context) error {
		claims, ok := echoverifier.Claims(c)
		if !ok {
			return echo.ErrInternalServerError
		}
		return c.String(http.StatusOK, claims.Subject)
	}
	e.GET("/me", me)
	e.POST("/sensitive", me, echoverifier.RequireAssurance(verifier.AAL2(10*time.Minute)))
	now := time.Now()
	sign := func(extra map[string]any) string {
		claims := map[string]any{"iss": issuer, "aud": "api", "sub": "7", "client_id": "authapi", "jti": "j",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		for k, v := range extra {
			claims[k] = v
		}
		return key.Sign("at+jwt", claims, nil)
	}
	tok := sign(nil)
	recent := sign(map[string]any{"acr": "aal2", "amr": []string{"pwd", "otp", "mfa"}, "auth_time": now.Add(-time.Minute).Unix()})
	old := sign(map[string]any{"acr": "aal2", "amr": []string{"pwd", "otp", "mfa"}, "auth_time": now.Add(-time.Hour).Unix()})
	for _, tc := range []struct {
		method, path, auth string
		status             int
		body               string
	}{
		{http.MethodGet, "/me", "Bearer " + tok, 200, "7"}, {http.MethodGet, "/me", "", 401, ""}, {http.MethodGet, "/me", "Bearer " + tok + "x", 401, ""},
		{http.MethodPost, "/sensitive", "Bearer " + recent, 200, "7"}, {http.MethodPost, "/sensitive", "Bearer " + old, 401, ""},
		{http.MethodPost, "/sensitive", "Bearer " + tok, 401, ""}, {http.MethodPost, "/sensitive", "", 401, ""},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Fatalf("%s %q: %d %s, want %d %s", tc.path, tc.auth, w.Code, w.Body, tc.status, tc.body)
		}
		if tc.path == "/sensitive" && tc.auth != "" && tc.status == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
			t.Errorf("%q: WWW-Authenticate %q", tc.auth, w.Header().Get("WWW-Authenticate"))
		}
	}
}
