package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// BenchmarkIntrospect is the cost of one introspection of a live access token (from the auth
// cache, as BenchmarkAuthenticatedRequest), by a client with a client token (a verified one is
// cached until it expires) or with its secret (SHA-256); the client itself comes from the
// auth cache's clients. Compare with BenchmarkAuthenticatedRequest in the same run.
func BenchmarkIntrospect(b *testing.B) {
	e := newBenchEnv(b)
	admin := e.mustAdmin(b)
	rs := e.mustClient(b, admin, "rs", client.ScopeIntrospect)
	access := e.login(b, "alice").Access
	for deadline := time.Now().Add(5 * time.Second); e.cache != nil && !e.cache.Fresh() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the cache takes entries once it has read the change log
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(rs.id, rs.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("token: %v", err)
	}
	var tok client.OAuthTokenResponse
	if err := decodeJSON(resp, &tok); err != nil {
		b.Fatal(err)
	}
	body := url.Values{"token": {access}}.Encode()
	for name, authz := range map[string]string{"client_token": "Bearer " + tok.AccessToken, "client_secret_basic": basicAuth(rs.id, rs.secret)} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/introspect", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", authz)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("introspect: %v", err)
				}
				var out map[string]any
				if err := decodeJSON(resp, &out); err != nil || out["active"] != true {
					b.Fatalf("introspect: %v %v", out, err)
				}
			}
		})
	}
}
