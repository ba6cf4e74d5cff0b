package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// TestIntrospectActive: live tokens of every kind, asked with the secret (basic, post) and
// with a client token, answer their claims.
func TestIntrospectActive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		u := e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")

		got := e.introspect(t, rs, pair.Access)
		want := map[string]any{"active": true, "token_type": "Bearer", "token_use": "access_token", "client_id": "authapi",
			"username": "alice", "sub": strconv.FormatInt(u.ID, 10), "user_id": float64(u.ID), "iss": testIssuer, "aud": testIssuer}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("access: %s = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
		for _, k := range []string{"exp", "iat", "jti", "sid", "auth_time", "amr"} {
			if got[k] == nil {
				t.Errorf("access: no %s in %v", k, got)
			}
		}
		if got := e.introspect(t, rs, pair.Refresh); got["active"] != true || got["token_use"] != "refresh_token" || got["username"] != "alice" {
			t.Errorf("refresh: %v", got)
		}
		own := e.mustClientToken(t, rs, "")
		got = e.introspect(t, rs, own)
		if got["active"] != true || got["token_use"] != "client_token" || got["client_id"] != rs.id || got["scope"] != "introspect" || got["aud"] != testIssuer || got["username"] != nil {
			t.Errorf("own client token: %v", got)
		}

		// The same with client_secret_post and with a client token.
		resp, body := e.postForm(t, "/oauth/introspect", url.Values{"token": {pair.Access}, "client_id": {rs.id}, "client_secret": {rs.secret}})
		if resp.StatusCode != 200 || !jsonHas(body, `"active":true`) {
			t.Errorf("post: %d %s", resp.StatusCode, body)
		}
		resp, body = e.postForm(t, "/oauth/introspect", url.Values{"token": {pair.Access}}, "Authorization", "Bearer "+own)
		if resp.StatusCode != 200 || !jsonHas(body, `"active":true`) {
			t.Errorf("bearer: %d %s", resp.StatusCode, body)
		}
	})
}

// TestIntrospectDead: every kind of dead token answers {"active":false} and nothing else.
func TestIntrospectDead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		other := e.mustClient(t, admin, "other", client.ScopeIntrospect)
		e.mustUser(t, "alice", regular)
		bob := e.mustUser(t, "bob", regular)
		carol := e.mustUser(t, "carol", regular)

		loggedOut := e.mustLogin(t, "alice")
		if r, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: loggedOut.Refresh}, bearer(loggedOut.Access)); err != nil || r.StatusCode() >= 300 {
			t.Fatalf("logout: %v %v", err, r.StatusCode())
		}
		rotated := e.mustLogin(t, "alice")
		if r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: rotated.Refresh}); err != nil || r.JSON200 == nil {
			t.Fatalf("refresh: %v", err)
		}
		inactive := e.mustLogin(t, "bob")
		if _, err := e.store.UpdateUser(ctx, bob.ID, deactivate, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		deleted := e.mustLogin(t, "carol")
		if err := e.store.DeleteUser(ctx, carol.ID); err != nil {
			t.Fatal(err)
		}
		otherToken := e.mustClientToken(t, other, "")
		expiring := e.mustLogin(t, "alice")
		expiringClient := e.mustClientToken(t, rs, "")

		cases := map[string]string{
			"logged-out access":          loggedOut.Access,
			"logged-out refresh":         loggedOut.Refresh,
			"retired refresh (rotated)":  rotated.Refresh,
			"inactive user's access":     inactive.Access,
			"deleted user's access":      deleted.Access,
			"another client's token":     otherToken,
			"malformed":                  "not-a-token",
			"tampered":                   altered(loggedOut.Access),
			"empty-ish":                  "a.b.c",
			"unknown kid (other issuer)": "eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUiLCJ0eXAiOiJKV1QifQ.e30.AAAA",
		}
		for name, raw := range cases {
			wantInactive(t, name, e.introspect(t, rs, raw))
		}
		e.clock.Add(2 * refreshLifetime)
		wantInactive(t, "expired access", e.introspect(t, rs, expiring.Access))
		wantInactive(t, "expired refresh", e.introspect(t, rs, expiring.Refresh))
		wantInactive(t, "expired client token", e.introspect(t, rs, expiringClient))
	})
}

// TestIntrospectRefusals: the caller must be a client with scope introspect.
func TestIntrospectRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		revoker := e.mustClient(t, admin, "revoker", client.ScopeRevoke)
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		form := url.Values{"token": {pair.Access}}

		resp, body := e.postForm(t, "/oauth/introspect", form)
		wantOAuthError(t, "no credentials", resp, body, 401, "invalid_client")
		resp, body = e.postForm(t, "/oauth/introspect", form, "Authorization", "Bearer "+pair.Access)
		wantOAuthError(t, "a user's token", resp, body, 401, "invalid_token")
		resp, body = e.postForm(t, "/oauth/introspect", form, "Authorization", basicAuth(revoker.id, revoker.secret))
		wantOAuthError(t, "secret without the scope", resp, body, 403, "insufficient_scope")
		resp, body = e.postForm(t, "/oauth/introspect", form, "Authorization", "Bearer "+e.mustClientToken(t, revoker, ""))
		wantOAuthError(t, "token without the scope", resp, body, 403, "insufficient_scope")
		resp, body = e.postForm(t, "/oauth/introspect", url.Values{"token": {pair.Access}, "client_id": {rs.id}, "client_secret": {rs.secret}},
			"Authorization", "Bearer "+e.mustClientToken(t, rs, ""))
		wantOAuthError(t, "token and secret", resp, body, 400, "invalid_request")
		resp, body = e.postForm(t, "/oauth/introspect", url.Values{}, "Authorization", basicAuth(rs.id, rs.secret))
		wantOAuthError(t, "no token", resp, body, 400, "invalid_request")
		resp, body = e.do(t, http.MethodPost, "/oauth/introspect", "application/json", `{"token":"x"}`, "Authorization", basicAuth(rs.id, rs.secret))
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || !jsonHas(body, `"error":"invalid_request"`) {
			t.Errorf("json body: %d %s", resp.StatusCode, body)
		}
	})
}
