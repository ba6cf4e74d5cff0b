package echoverifier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	e.GET("/me", func(c echo.Context) error {
		claims, ok := echoverifier.Claims(c)
		if !ok {
			return echo.ErrInternalServerError
		}
		return c.String(http.StatusOK, claims.Subject)
	})
	now := time.Now()
	tok := key.Sign("at+jwt", map[string]any{"iss": issuer, "aud": "api", "sub": "7", "client_id": "authapi", "jti": "j",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, nil)
	for _, tc := range []struct {
		auth   string
		status int
		body   string
	}{{"Bearer " + tok, 200, "7"}, {"", 401, ""}, {"Bearer " + tok + "x", 401, ""}} {
		r := httptest.NewRequest(http.MethodGet, "/me", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Fatalf("%q: %d %s, want %d %s", tc.auth, w.Code, w.Body, tc.status, tc.body)
		}
	}
}
