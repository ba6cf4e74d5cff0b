package verifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
	"github.com/authapi/authapi/verifier"
)

// authapi is a real authapi serving at URL, which is also its issuer.
type authapi struct {
	URL string
	api *client.ClientWithResponses
}

const adminPassword = "super_secret_password"

func startAuthapi(t *testing.T, backend string) *authapi {
	t.Helper()
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	hasher := password.NewHasher(password.FastParams(), password.Limit{})
	a, err := app.Start(ctx, ctx, app.Config{
		DSN:    storetest.DSN(t, backend),
		Server: server.Config{},
		Token:  token.Config{Issuer: issuer}, Keys: keyring.Options{Retention: time.Hour},
		Cache: authcache.Config{}, Hasher: hasher,
		Init: func(ctx context.Context, st *store.Store) error {
			_, err := users.New(st, hasher, users.Config{}).CreateSuperuser(ctx, users.NewUser{
				Username: "admin", FirstName: "Ada", LastName: "Admin", Email: "admin@example.com", Password: adminPassword,
			})
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ts.Config.Handler = withDiscovery(t, a.Server, issuer)
	ts.Start()
	t.Cleanup(ts.Close)
	api, err := client.NewClientWithResponses(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &authapi{URL: issuer, api: api}
}

// withDiscovery serves authapi, and its RFC 8414 metadata in front of it until authapi serves
// its own (stream T); the test logs which it got.
func withDiscovery(t *testing.T, h http.Handler, issuer string) http.Handler {
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
	if probe.Code == http.StatusOK {
		t.Log("discovery: authapi's own")
		return h
	}
	t.Log("discovery: stand-in (authapi serves none yet)")
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + issuer + `","jwks_uri":"` + issuer + `/.well-known/jwks.json","token_endpoint":"` +
			issuer + `/oauth/token","introspection_endpoint":"` + issuer + `/oauth/introspect"}`))
	})
	return mux
}

func (s *authapi) login(t *testing.T) client.TokenPair {
	t.Helper()
	r, err := s.api.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "admin", Password: adminPassword})
	if err != nil || r.JSON200 == nil {
		t.Fatalf("login: %v %s", err, r.Body)
	}
	return *r.JSON200
}

// The verifier, configured with the issuer URL alone, accepts a real access token and refuses
// a real refresh token and a token for another audience.
func TestRealAuthapiTokens(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := startAuthapi(t, backend)
			ctx := context.Background()
			v, err := verifier.New(ctx, verifier.Config{Issuer: s.URL, Audience: []string{s.URL}})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			pair := s.login(t)
			c, err := v.Verify(ctx, pair.Access)
			if err != nil {
				t.Fatalf("access token: %v", err)
			}
			if c.Subject == "" || c.SessionID == "" || c.ClientID != "authapi" || len(c.AMR) != 1 || c.AMR[0] != "pwd" || c.AuthTime.IsZero() {
				t.Fatalf("claims %+v", c)
			}
			if _, err := v.Verify(ctx, pair.Refresh); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Fatalf("refresh token: err = %v, want ErrInvalidToken", err)
			}
			other, err := verifier.New(ctx, verifier.Config{Issuer: s.URL, Audience: []string{"https://another-api.example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.Verify(ctx, pair.Access); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Fatalf("another audience: err = %v, want ErrInvalidToken", err)
			}
			// The middleware in front of a handler, as a resource server runs it.
			rs := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := verifier.ClaimsFromContext(r.Context())
				_, _ = w.Write([]byte(c.Subject))
			})))
			defer rs.Close()
			req, _ := http.NewRequest(http.MethodGet, rs.URL, nil)
			req.Header.Set("Authorization", "Bearer "+pair.Access)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("resource server: %v %v", err, resp)
			}
			resp.Body.Close()
		})
	}
}
