package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/authapi/authapi/gen/client"
)

// A scenario is what one connection sends, request after request. next builds the
// connection's next request; observe, when set, reads the answer into the connection's state
// and reports false when that state is lost (a refresh chain broken by an error), after which
// the connection logs in again.
type scenario struct {
	name, what string
	// staff: the connections log in as the staff user; noSession: they do not log in first;
	// writes: every request writes to the database; signals: it runs on the systems with
	// Shared Signals receivers too, to show what they cost.
	staff, noSession, writes, signals bool
	// refresh: a refresh chain per connection (wrk's script carries the chains itself).
	refresh bool
	// many: the requests carry -tokens distinct access tokens in turn (wrk only).
	many bool
	// server is the role of the server the scenario runs against (see roles).
	server  string
	next    func(c *conn) vegeta.Target
	observe func(c *conn, r *vegeta.Result) bool
}

// Each system runs one authapi per role, all on its database: the main one, one that does not
// rotate refresh tokens, and one for the scenarios that hash passwords (and for the setup
// logins), so that argon2id's memory never shows in the other scenarios' RSS.
const (
	roleMain         = "main"
	roleFixedRefresh = "fixed-refresh"
	roleLogin        = "login"
	// roleVerifier is not authapi: it is the reference handler behind the verifier package,
	// a resource server following the main server's revocation stream.
	roleVerifier = "verifier"
)

var roles = []string{roleMain, roleFixedRefresh, roleLogin, roleVerifier} // roleVerifier after roleMain

var allScenarios = []scenario{
	{name: "welcome", what: "GET /api/v1/ with a bearer token",
		next: func(c *conn) vegeta.Target { return c.get("/api/v1/") }},
	{name: "account", what: "GET /api/v1/account/",
		next: func(c *conn) vegeta.Target { return c.get("/api/v1/account/") }},
	{name: "many-tokens", what: "GET /api/v1/ with -tokens distinct access tokens in turn (sessions made in the database, tokens signed with its keys; wrk only)",
		many: true, noSession: true,
		next: func(c *conn) vegeta.Target { return c.get("/api/v1/") }},
	{name: "list-users", what: "GET /api/v1/account/management/?limit=100 as staff, of all seeded users", staff: true,
		next: func(c *conn) vegeta.Target { return c.get("/api/v1/account/management/?limit=100&offset=0") }},
	{name: "verify", what: "POST /api/v1/auth/token/verify/ of the connection's refresh token",
		next: func(c *conn) vegeta.Target {
			return c.post("/api/v1/auth/token/verify/", true, client.TokenVerifyRequest{Token: c.refresh})
		}},
	{name: "verifier", what: "GET / of the reference handler behind the verifier package's Echo middleware (local check, revocation stream followed)", server: roleVerifier,
		next: func(c *conn) vegeta.Target { return c.get("/") }},
	{name: "introspect", what: "POST /oauth/introspect (RFC 7662, client_secret_basic) of the connection's access token",
		next: func(c *conn) vegeta.Target {
			h := http.Header{}
			h.Set("Authorization", c.clientAuth)
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			body := url.Values{"token": {c.access}}.Encode()
			return vegeta.Target{Method: http.MethodPost, URL: c.base + "/oauth/introspect", Header: h, Body: []byte(body)}
		}},
	{name: "refresh-rotate", what: "POST /api/v1/auth/token/refresh/, rotation on, reuse grace 0s, one token chain per connection",
		next: refreshTarget, observe: observeRefresh, refresh: true, writes: true, signals: true},
	{name: "refresh-fixed", what: "POST /api/v1/auth/token/refresh/ on a server with AUTHAPI_ROTATE_REFRESH_TOKENS=false", server: roleFixedRefresh,
		next: refreshTarget, observe: observeRefresh, refresh: true, writes: true},
	{name: "login", what: "POST /api/v1/auth/token/ (argon2id at the default costs), one user per connection", noSession: true, server: roleLogin, writes: true, signals: true,
		next: loginTarget},
	{name: "logout-login", what: "POST /api/v1/auth/logout/ and POST /api/v1/auth/token/ in turn, one user per connection", server: roleLogin, writes: true,
		next: func(c *conn) vegeta.Target {
			if c.access == "" {
				return loginTarget(c)
			}
			return c.post("/api/v1/auth/logout/", true, client.LogoutRequest{Refresh: c.refresh})
		},
		observe: func(c *conn, r *vegeta.Result) bool {
			if c.access != "" { // that was the logout: log in next, whatever the answer
				c.access, c.refresh = "", ""
				return true
			}
			var pair client.TokenPair
			if r.Code == http.StatusOK && json.Unmarshal(r.Body, &pair) == nil {
				c.access, c.refresh = pair.Access, pair.Refresh
			}
			return true // a failed login is tried again
		}},
}

func scenarioNames() []string {
	var names []string
	for _, s := range allScenarios {
		names = append(names, s.name)
	}
	return names
}

// selectScenarios returns the scenarios named in the comma-separated list, all when empty.
func selectScenarios(list string) ([]scenario, error) {
	if strings.TrimSpace(list) == "" {
		// many-tokens only when asked: it makes -tokens sessions and needs a cache sized for them.
		return slices.DeleteFunc(slices.Clone(allScenarios), func(s scenario) bool { return s.many }), nil
	}
	var out []scenario
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(allScenarios, func(s scenario) bool { return s.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q, want some of %s", name, strings.Join(scenarioNames(), ","))
		}
		out = append(out, allScenarios[i])
	}
	return out, nil
}

func refreshTarget(c *conn) vegeta.Target {
	return c.post("/api/v1/auth/token/refresh/", false, client.TokenRefreshRequest{Refresh: c.refresh})
}

func observeRefresh(c *conn, r *vegeta.Result) bool {
	var out client.TokenRefreshResponse
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
		return false
	}
	c.access = out.Access
	if out.Refresh != nil {
		c.refresh = *out.Refresh
	}
	return true
}

func loginTarget(c *conn) vegeta.Target {
	return c.post("/api/v1/auth/token/", false, client.TokenObtainRequest{Username: c.username, Password: loadPassword})
}

// conn is one connection's state: whom it logs in as and its current tokens.
type conn struct {
	base, username  string
	access, refresh string
	clientAuth      string // an API client's Authorization header, for introspect
}

func (c *conn) get(path string) vegeta.Target {
	return vegeta.Target{Method: http.MethodGet, URL: c.base + path, Header: c.header(true)}
}

func (c *conn) post(path string, bearer bool, body any) vegeta.Target {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // the request types above always marshal
	}
	h := c.header(bearer)
	h.Set("Content-Type", "application/json")
	return vegeta.Target{Method: http.MethodPost, URL: c.base + path, Header: h, Body: b}
}

func (c *conn) header(bearer bool) http.Header {
	h := http.Header{}
	if bearer {
		h.Set("Authorization", "Bearer "+c.access)
	}
	return h
}

// login obtains a fresh token pair from the server at base through the generated client.
func (c *conn) login(ctx context.Context, hc *http.Client, base string) error {
	api, err := client.NewClientWithResponses(base, client.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	resp, err := api.ObtainTokenWithResponse(ctx, client.ObtainTokenJSONRequestBody{Username: c.username, Password: loadPassword})
	if err != nil {
		return fmt.Errorf("log in %s: %w", c.username, err)
	}
	if resp.JSON200 == nil {
		return fmt.Errorf("log in %s: %d %s", c.username, resp.StatusCode(), resp.Body)
	}
	c.access, c.refresh = resp.JSON200.Access, resp.JSON200.Refresh
	return nil
}
