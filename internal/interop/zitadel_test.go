package interop_test

// zitadel/oidc's resource-server client (and x/oauth2's clientcredentials) against a running
// authapi (the app assembly serve uses, over HTTP), configured with its issuer URL and an API
// client's credentials: the client credentials grant, introspection and revocation.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

// running is an authapi serving over HTTP at url, its issuer that URL.
type running struct {
	url   string
	store *store.Store
}

func startForZitadel(t *testing.T, backend string) running {
	t.Helper()
	var handler atomic.Pointer[http.Handler]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	ctx := context.Background()
	a, err := app.Start(ctx, ctx, app.Config{
		DSN: storetest.DSN(t, backend), Server: server.Config{}, Token: token.Config{Issuer: ts.URL}, Keys: keyring.Options{Retention: time.Hour},
		Hasher: password.NewHasher(password.FastParams(), password.Limit{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	var h http.Handler = a.Server
	handler.Store(&h)
	return running{url: ts.URL, store: a.Store}
}

// login creates user name and logs in over HTTP, returning the access and refresh tokens.
func (r running) login(t *testing.T, name string) (access, refresh string) {
	t.Helper()
	hash, err := password.NewHasher(password.FastParams(), password.Limit{}).Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.CreateUser(context.Background(), &store.User{Username: name, PasswordHash: hash, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(r.url+"/api/v1/auth/token/", "application/json",
		strings.NewReader(`{"username":"`+name+`","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pair struct{ Access, Refresh string }
	if err := json.NewDecoder(resp.Body).Decode(&pair); err != nil || pair.Access == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return pair.Access, pair.Refresh
}

// newClient registers an API client as the CLI does.
func (r running) newClient(t *testing.T, scopes ...string) clients.WithSecret {
	t.Helper()
	c, err := clients.New(clients.Config{}, r.store, nil).Create(context.Background(), audit.CLI("test"), "zitadel", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// resourceServer is zitadel's resource-server client for c: configured from discovery when
// authapi publishes it, else from the endpoints' URLs.
func (r running) resourceServer(t *testing.T, id, secret string) rs.ResourceServer {
	t.Helper()
	var opts []rs.Option
	if resp, err := http.Get(r.url + "/.well-known/openid-configuration"); err != nil || resp.StatusCode != http.StatusOK {
		opts = append(opts, rs.WithStaticEndpoints(r.url+"/oauth/token", r.url+"/oauth/introspect"))
	} else {
		resp.Body.Close()
		t.Log("configured by discovery")
	}
	srv, err := rs.NewResourceServerClientCredentials(context.Background(), r.url, id, secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// revoker is the RevokeCaller of zitadel's client for authapi's revocation endpoint.
type revoker struct{ url string }

func (r revoker) GetRevokeEndpoint() string { return r.url + "/oauth/revoke" }
func (revoker) HttpClient() *http.Client    { return http.DefaultClient }

// TestZitadelResourceServer: zitadel/oidc's resource-server client introspects authapi's
// access, refresh and client tokens, sees a revoked (through zitadel's revocation call) or
// foreign token as inactive, and a wrong secret fails; x/oauth2's clientcredentials gets the
// client token.
func TestZitadelResourceServer(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a := startForZitadel(t, backend)
			c := a.newClient(t, clients.ScopeIntrospect, clients.ScopeRevoke)
			srv := a.resourceServer(t, c.Client.ID, c.Secret)
			access, refresh := a.login(t, "alice")

			got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, access)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Active || got.Username != "alice" || got.Subject == "" || got.Issuer != a.url || got.ClientID != "authapi" ||
				got.TokenType != "Bearer" || got.Expiration.AsTime().IsZero() || got.JWTID == "" || got.AuthTime.AsTime().IsZero() ||
				len(got.AuthenticationMethodsReferences) != 1 || got.Claims["sid"] == nil || got.Claims["user_id"] == nil {
				t.Errorf("access token: %+v (claims %v)", got, got.Claims)
			}
			if got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, refresh); err != nil || !got.Active || got.Claims["token_use"] != "refresh_token" {
				t.Errorf("refresh token: %+v, %v", got, err)
			}

			cc := clientcredentials.Config{ClientID: c.Client.ID, ClientSecret: c.Secret, TokenURL: srv.TokenEndpoint(),
				Scopes: []string{"introspect"}, AuthStyle: oauth2.AuthStyleInHeader}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err = rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, tok.AccessToken)
			if err != nil || !got.Active || got.ClientID != c.Client.ID || strings.Join(got.Scope, " ") != "introspect" ||
				len(got.Audience) != 1 || got.Audience[0] != a.url {
				t.Errorf("client token: %+v, %v", got, err)
			}
			other := a.newClient(t, clients.ScopeIntrospect)
			otherTok, err := (&clientcredentials.Config{ClientID: other.Client.ID, ClientSecret: other.Secret, TokenURL: srv.TokenEndpoint(),
				AuthStyle: oauth2.AuthStyleInParams}).Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, otherTok.AccessToken); err != nil || got.Active {
				t.Errorf("another client's token: %+v, %v", got, err)
			}

			// Revoked through zitadel's revocation call, as the public first-party client.
			if err := client.CallRevokeEndpoint(ctx, client.RevokeRequest{Token: refresh, TokenTypeHint: "refresh_token", ClientID: "authapi"}, nil, revoker{a.url}); err != nil {
				t.Fatal(err)
			}
			for name, raw := range map[string]string{"revoked access": access, "revoked refresh": refresh, "garbage": "x.y.z"} {
				if got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, raw); err != nil || got.Active {
					t.Errorf("%s: %+v, %v", name, got, err)
				}
			}
			// And as a confidential client with scope revoke (Basic).
			access2, _ := a.login(t, "bob")
			if err := client.CallRevokeEndpoint(ctx, client.RevokeRequest{Token: access2}, httphelper.AuthorizeBasic(c.Client.ID, c.Secret), revoker{a.url}); err != nil {
				t.Fatal(err)
			}
			if got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, access2); err != nil || got.Active {
				t.Errorf("revoked by a client: %+v, %v", got, err)
			}

			bad := a.resourceServer(t, c.Client.ID, "wrong")
			if _, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, bad, access); err == nil {
				t.Error("a wrong secret introspected")
			}
		})
	}
}
