package verifier

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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
)

// authapi is a real authapi serving at URL, which is also its issuer.
type authapi struct {
	URL  string
	api  *client.ClientWithResponses
	stop func() // stops serving
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
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ts.CloseClientConnections()
			ts.Close()
			_ = a.Close()
		})
	}
	t.Cleanup(stop)
	ts.Config.Handler = a.Server
	ts.Start()
	api, err := client.NewClientWithResponses(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &authapi{URL: issuer, api: api, stop: stop}
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
			v, err := New(ctx, Config{Issuer: s.URL, Audience: []string{s.URL}})
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
			if _, err := v.Verify(ctx, pair.Refresh); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refresh token: err = %v, want ErrInvalidToken", err)
			}
			other, err := New(ctx, Config{Issuer: s.URL, Audience: []string{"https://another-api.example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.Verify(ctx, pair.Access); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("another audience: err = %v, want ErrInvalidToken", err)
			}
			// The middleware in front of a handler, as a resource server runs it.
			rs := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := ClaimsFromContext(r.Context())
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

// bearer is a request editor sending an access token.
func bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// mustAPIClient registers an API client with the scopes the verifier needs.
func (s *authapi) mustAPIClient(t *testing.T, name string) (id, secret string) {
	t.Helper()
	admin := s.login(t)
	scopes := []client.ClientScope{client.ScopeIntrospect, client.ScopeSSFRead, client.ScopeSSFManage}
	r, err := s.api.CreateClientWithResponse(context.Background(), client.APIClientCreate{Name: name, Scopes: &scopes}, bearer(admin.Access))
	if err != nil || r.JSON201 == nil {
		t.Fatalf("create client: %v %s", err, r.Body)
	}
	return r.JSON201.Client.ClientId, r.JSON201.ClientSecret
}

// countingTransport counts requests by path.
type countingTransport struct {
	mu     sync.Mutex
	byPath map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.byPath[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPath[path]
}

// Against a real authapi: the verifier creates its stream, confirms a token issued before the
// stream by introspection once, refuses a logged-out session's token once the event arrives
// (and logs the delay), and fails closed when authapi stops.
func TestRealAuthapiStream(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := startAuthapi(t, backend)
			ctx := context.Background()
			id, secret := s.mustAPIClient(t, "orders-api")
			before := s.login(t) // issued before the verifier's stream exists

			// Real time, moved ahead when the test says: authapi's tokens carry real times.
			var ahead atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			var revokedAt atomic.Int64
			events := make(chan Event, 16)
			polls := make(chan error, 1)
			transport := &countingTransport{byPath: map[string]int{}}
			v, err := newVerifier(ctx, Config{
				Issuer: s.URL, Audience: []string{s.URL}, ClientID: id, ClientSecret: secret, StreamName: "real-" + backend,
				Leeway: time.Minute, Now: now, HTTPClient: &http.Client{Transport: transport},
				OnEvent: func(e Event) { events <- e },
			}, func(st *stream) {
				st.afterPoll = func(err error) {
					select {
					case polls <- err:
					default:
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			deadline := time.After(20 * time.Second) // a safety net only
			waitFor := func(what string, ok func() bool) {
				t.Helper()
				for !ok() {
					select {
					case <-polls:
					case <-deadline:
						t.Fatalf("%s: %+v", what, v.Health())
					}
				}
			}
			waitFor("stream heard from", func() bool { h := v.Health(); return !h.Stale && h.StreamID != "" })

			// Tokens issued before the stream began (and up to Leeway, a minute here, after) are confirmed by
			// introspection, once each.
			pair := s.login(t)
			for _, tok := range []string{before.Access, before.Access, pair.Access, pair.Access} {
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("token from before the stream: %v", err)
				}
			}
			if n := transport.count("/oauth/introspect"); n != 2 {
				t.Fatalf("%d introspections of two tokens from before the stream, want 2", n)
			}
			claims, _ := v.Verify(ctx, pair.Access)

			revokedAt.Store(time.Now().UnixNano())
			if r, err := s.api.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh}, bearer(pair.Access)); err != nil || r.StatusCode() >= 300 {
				t.Fatalf("logout: %v %d %s", err, r.StatusCode(), r.Body)
			}
			for {
				var e Event
				select {
				case e = <-events:
				case <-deadline:
					t.Fatalf("no session-revoked event for %s: %+v", claims.SessionID, v.Health())
				}
				if e.Type == SessionRevoked && e.SessionID == claims.SessionID {
					break
				}
			}
			t.Logf("revocation to refusal: %v", time.Duration(time.Now().UnixNano()-revokedAt.Load()))
			if _, err := v.Verify(ctx, pair.Access); !errors.Is(err, ErrRevoked) {
				t.Fatalf("after logout: err = %v, want ErrRevoked", err)
			}
			if n := transport.count("/oauth/introspect"); n != 2 {
				t.Fatalf("%d introspections, want still 2: the revocation came through the stream", n)
			}
			other := s.login(t)
			if _, err := v.Verify(ctx, other.Access); err != nil {
				t.Fatalf("another session: %v", err)
			}

			// authapi stops: past StaleAfter since the last answered poll, nothing is trusted.
			s.stop()
			ahead.Add(int64(DefaultStaleAfter + time.Millisecond))
			if _, err := v.Verify(ctx, other.Access); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("authapi stopped, past StaleAfter: err = %v, want ErrUnavailable", err)
			}
		})
	}
}
