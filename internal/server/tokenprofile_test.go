package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/token"
)

// TestAccessTokenProfile: access tokens carry the RFC 9068 header and claims, auth_time stays
// the session's start through refreshes on every refresh path (PostgreSQL's one-statement
// rotation, SQLite's batched rotation, the reuse grace, no rotation), and refresh tokens carry
// typ JWT and no aud.
func TestAccessTokenProfile(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		t.Run(fmt.Sprint("rotate=", rotate), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *testEnv) {
				ctx := context.Background()
				alice := e.mustUser(t, "alice", regular)
				loginAt := e.clock.Now()
				pair := e.mustLogin(t, "alice")
				wantAccess := func(what, raw string, iat time.Time) {
					t.Helper()
					h, c := decodeSegment(t, raw, 0), decodeSegment(t, raw, 1)
					if h["typ"] != "at+jwt" {
						t.Errorf("%s: header typ = %v, want at+jwt", what, h["typ"])
					}
					want := map[string]any{
						"iss": testIssuer, "aud": testIssuer, "sub": fmt.Sprint(alice.ID), "client_id": "authapi",
						"amr": []any{"pwd"}, "acr": "aal1", "auth_time": json.Number(fmt.Sprint(loginAt.Unix())),
						"iat": json.Number(fmt.Sprint(iat.Unix())), "token_type": "access",
					}
					for k, v := range want {
						if !reflect.DeepEqual(c[k], v) {
							t.Errorf("%s: %s = %#v, want %#v", what, k, c[k], v)
						}
					}
					if c["jti"] == nil || c["sid"] == nil || c["exp"] == nil {
						t.Errorf("%s: claims %v lack jti, sid or exp", what, c)
					}
				}
				wantRefresh := func(what, raw string) {
					t.Helper()
					h, c := decodeSegment(t, raw, 0), decodeSegment(t, raw, 1)
					if h["typ"] != "JWT" || c["token_type"] != "refresh" {
						t.Errorf("%s: typ %v, token_type %v, want JWT and refresh", what, h["typ"], c["token_type"])
					}
					for _, k := range []string{"aud", "client_id", "auth_time", "amr"} {
						if v, ok := c[k]; ok {
							t.Errorf("%s: carries %s = %v", what, k, v)
						}
					}
				}
				wantAccess("login", pair.Access, loginAt)
				wantRefresh("login", pair.Refresh)

				e.clock.Add(5 * time.Minute)
				refreshAt := e.clock.Now()
				r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
				mustStatus(t, "refresh", r, err, http.StatusOK)
				wantAccess("refresh", r.JSON200.Access, refreshAt)
				if !rotate {
					if r.JSON200.Refresh != nil {
						t.Fatal("refresh without rotation returned a refresh token")
					}
					return
				}
				wantRefresh("refresh", *r.JSON200.Refresh)

				// The retired token within the grace window: the same pair again, read through
				// the path that loads the session.
				again, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
				mustStatus(t, "refresh within grace", again, err, http.StatusOK)
				wantAccess("refresh within grace", again.JSON200.Access, refreshAt)

				e.clock.Add(5 * time.Minute)
				third, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: *r.JSON200.Refresh})
				mustStatus(t, "second refresh", third, err, http.StatusOK)
				wantAccess("second refresh", third.JSON200.Access, e.clock.Now())
			}, withConfig(func(c *server.Config) { c.RotateRefreshTokens = rotate }))
		})
	}
}

// TestAccessTokenAudiences: --audience sets aud, an array when there are several.
func TestAccessTokenAudiences(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		c := decodeSegment(t, e.mustLogin(t, "alice").Access, 1)
		if want := []any{"https://api-a.example", "https://api-b.example"}; !reflect.DeepEqual(c["aud"], want) {
			t.Errorf("aud = %#v, want %#v", c["aud"], want)
		}
	}, withTokens(func(c *token.Config) { c.Audience = []string{"https://api-a.example", "https://api-b.example"} }))
}

// TestTokenTypesDoNotCross: a refresh token never authenticates a request, and an access token
// never refreshes, whatever the header or the claims say; verify takes either, for what it is.
func TestTokenTypesDoNotCross(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		key := serverKey(t, e)
		access, refresh := claimsOf(t, pair.Access), claimsOf(t, pair.Refresh)
		asAccessHeader := key.header()
		asRefreshHeader := key.headerFor(refresh)

		for _, tc := range []struct {
			name, raw string
		}{
			{"the refresh token", pair.Refresh},
			{"refresh claims under the access header (typ at+jwt)", key.forge(t, asAccessHeader, refresh)},
			{"access claims under the refresh header (typ JWT)", key.forge(t, asRefreshHeader, access)},
		} {
			r, err := e.client.GetAccountWithResponse(ctx, bearer(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, tc.name+" as bearer", r.StatusCode(), r.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
		}
		for _, tc := range []struct {
			name, raw string
		}{
			{"the access token", pair.Access},
			{"access claims under the refresh header (typ JWT)", key.forge(t, asRefreshHeader, access)},
			{"refresh claims under the access header (typ at+jwt)", key.forge(t, asAccessHeader, refresh)},
		} {
			r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: tc.raw})
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, tc.name+" as refresh", r.StatusCode(), r.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
		}
		// Controls: each is accepted for what it is.
		r, err := e.client.GetAccountWithResponse(ctx, bearer(pair.Access))
		mustStatus(t, "access as bearer", r, err, http.StatusOK)
		for _, raw := range []string{pair.Access, pair.Refresh} {
			v, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: raw}, bearer(pair.Access))
			mustStatus(t, "verify", v, err, http.StatusOK)
		}
		for _, raw := range []string{key.forge(t, asRefreshHeader, access), key.forge(t, asAccessHeader, refresh)} {
			v, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: raw}, bearer(pair.Access))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, "verify of a typ/token_type mismatch", v.StatusCode(), v.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
		}
	})
}

// TestPreviousIssuers: tokens of a previous issuer, as authapi signed them before RFC 9068 (iss
// "authapi", typ JWT), are still accepted, access and refresh; no other issuer is, and with
// no previous issuers configured neither is "authapi".
func TestPreviousIssuers(t *testing.T) {
	legacy := func(t *testing.T, e *testEnv, iss string) (access, refresh string) {
		t.Helper()
		pair := e.mustLogin(t, "alice")
		key := serverKey(t, e)
		old := claimsWith(key.header(), "typ", "JWT")
		a := claimsWith(claimsOf(t, pair.Access), "iss", iss, "aud", absent, "client_id", absent, "auth_time", absent, "amr", absent)
		r := claimsWith(claimsOf(t, pair.Refresh), "iss", iss)
		return key.forge(t, old, a), key.forge(t, old, r)
	}
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		access, refresh := legacy(t, e, "authapi")
		r, err := e.client.GetAccountWithResponse(ctx, bearer(access))
		mustStatus(t, "old access token", r, err, http.StatusOK)
		rr, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: refresh})
		mustStatus(t, "old refresh token", rr, err, http.StatusOK)
		if c := claimsOf(t, rr.JSON200.Access); c["iss"] != testIssuer {
			t.Errorf("refreshed access token iss = %v, want the current issuer %s", c["iss"], testIssuer)
		}

		other, _ := legacy(t, e, "https://other.example")
		r, err = e.client.GetAccountWithResponse(ctx, bearer(other))
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "another issuer", r.StatusCode(), r.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
	})
	t.Run("none configured", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, e *testEnv) {
			e.mustUser(t, "alice", regular)
			access, refresh := legacy(t, e, "authapi")
			r, err := e.client.GetAccountWithResponse(ctx, bearer(access))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, "old access token", r.StatusCode(), r.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
			rr, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: refresh})
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, "old refresh token", rr.StatusCode(), rr.Body, http.StatusUnauthorized, string(client.ErrorCodeTokenNotValid))
		}, withTokens(func(c *token.Config) { c.PreviousIssuers = nil }))
	})
}
