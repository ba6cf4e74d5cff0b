package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// apiClient is a registered API client and its secret.
type apiClient struct{ id, secret string }

// mustAdmin returns the access token of a new superuser.
func (e *testEnv) mustAdmin(t testing.TB) string {
	t.Helper()
	e.mustUser(t, "root", superRole)
	return e.mustLogin(t, "root").Access
}

// mustClient registers a client with scopes through the API, as the superuser admin.
func (e *testEnv) mustClient(t testing.TB, admin, name string, scopes ...client.ClientScope) apiClient {
	t.Helper()
	resp, err := e.client.CreateClientWithResponse(context.Background(), client.APIClientCreate{Name: name, Scopes: &scopes}, bearer(admin))
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON201 == nil {
		t.Fatalf("create client: status %d, body %s", resp.StatusCode(), resp.Body)
	}
	return apiClient{id: resp.JSON201.Client.ClientId, secret: resp.JSON201.ClientSecret}
}

// basicAuth is client_secret_basic for id and secret.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// postForm sends a form to path with headers (name, value pairs).
func (e *testEnv) postForm(t *testing.T, path string, form url.Values, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return e.do(t, http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), headers...)
}

// mustClientToken runs the client credentials grant for c (basic) with scope ("" for all).
func (e *testEnv) mustClientToken(t *testing.T, c apiClient, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, body := e.postForm(t, "/oauth/token", form, "Authorization", basicAuth(c.id, c.secret))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client token: status %d, body %s", resp.StatusCode, body)
	}
	var tok client.OAuthTokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// wantOAuthError checks an OAuth error answer (RFC 6749 5.2).
func wantOAuthError(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, resp.StatusCode, status, body)
	}
	var e client.OAuthError
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: not an OAuth error body: %v; %s", what, err, body)
	}
	if string(e.Error) != code {
		t.Fatalf("%s: error %q, want %q; body %s", what, e.Error, code, body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, got)
	}
}

// introspect asks about raw with the client's secret (basic) and returns the answer as a map.
func (e *testEnv) introspect(t *testing.T, c apiClient, raw string) map[string]any {
	t.Helper()
	resp, body := e.postForm(t, "/oauth/introspect", url.Values{"token": {raw}}, "Authorization", basicAuth(c.id, c.secret))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d, body %s", resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantInactive checks that an introspection answer is {"active":false} and nothing else.
func wantInactive(t *testing.T, what string, got map[string]any) {
	t.Helper()
	if len(got) != 1 || got["active"] != false {
		t.Errorf("%s: introspection %v, want {\"active\":false} alone", what, got)
	}
}

func jsonHas(body []byte, s string) bool { return strings.Contains(string(body), s) }

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
