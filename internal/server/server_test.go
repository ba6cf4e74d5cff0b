package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
)

// demoPassword is the password the demo's own test suite used.
const demoPassword = "super_secret_password"

// testEnv is a real HTTP server over a private database, and a generated client for it.
type testEnv struct {
	url     string
	handler http.Handler // the server itself, to serve it another way (TLS)
	client  *client.ClientWithResponses
	store   *store.Store
	tokens  *token.Manager
	hasher  *password.Hasher
	clock   *testclock.Clock
	http    client.HttpRequestDoer // checks every response against the spec
	backend string                 // the kind of database: "sqlite" or "postgres"
	dsn     string                 // the database, for another instance on it
	cache   *authcache.Cache       // nil when the test turned it off
	keys    *keyring.Ring
	outbox  *mail.Outbox // delivers the mail outbox when the test runs its Round
}

const (
	accessLifetime  = 15 * time.Minute
	refreshLifetime = time.Hour
	reuseGrace      = 10 * time.Second
)

// forEachBackend runs fn on SQLite and, when AUTHAPI_TEST_POSTGRES_DSN is set, PostgreSQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *testEnv), opts ...envOption) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newTestEnv(t, backend, opts...))
		})
	}
}

// testLimit is the hashing limit of test servers: the default slots, and a wait long enough
// that a loaded machine never turns a test's parallel logins into 503s.
var testLimit = password.Limit{Wait: time.Minute}

// envSettings are what newTestEnv builds from; envOptions change them.
type envSettings struct {
	dsn     string // "" for a new database of the backend
	db      store.Options
	hasher  *password.Hasher // nil for one with FastParams and testLimit
	cache   authcache.Config // its clock is the server's
	noCache bool
	keys    keyring.Options // its clock is the server's, its retention the refresh lifetime
	ssf     ssf.Config      // the Shared Signals transmitter's
	configs []func(*server.Config)
	tokens  []func(*token.Config)
	// urlIssuer makes the server's URL the issuer, as serve's default does; otherwise it is
	// testIssuer, shared by every instance as a fleet behind one public URL shares it.
	urlIssuer bool
	// mail configures the mail flows; its outbox is always Manual (the test runs rounds).
	mail []func(*app.Mail)
}

// testIssuer is the issuer of test servers but for withURLIssuer.
const testIssuer = "http://authapi.test"

// envOption changes one setting of a test environment.
type envOption func(*envSettings)

// withConfig changes the server's Config, after the test defaults are set, in order.
func withConfig(fns ...func(*server.Config)) envOption {
	return func(s *envSettings) { s.configs = append(s.configs, fns...) }
}

// withURLIssuer makes the server's own URL its issuer, so that discovery works.
func withURLIssuer() envOption { return func(s *envSettings) { s.urlIssuer = true } }

// withTokens changes the token configuration, after the test defaults are set (the issuer,
// the previous issuers ["authapi"]), in order.
func withTokens(fns ...func(*token.Config)) envOption {
	return func(s *envSettings) { s.tokens = append(s.tokens, fns...) }
}

// withHasher hashes passwords with h.
func withHasher(h *password.Hasher) envOption { return func(s *envSettings) { s.hasher = h } }

// withCosts hashes passwords with costs (and testLimit).
func withCosts(costs password.Params) envOption {
	return withHasher(password.NewHasher(costs, testLimit))
}

// withDSN serves the database dsn (migrating it if need be) instead of a new one, as one
// instance of several sharing a database does.
func withDSN(dsn string) envOption { return func(s *envSettings) { s.dsn = dsn } }

// withDB sets the store's options.
func withDB(opts store.Options) envOption { return func(s *envSettings) { s.db = opts } }

// withCache sets the auth cache's settings.
func withCache(cfg authcache.Config) envOption { return func(s *envSettings) { s.cache = cfg } }

// withoutCache serves without the auth cache: every request verifies its token and reads the
// database.
func withoutCache() envOption { return func(s *envSettings) { s.noCache = true } }

// withSSF sets the Shared Signals transmitter's settings.
func withSSF(cfg ssf.Config) envOption { return func(s *envSettings) { s.ssf = cfg } }

// withMail changes the mail configuration, in order (the outbox stays manual: the test runs
// e.outbox.Round).
func withMail(fns ...func(*app.Mail)) envOption {
	return func(s *envSettings) { s.mail = append(s.mail, fns...) }
}

// withKeys sets the key ring's options.
func withKeys(opts keyring.Options) envOption { return func(s *envSettings) { s.keys = opts } }

// newTestEnv serves a new Store on a new database of backend with the production defaults
// (rotation on, 10s grace), FastParams hashing, and an auth cache that runs until t ends,
// unless opts change them.
func newTestEnv(t testing.TB, backend string, opts ...envOption) *testEnv {
	t.Helper()
	var set envSettings
	for _, opt := range opts {
		opt(&set)
	}
	dsn, hasher, cacheCfg, keyOpts := set.dsn, set.hasher, set.cache, set.keys
	if dsn == "" {
		dsn = storetest.DSN(t, backend)
	}
	if hasher == nil {
		hasher = password.NewHasher(password.FastParams(), testLimit)
	}
	// Assembled as serve assembles it (app.Start), with the test's clock and settings.
	ctx := context.Background()
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	keyOpts.Now, keyOpts.Retention = clk.Now, refreshLifetime
	cacheCfg.Now = clk.Now
	cfg := server.Config{
		AccessTokenLifetime: accessLifetime, RefreshTokenLifetime: refreshLifetime, Now: clk.Now,
		RotateRefreshTokens: true, RefreshReuseGrace: reuseGrace,
	}
	for _, fn := range set.configs {
		fn(&cfg)
	}
	// Listening first, so that the issuer can be the server's URL.
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	tokenCfg := token.Config{Issuer: testIssuer, PreviousIssuers: []string{"authapi"}}
	if set.urlIssuer {
		tokenCfg.Issuer = "http://" + ts.Listener.Addr().String()
	}
	for _, fn := range set.tokens {
		fn(&tokenCfg)
	}
	mailCfg := app.Mail{}
	for _, fn := range set.mail {
		fn(&mailCfg)
	}
	mailCfg.Manual = true
	a, err := app.Start(ctx, ctx, app.Config{
		DSN: dsn, DB: set.db, Server: cfg, Token: tokenCfg, Keys: keyOpts,
		Cache: cacheCfg, CacheOff: set.noCache, Hasher: hasher, SSF: set.ssf, Mail: mailCfg,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	st, srv, ring, tokens := a.Store, a.Server, a.Keys, a.Keys.Manager()
	ts.Config.Handler = srv
	ts.Start()
	api, err := client.NewClientWithResponses(ts.URL, client.WithHTTPClient(specChecker{t}))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &testEnv{url: ts.URL, handler: srv, client: api, store: st, tokens: tokens, hasher: hasher, clock: clk,
		http: specChecker{t}, backend: backend, dsn: dsn, cache: a.Cache, keys: ring, outbox: a.Outbox}
}

type role int

const (
	regular role = iota
	staffRole
	superRole
)

// mustUser creates an active user with demoPassword directly in the store.
func (e *testEnv) mustUser(t testing.TB, username string, r role) store.User {
	t.Helper()
	hash, err := e.hasher.Hash(context.Background(), demoPassword)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{
		Username: username, FirstName: strings.ToUpper(username[:1]) + username[1:], LastName: "Seed",
		Email: username + "@example.com", PasswordHash: hash, IsActive: true,
		IsStaff: r >= staffRole, IsSuperuser: r == superRole, DateJoined: e.clock.Now(),
	}
	if err := e.store.CreateUser(context.Background(), &u); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// deactivate is a store.UpdateUser change that makes the user inactive.
func deactivate(u *store.User) error { u.IsActive = false; return nil }

// mustLogin logs in through the API and returns the token pair.
func (e *testEnv) mustLogin(t testing.TB, username string) client.TokenPair {
	t.Helper()
	resp, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username, Password: demoPassword})
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON200 == nil {
		t.Fatalf("login %s: status %d, body %s", username, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON200
}

func bearer(access string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+access)
		return nil
	}
}

// wantError checks that a response is the spec's Error body with the given status and code.
func wantError(t *testing.T, what string, gotStatus int, body []byte, wantStatus int, wantCode string) client.Error {
	t.Helper()
	if gotStatus != wantStatus {
		t.Fatalf("%s: status %d, want %d; body %s", what, gotStatus, wantStatus, body)
	}
	var e client.Error
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: body is not the Error schema: %v; body %s", what, err, body)
	}
	if string(e.Code) != wantCode {
		t.Fatalf("%s: code %q, want %q; body %s", what, e.Code, wantCode, body)
	}
	if e.Detail == "" {
		t.Fatalf("%s: empty detail; body %s", what, body)
	}
	return e
}

// do sends a raw request, for inputs the generated client cannot express.
func (e *testEnv) do(t *testing.T, method, path, contentType, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	doer := e.http
	if doer == nil {
		doer = http.DefaultClient
	}
	resp, err := doer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
