package server_test

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// TestRevoke: a client with scope revoke, and the public first-party client, end the session
// of an access or refresh token; anything else answers 200 and revokes nothing.
func TestRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.mustAdmin(t)
		revoker := e.mustClient(t, admin, "revoker", client.ScopeRevoke, client.ScopeIntrospect)
		reader := e.mustClient(t, admin, "reader", client.ScopeIntrospect)
		e.mustUser(t, "alice", regular)

		live := func(p client.TokenPair) bool {
			r, err := e.client.GetAccountWithResponse(ctx, bearer(p.Access))
			if err != nil {
				t.Fatal(err)
			}
			return r.StatusCode() == 200
		}
		for _, tc := range []struct {
			name    string
			pick    func(client.TokenPair) string
			headers func() []string
			form    url.Values
		}{
			{"client basic, access token", func(p client.TokenPair) string { return p.Access },
				func() []string { return []string{"Authorization", basicAuth(revoker.id, revoker.secret)} }, nil},
			{"client post, refresh token", func(p client.TokenPair) string { return p.Refresh },
				nil, url.Values{"client_id": {revoker.id}, "client_secret": {revoker.secret}, "token_type_hint": {"refresh_token"}}},
			{"client token, access token", func(p client.TokenPair) string { return p.Access },
				func() []string { return []string{"Authorization", "Bearer " + e.mustClientToken(t, revoker, "revoke")} }, nil},
			{"public client, own refresh token", func(p client.TokenPair) string { return p.Refresh },
				nil, url.Values{"client_id": {"authapi"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := e.mustLogin(t, "alice")
				form := url.Values{"token": {tc.pick(p)}}
				for k, v := range tc.form {
					form[k] = v
				}
				var headers []string
				if tc.headers != nil {
					headers = tc.headers()
				}
				resp, body := e.postForm(t, "/oauth/revoke", form, headers...)
				if resp.StatusCode != 200 || len(body) != 0 {
					t.Fatalf("revoke: %d %s", resp.StatusCode, body)
				}
				if live(p) {
					t.Error("the session still works after revoking its token")
				}
				wantInactive(t, "revoked", e.introspect(t, revoker, p.Access))
				// Again: already revoked, still 200.
				if resp, body := e.postForm(t, "/oauth/revoke", form, headers...); resp.StatusCode != 200 {
					t.Errorf("revoke again: %d %s", resp.StatusCode, body)
				}
			})
		}

		p := e.mustLogin(t, "alice")
		for name, raw := range map[string]string{"garbage": "garbage", "tampered": altered(p.Access)} {
			resp, body := e.postForm(t, "/oauth/revoke", url.Values{"token": {raw}}, "Authorization", basicAuth(revoker.id, revoker.secret))
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", name, resp.StatusCode, body)
			}
		}
		resp, body := e.postForm(t, "/oauth/revoke", url.Values{"token": {p.Access}}, "Authorization", basicAuth(reader.id, reader.secret))
		wantOAuthError(t, "no revoke scope", resp, body, 403, "insufficient_scope")
		resp, body = e.postForm(t, "/oauth/revoke", url.Values{"token": {e.mustClientToken(t, reader, "")}}, "Authorization", basicAuth(revoker.id, revoker.secret))
		wantOAuthError(t, "client token", resp, body, 400, "unsupported_token_type")
		resp, body = e.postForm(t, "/oauth/revoke", url.Values{"token": {p.Access}})
		wantOAuthError(t, "nobody", resp, body, 401, "invalid_client")
		resp, body = e.postForm(t, "/oauth/revoke", url.Values{"token": {p.Access}, "client_id": {"authapi"}, "client_secret": {"x"}})
		wantOAuthError(t, "public client with a secret", resp, body, 401, "invalid_client")
		if !live(p) {
			t.Error("a refused revocation revoked")
		}

		// Audited as token.revoked, naming the client and the session.
		events, err := e.client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Action: &[]client.AuditAction{client.TokenRevoked}}, bearer(admin))
		if err != nil || events.JSON200 == nil {
			t.Fatalf("audit: %v", err)
		}
		var ids []string
		for _, ev := range *events.JSON200 {
			if ev.ClientId != nil && ev.SessionId != nil && ev.TargetId != nil {
				ids = append(ids, *ev.ClientId)
			}
		}
		if len(ids) != 4 || !slices.Contains(ids, "authapi") || !slices.Contains(ids, revoker.id) {
			t.Errorf("token.revoked events name clients %v, want 4 (revoker x3, authapi)", ids)
		}
	})
}

// TestRevokeRacesRefresh: a revocation racing refreshes of the same session leaves nothing
// live: whatever refresh won before the revocation, its tokens die with the session.
func TestRevokeRacesRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.mustAdmin(t)
		revoker := e.mustClient(t, admin, "revoker", client.ScopeRevoke)
		e.mustUser(t, "alice", regular)
		for range 5 {
			p := e.mustLogin(t, "alice")
			var wg sync.WaitGroup
			var mu sync.Mutex
			var issued []string
			for range 4 {
				wg.Go(func() {
					r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: p.Refresh})
					if err == nil && r.JSON200 != nil {
						mu.Lock()
						issued = append(issued, r.JSON200.Access)
						if r.JSON200.Refresh != nil {
							issued = append(issued, *r.JSON200.Refresh)
						}
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				resp, body := e.postForm(t, "/oauth/revoke", url.Values{"token": {p.Access}}, "Authorization", basicAuth(revoker.id, revoker.secret))
				if resp.StatusCode != 200 {
					t.Errorf("revoke: %d %s", resp.StatusCode, body)
				}
			})
			wg.Wait()
			for _, raw := range append(issued, p.Access, p.Refresh) {
				r, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: raw})
				if err != nil {
					t.Fatal(err)
				}
				if r.StatusCode() == 200 {
					t.Fatalf("a token of the revoked session still verifies")
				}
			}
		}
	})
}
