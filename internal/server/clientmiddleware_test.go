package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
)

// TestClientTokenOperation: an operation secured by clientCredentials alone (as the SSF
// endpoints are) takes only a live client token with its scope, and finds the client in the
// request's context; refusals are RFC 6750 answers.
func TestClientTokenOperation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		server.AddClientTokenRoute(e.handler.(*server.Server), "/test/ssf-read", "ssf.read")
		admin := e.mustAdmin(t)
		reader := e.mustClient(t, admin, "reader", client.ScopeSSFRead)
		other := e.mustClient(t, admin, "other", client.ScopeIntrospect)
		e.mustUser(t, "alice", regular)
		get := func(authz string) (int, string, http.Header) {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/test/ssf-read", nil)
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), resp.Header
		}
		tok := e.mustClientToken(t, reader, "")
		if status, body, _ := get("Bearer " + tok); status != 200 || body != reader.id {
			t.Errorf("with scope: %d %s", status, body)
		}
		for _, tc := range []struct {
			name, authz, error, challenge string
			status                        int
		}{
			{"no credentials", "", "invalid_token", `Bearer realm="authapi"`, 401},
			{"a user's access token", "Bearer " + e.mustLogin(t, "alice").Access, "invalid_token", `error="invalid_token"`, 401},
			{"a secret", basicAuth(reader.id, reader.secret), "invalid_token", `Bearer realm="authapi"`, 401},
			{"garbage", "Bearer x.y.z", "invalid_token", `error="invalid_token"`, 401},
			{"without the scope", "Bearer " + e.mustClientToken(t, other, ""), "insufficient_scope", `scope="ssf.read"`, 403},
		} {
			status, body, h := get(tc.authz)
			if status != tc.status || !strings.Contains(body, `"error":"`+tc.error+`"`) || !strings.Contains(h.Get("WWW-Authenticate"), tc.challenge) {
				t.Errorf("%s: %d %s (WWW-Authenticate %q), want %d %s with %s", tc.name, status, body, h.Get("WWW-Authenticate"), tc.status, tc.error, tc.challenge)
			}
		}
	})
}
