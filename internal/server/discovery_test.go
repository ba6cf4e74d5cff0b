package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// TestDiscovery: both discovery paths serve the same metadata, built from the configured
// issuer, public and cacheable; its jwks_uri serves the keys that verify the tokens.
func TestDiscovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		oauth, err := e.client.GetAuthorizationServerMetadataWithResponse(ctx)
		mustStatus(t, "oauth-authorization-server", oauth, err, http.StatusOK)
		oidc, err := e.client.GetOpenIDConfigurationWithResponse(ctx)
		mustStatus(t, "openid-configuration", oidc, err, http.StatusOK)

		issuer := e.url // withURLIssuer: the issuer is the public URL, as serve's default
		secret := []string{"client_secret_basic", "client_secret_post"}
		want := client.AuthorizationServerMetadata{
			Issuer:                            issuer,
			JwksUri:                           issuer + "/.well-known/jwks.json",
			TokenEndpoint:                     issuer + "/oauth/token",
			IntrospectionEndpoint:             issuer + "/oauth/introspect",
			RevocationEndpoint:                issuer + "/oauth/revoke",
			GrantTypesSupported:               []string{"client_credentials"},
			ResponseTypesSupported:            []string{},
			TokenEndpointAuthMethodsSupported: secret,
			IntrospectionEndpointAuthMethodsSupported: secret,
			RevocationEndpointAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "none"},
			ScopesSupported:                           []string{"introspect", "revoke", "ssf.read", "ssf.manage"},
			IdTokenSigningAlgValuesSupported:          []client.SigningAlgorithm{client.EdDSA, client.ES256, client.RS256},
		}
		if !reflect.DeepEqual(*oauth.JSON200, want) {
			t.Errorf("metadata = %+v, want %+v", *oauth.JSON200, want)
		}
		if string(oidc.Body) != string(oauth.Body) {
			t.Errorf("openid-configuration %s differs from oauth-authorization-server %s", oidc.Body, oauth.Body)
		}
		// Only the members above: nothing authapi does not implement.
		var members map[string]any
		if err := json.Unmarshal(oauth.Body, &members); err != nil || len(members) != 12 {
			t.Errorf("%d members (%v): %s, want 12", len(members), err, oauth.Body)
		}
		for _, r := range []*http.Response{oauth.HTTPResponse, oidc.HTTPResponse} {
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=") || strings.Contains(cc, "no-store") {
				t.Errorf("%s Cache-Control = %q, want public with a max-age", r.Request.URL.Path, cc)
			}
		}

		// The keys are where the document says, and verify what a login issues.
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		kid, _ := decodeSegment(t, pair.Access, 0)["kid"].(string)
		resp, body := e.do(t, http.MethodGet, strings.TrimPrefix(want.JwksUri, e.url), "", "")
		if resp.StatusCode != http.StatusOK || kid == "" || !strings.Contains(string(body), `"kid":"`+kid+`"`) {
			t.Errorf("jwks_uri: %d %s, want the key %q", resp.StatusCode, body, kid)
		}
		if iss := claimsOf(t, pair.Access)["iss"]; iss != want.Issuer {
			t.Errorf("token iss %v, metadata issuer %s", iss, want.Issuer)
		}
	}, withURLIssuer())
}
