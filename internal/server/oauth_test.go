package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// TestClientCredentialsGrantMatrix: every way a client may or may not authenticate at the
// token endpoint, and what it is answered.
func TestClientCredentialsGrantMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		c := e.mustClient(t, admin, "orders", client.ScopeIntrospect, client.ScopeRevoke)
		off := e.mustClient(t, admin, "off", client.ScopeIntrospect)
		disabled := true
		if r, err := e.client.UpdateClientWithResponse(t.Context(), off.id, client.APIClientUpdate{Disabled: &disabled}, bearer(admin)); err != nil || r.JSON200 == nil {
			t.Fatalf("disable: %v %v", err, r)
		}
		grant := url.Values{"grant_type": {"client_credentials"}}
		with := func(extra ...string) url.Values {
			v := url.Values{"grant_type": {"client_credentials"}}
			for i := 0; i+1 < len(extra); i += 2 {
				v.Set(extra[i], extra[i+1])
			}
			return v
		}
		for _, tc := range []struct {
			name      string
			form      url.Values
			header    string
			status    int
			code      string // "" for success
			challenge string
		}{
			{"basic", grant, basicAuth(c.id, c.secret), 200, "", ""},
			{"post", with("client_id", c.id, "client_secret", c.secret), "", 200, "", ""},
			{"basic with the same client_id in the body", with("client_id", c.id), basicAuth(c.id, c.secret), 200, "", ""},
			{"basic and post at once", with("client_id", c.id, "client_secret", c.secret), basicAuth(c.id, c.secret), 400, "invalid_request", ""},
			{"basic, another client_id in the body", with("client_id", off.id), basicAuth(c.id, c.secret), 400, "invalid_request", ""},
			{"no credentials", grant, "", 401, "invalid_client", "Basic"},
			{"basic wrong secret", grant, basicAuth(c.id, "wrong"), 401, "invalid_client", "Basic"},
			{"post wrong secret", with("client_id", c.id, "client_secret", "wrong"), "", 401, "invalid_client", "Basic"},
			{"post without secret", with("client_id", c.id), "", 401, "invalid_client", "Basic"},
			{"unknown client", grant, basicAuth("ac_nobody", c.secret), 401, "invalid_client", "Basic"},
			{"disabled client", grant, basicAuth(off.id, off.secret), 401, "invalid_client", "Basic"},
			{"malformed basic", grant, "Basic !!!", 401, "invalid_client", "Basic"},
			{"a bearer token is no client authentication here", grant, "Bearer " + admin, 401, "invalid_client", "Basic"},
			{"public client has no grant", with("client_id", "authapi"), "", 401, "invalid_client", "Basic"},
			{"no grant_type", url.Values{}, basicAuth(c.id, c.secret), 400, "invalid_request", ""},
			{"password grant", with("grant_type", "password"), basicAuth(c.id, c.secret), 400, "unsupported_grant_type", ""},
			{"scope not held", with("scope", "ssf.read"), basicAuth(c.id, c.secret), 400, "invalid_scope", ""},
			{"unknown scope", with("scope", "admin"), basicAuth(c.id, c.secret), 400, "invalid_scope", ""},
			{"repeated parameter", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, basicAuth(c.id, c.secret), 400, "invalid_request", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var headers []string
				if tc.header != "" {
					headers = []string{"Authorization", tc.header}
				}
				resp, body := e.postForm(t, "/oauth/token", tc.form, headers...)
				if tc.code != "" {
					wantOAuthError(t, tc.name, resp, body, tc.status, tc.code)
					if got := resp.Header.Get("WWW-Authenticate"); tc.challenge != "" && len(got) < len(tc.challenge) || got[:len(tc.challenge)] != tc.challenge {
						t.Errorf("WWW-Authenticate %q, want %s", got, tc.challenge)
					}
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, body %s", resp.StatusCode, body)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", got)
				}
				var tok client.OAuthTokenResponse
				if err := json.Unmarshal(body, &tok); err != nil {
					t.Fatal(err)
				}
				if tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 || tok.Scope == nil || *tok.Scope != "introspect revoke" {
					t.Errorf("token response %s", body)
				}
			})
		}
	})
}
