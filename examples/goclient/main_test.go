package main

import (
	"context"
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
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
)

// TestExampleRefreshesExpiredAccessToken runs the example against a real server and lets the
// access token expire between calls: the session refreshes and the call succeeds.
func TestExampleRefreshesExpiredAccessToken(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	hasher := password.NewHasher(password.FastParams(), password.Limit{})
	a, err := app.Start(ctx, ctx, app.Config{
		DSN:    storetest.DSN(t, "sqlite"),
		Server: server.Config{Now: clk.Now, RotateRefreshTokens: true, AccessTokenLifetime: time.Minute},
		Token:  token.Config{Issuer: "authapi"}, Keys: keyring.Options{Now: clk.Now, Retention: time.Hour},
		Cache: authcache.Config{Now: clk.Now}, Hasher: hasher,
		Init: func(ctx context.Context, st *store.Store) error {
			_, err := users.New(st, hasher, users.Config{}).CreateSuperuser(ctx, users.NewUser{
				Username: "admin", FirstName: "Ada", LastName: "Admin", Email: "admin@example.com", Password: "super_secret_password",
			})
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := a.Server
	ts := httptest.NewServer(srv)
	defer ts.Close()

	if err := run(ctx, ts.URL, "admin", "super_secret_password"); err != nil {
		t.Fatalf("run: %v", err)
	}

	api, _ := client.NewClientWithResponses(ts.URL)
	login, err := api.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "admin", Password: "super_secret_password"})
	if err != nil || login.JSON200 == nil {
		t.Fatalf("login: %v", err)
	}
	s := &session{api: api, pair: *login.JSON200}
	clk.Add(2 * time.Minute) // the access token has expired
	calls := 0
	err = s.call(ctx, func(auth client.RequestEditorFn) (int, error) {
		calls++
		r, err := api.GetAccountWithResponse(ctx, auth)
		if err != nil {
			return 0, err
		}
		return r.StatusCode(), nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("call after expiry: %v after %d calls, want success on the second", err, calls)
	}
	if s.pair.Refresh == login.JSON200.Refresh || s.pair.Access == login.JSON200.Access {
		t.Error("the session kept the old tokens after refreshing")
	}
}
