package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
	"github.com/authapi/authapi/verifier"
)

// TestExampleAgainstAuthapi runs the example's API in front of a real authapi configured as
// `make run` is (the issuer is its URL): a token from a login passes, no token does not.
func TestExampleAgainstAuthapi(t *testing.T) {
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	hasher := password.NewHasher(password.FastParams(), password.Limit{})
	a, err := app.Start(ctx, ctx, app.Config{
		DSN: storetest.DSN(t, "sqlite"), Token: token.Config{Issuer: issuer}, Keys: keyring.Options{Retention: time.Hour}, Hasher: hasher,
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
	ts.Config.Handler = a.Server
	ts.Start()
	defer ts.Close()

	v, err := verifier.New(ctx, verifier.Config{Issuer: issuer, Audience: []string{issuer}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rs := httptest.NewServer(routes(v))
	defer rs.Close()

	api, _ := client.NewClientWithResponses(issuer)
	login, err := api.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "admin", Password: "super_secret_password"})
	if err != nil || login.JSON200 == nil {
		t.Fatalf("login: %v", err)
	}
	get := func(auth string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, rs.URL+"/hello", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, body := get("Bearer " + login.JSON200.Access); status != 200 || body["hello"] == "" || body["client_id"] != "authapi" {
		t.Fatalf("with a token: %d %v", status, body)
	}
	if status, body := get(""); status != 401 || body["error"] != "invalid_request" {
		t.Fatalf("without a token: %d %v", status, body)
	}
}
