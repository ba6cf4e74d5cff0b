package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
)

// decodeSegment decodes one base64url segment of a JWT into a map.
func decodeSegment(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

func TestLoginIssuesSignedTokensWithDemoClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")

		jwks, err := e.client.GetJWKSWithResponse(context.Background())
		if err != nil || jwks.JSON200 == nil {
			t.Fatalf("jwks: %v %d", err, jwks.StatusCode())
		}
		if got := jwks.HTTPResponse.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=") {
			t.Errorf("jwks Cache-Control = %q, want a max-age", got)
		}
		var raw map[string]any
		if err := json.Unmarshal(jwks.Body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range raw["keys"].([]any) {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k.(map[string]any)[private]; ok {
					t.Errorf("jwks publishes private member %q", private)
				}
			}
		}

		for _, tc := range []struct {
			raw      string
			typ      string
			lifetime time.Duration
		}{{pair.Access, "access", accessLifetime}, {pair.Refresh, "refresh", refreshLifetime}} {
			h := decodeSegment(t, tc.raw, 0)
			c := decodeSegment(t, tc.raw, 1)
			if h["alg"] != "EdDSA" || h["kid"] == nil {
				t.Errorf("%s header = %v, want alg EdDSA and a kid", tc.typ, h)
			}
			if c["token_type"] != tc.typ {
				t.Errorf("token_type = %v, want %s", c["token_type"], tc.typ)
			}
			if c["user_id"] != json.Number(strconv.FormatInt(alice.ID, 10)) || c["sub"] != strconv.FormatInt(alice.ID, 10) {
				t.Errorf("user_id = %v, sub = %v, want %d", c["user_id"], c["sub"], alice.ID)
			}
			if c["iss"] != testIssuer || c["sid"] == "" || c["sid"] == nil || c["jti"] == nil {
				t.Errorf("claims %v: want iss %s, sid and jti", c, testIssuer)
			}
			exp, _ := c["exp"].(json.Number).Int64()
			iat, _ := c["iat"].(json.Number).Int64()
			if got := time.Duration(exp-iat) * time.Second; got != tc.lifetime {
				t.Errorf("%s lifetime = %v, want %v", tc.typ, got, tc.lifetime)
			}

			// Verify the signature with nothing but the published JWKS and the standard library.
			var pub ed25519.PublicKey
			for _, k := range jwks.JSON200.Keys {
				if k.Kid == h["kid"] && k.X != nil {
					pub, _ = base64.RawURLEncoding.DecodeString(*k.X)
				}
			}
			if pub == nil {
				t.Fatalf("kid %v not in the JWKS", h["kid"])
			}
			parts := strings.Split(tc.raw, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
				t.Errorf("%s token does not verify with the JWKS key", tc.typ)
			}
		}

		acc, err := e.client.GetAccountWithResponse(context.Background(), bearer(pair.Access))
		if err != nil || acc.JSON200 == nil {
			t.Fatalf("account: %v, status %d", err, acc.StatusCode())
		}
		if acc.JSON200.LastLogin == nil || !acc.JSON200.LastLogin.Equal(e.clock.Now()) {
			t.Errorf("last_login = %v, want %v", acc.JSON200.LastLogin, e.clock.Now())
		}
	})
}

func TestLoginRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		eve := e.mustUser(t, "eve", regular)
		if _, err := e.store.UpdateUser(context.Background(), eve.ID, deactivate, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, tc := range []struct{ name, username, password string }{
			{"wrong password", "alice", "wrong_password_123"},
			{"unknown user", "nobody", demoPassword},
			{"inactive user", "eve", demoPassword},
		} {
			resp, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: tc.username, Password: tc.password})
			if err != nil {
				t.Fatal(err)
			}
			got := wantError(t, tc.name, resp.StatusCode(), resp.Body, http.StatusUnauthorized, "authentication_failed")
			if got.Detail != "No active account found with the given credentials" {
				t.Errorf("%s: detail %q", tc.name, got.Detail)
			}
			if h := resp.HTTPResponse.Header.Get("WWW-Authenticate"); h != `Bearer realm="api"` {
				t.Errorf("%s: WWW-Authenticate = %q", tc.name, h)
			}
		}

		resp, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := wantError(t, "missing fields", resp.StatusCode(), resp.Body, http.StatusBadRequest, "invalid")
		if got.Fields == nil || len((*got.Fields)["username"]) == 0 || len((*got.Fields)["password"]) == 0 {
			t.Errorf("missing fields: fields = %v, want username and password", got.Fields)
		}

		r, body := e.do(t, http.MethodPost, "/api/v1/auth/token/", "application/json", `{"username": "alice", "password": }`)
		wantError(t, "malformed JSON", r.StatusCode, body, http.StatusBadRequest, "parse_error")
		r, body = e.do(t, http.MethodPost, "/api/v1/auth/token/", "text/plain", "username=alice")
		wantError(t, "text/plain", r.StatusCode, body, http.StatusUnsupportedMediaType, "unsupported_media_type")
		r, body = e.do(t, http.MethodGet, "/api/v1/auth/token/", "", "")
		wantError(t, "GET", r.StatusCode, body, http.StatusMethodNotAllowed, "method_not_allowed")
		r, body = e.do(t, http.MethodPost, "/api/v1/auth/token/", "application/json", `{"username":"alice","password":"x","extra":1}`)
		wantError(t, "unknown field", r.StatusCode, body, http.StatusBadRequest, "invalid")
		r, body = e.do(t, http.MethodPost, "/api/v1/auth/token/", "application/json", `{"username":1,"password":"x"}`)
		wantError(t, "wrong type", r.StatusCode, body, http.StatusBadRequest, "invalid")
	})
}

func TestLoginFormEncoded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		resp, err := e.client.ObtainTokenWithFormdataBodyWithResponse(context.Background(),
			client.TokenObtainRequest{Username: "alice", Password: demoPassword})
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON200 == nil || resp.JSON200.Access == "" || resp.JSON200.Refresh == "" {
			t.Fatalf("form login: status %d, body %s", resp.StatusCode(), resp.Body)
		}
		r, body := e.do(t, http.MethodPost, "/api/v1/auth/token/", "application/x-www-form-urlencoded",
			url.Values{"username": {"alice"}, "password": {"wrong_password_123"}}.Encode())
		wantError(t, "form, wrong password", r.StatusCode, body, http.StatusUnauthorized, "authentication_failed")
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("token response Cache-Control = %q, want no-store", cc)
		}
	})
}

func TestBearerAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		// A token sent and refused says so (RFC 6750 invalid_token): the one 401 a client
		// answers by refreshing. No token or a malformed header names no error.
		const plain, invalidToken = `Bearer realm="api"`, `Bearer realm="api", error="invalid_token"`
		for _, tc := range []struct {
			name, header, code, challenge string
		}{
			{"no header", "", "not_authenticated", plain},
			{"Bearer without token", "Bearer", "bad_authorization_header", plain},
			{"three parts", "Bearer a b", "bad_authorization_header", plain},
			{"other scheme", "JWT " + pair.Access, "not_authenticated", plain},
			{"lowercase scheme", "bearer " + pair.Access, "not_authenticated", plain},
			{"garbage", "Bearer not.a.token", "token_not_valid", invalidToken},
			{"refresh token as bearer", "Bearer " + pair.Refresh, "token_not_valid", invalidToken},
		} {
			var headers []string
			if tc.header != "" {
				headers = []string{"Authorization", tc.header}
			}
			r, body := e.do(t, http.MethodGet, "/api/v1/", "", "", headers...)
			wantError(t, tc.name, r.StatusCode, body, http.StatusUnauthorized, tc.code)
			if h := r.Header.Get("WWW-Authenticate"); h != tc.challenge {
				t.Errorf("%s: WWW-Authenticate = %q, want %q", tc.name, h, tc.challenge)
			}
		}
		ok, err := e.client.WelcomeWithResponse(context.Background(), bearer(pair.Access))
		if err != nil || ok.JSON200 == nil {
			t.Fatalf("welcome: %v %d %s", err, ok.StatusCode(), ok.Body)
		}
		if *ok.JSON200 != (client.Welcome{Name: "My Awesome API", ApiVersion: "v1", Message: "Welcome!"}) {
			t.Errorf("welcome = %+v", *ok.JSON200)
		}

		e.clock.Add(accessLifetime + time.Second)
		r, body := e.do(t, http.MethodGet, "/api/v1/", "", "", "Authorization", "Bearer "+pair.Access)
		wantError(t, "expired access token", r.StatusCode, body, http.StatusUnauthorized, "token_not_valid")
	})
}

func TestRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		alice := e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")

		e.clock.Add(time.Minute)
		resp, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("refresh: %v %d %s", err, resp.StatusCode(), resp.Body)
		}
		if decodeSegment(t, resp.JSON200.Access, 1)["sid"] != decodeSegment(t, pair.Refresh, 1)["sid"] {
			t.Error("refreshed access token belongs to another session")
		}
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(resp.JSON200.Access)); w.StatusCode() != http.StatusOK {
			t.Errorf("refreshed access token: status %d", w.StatusCode())
		}

		for _, tc := range []struct{ name, refresh, detail string }{
			{"access token", pair.Access, "Token has wrong type"},
			{"garbage", "garbage", "Token is invalid or expired"},
		} {
			r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: tc.refresh})
			if err != nil {
				t.Fatal(err)
			}
			if got := wantError(t, tc.name, r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid"); got.Detail != tc.detail {
				t.Errorf("%s: detail %q, want %q", tc.name, got.Detail, tc.detail)
			}
		}
		r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "missing refresh", r.StatusCode(), r.Body, http.StatusBadRequest, "invalid")
		raw, body := e.do(t, http.MethodPost, "/api/v1/auth/token/refresh/", "application/json", `{"refresh": `)
		wantError(t, "malformed", raw.StatusCode, body, http.StatusBadRequest, "parse_error")

		// The demo still refreshed for an inactive user; authapi refuses.
		if _, err := e.store.UpdateUser(ctx, alice.ID, deactivate, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r, _ = e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
		wantError(t, "inactive user", r.StatusCode(), r.Body, http.StatusUnauthorized, "user_inactive")
		if err := e.store.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		r, _ = e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
		wantError(t, "deleted user", r.StatusCode(), r.Body, http.StatusUnauthorized, "user_not_found")
	})
}

func TestRefreshAfterSessionExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		e.clock.Add(refreshLifetime + time.Second)
		r, err := e.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: pair.Refresh})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "expired refresh", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")
	})
}

func TestVerify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		other := e.mustLogin(t, "alice")
		for _, tok := range []string{pair.Access, pair.Refresh} {
			r, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: tok}, bearer(other.Access))
			if err != nil || r.StatusCode() != http.StatusOK || strings.TrimSpace(string(r.Body)) != "{}" {
				t.Fatalf("verify: %v %d %s", err, r.StatusCode(), r.Body)
			}
		}
		r, _ := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: pair.Access})
		wantError(t, "without bearer", r.StatusCode(), r.Body, http.StatusUnauthorized, "not_authenticated")
		r, _ = e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: "garbage"}, bearer(other.Access))
		wantError(t, "garbage", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")
		r, _ = e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{}, bearer(other.Access))
		wantError(t, "missing token", r.StatusCode(), r.Body, http.StatusBadRequest, "invalid")

		// A refresh token verified before (its signature remembered) and then rotated is
		// refused: its state is read on every verify.
		third := e.mustLogin(t, "alice")
		verified := func(tok string) int {
			r, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: tok}, bearer(other.Access))
			if err != nil {
				t.Fatal(err)
			}
			return r.StatusCode()
		}
		if a, b := verified(third.Refresh), verified(third.Refresh); a != http.StatusOK || b != http.StatusOK {
			t.Fatalf("verify a refresh token twice: %d, %d", a, b)
		}
		rotated, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: third.Refresh})
		if err != nil || rotated.JSON200 == nil || rotated.JSON200.Refresh == nil {
			t.Fatalf("refresh: %v %s", err, rotated.Body)
		}
		if got := verified(third.Refresh); got != http.StatusUnauthorized {
			t.Errorf("verify a refresh token used by a rotation: status %d, want 401", got)
		}
		if got := verified(*rotated.JSON200.Refresh); got != http.StatusOK {
			t.Errorf("verify the rotated refresh token: status %d, want 200", got)
		}

		// The demo's verify ignored its blacklist; authapi's honours revocation, also for an
		// access token the cache holds (it authenticated a request).
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(pair.Access)); w.StatusCode() != http.StatusOK {
			t.Fatalf("welcome: %d", w.StatusCode())
		}
		if lr, _ := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh}, bearer(other.Access)); lr.StatusCode() != http.StatusOK {
			t.Fatalf("logout: %d %s", lr.StatusCode(), lr.Body)
		}
		for _, tok := range []string{pair.Access, pair.Refresh} {
			r, _ := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: tok}, bearer(other.Access))
			wantError(t, "revoked", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")
		}
	})
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "root", superRole)
		pair := e.mustLogin(t, "alice")
		rootPair := e.mustLogin(t, "root")

		r, _ := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh})
		wantError(t, "no bearer", r.StatusCode(), r.Body, http.StatusUnauthorized, "not_authenticated")
		r, _ = e.client.LogoutWithResponse(ctx, client.LogoutRequest{}, bearer(pair.Access))
		wantError(t, "missing refresh", r.StatusCode(), r.Body, http.StatusBadRequest, "invalid")
		r, _ = e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: "garbage"}, bearer(pair.Access))
		wantError(t, "garbage", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")
		r, _ = e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Access}, bearer(pair.Access))
		wantError(t, "access as refresh", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")

		// Someone else's refresh token: refused, and nothing is revoked.
		r, _ = e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: rootPair.Refresh}, bearer(pair.Access))
		wantError(t, "other user's refresh", r.StatusCode(), r.Body, http.StatusForbidden, "permission_denied")
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(rootPair.Access)); w.StatusCode() != http.StatusOK {
			t.Fatalf("root's session was revoked by alice: %d", w.StatusCode())
		}

		r, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh}, bearer(pair.Access))
		if err != nil || r.StatusCode() != http.StatusOK || strings.TrimSpace(string(r.Body)) != "{}" {
			t.Fatalf("logout: %v %d %s", err, r.StatusCode(), r.Body)
		}
		// The demo's access token outlived logout; authapi's dies with the session.
		w, _ := e.client.WelcomeWithResponse(ctx, bearer(pair.Access))
		wantError(t, "access after logout", w.StatusCode(), w.Body, http.StatusUnauthorized, "token_not_valid")
		second := e.mustLogin(t, "alice")
		r, _ = e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh}, bearer(second.Access))
		wantError(t, "logout twice", r.StatusCode(), r.Body, http.StatusUnauthorized, "token_not_valid")
		rr, _ := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
		wantError(t, "refresh after logout", rr.StatusCode(), rr.Body, http.StatusUnauthorized, "token_not_valid")
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(second.Access)); w.StatusCode() != http.StatusOK {
			t.Errorf("logging out one device logged out another: %d", w.StatusCode())
		}
		raw, body := e.do(t, http.MethodGet, "/api/v1/auth/logout/", "", "", "Authorization", "Bearer "+second.Access)
		wantError(t, "GET logout", raw.StatusCode, body, http.StatusMethodNotAllowed, "method_not_allowed")
	})
}

func TestLogoutAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "bob", regular)
		devices := []client.TokenPair{e.mustLogin(t, "alice"), e.mustLogin(t, "alice"), e.mustLogin(t, "alice")}
		bob := e.mustLogin(t, "bob")

		r, _ := e.client.LogoutAllWithResponse(ctx)
		wantError(t, "no bearer", r.StatusCode(), r.Body, http.StatusUnauthorized, "not_authenticated")
		r, err := e.client.LogoutAllWithResponse(ctx, bearer(devices[0].Access))
		if err != nil || r.StatusCode() != http.StatusResetContent || len(r.Body) != 0 {
			t.Fatalf("logout_all: %v %d %q", err, r.StatusCode(), r.Body)
		}
		for i, d := range devices {
			w, _ := e.client.WelcomeWithResponse(ctx, bearer(d.Access))
			wantError(t, "access of device "+strconv.Itoa(i), w.StatusCode(), w.Body, http.StatusUnauthorized, "token_not_valid")
			rr, _ := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: d.Refresh})
			wantError(t, "refresh of device "+strconv.Itoa(i), rr.StatusCode(), rr.Body, http.StatusUnauthorized, "token_not_valid")
		}
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(bob.Access)); w.StatusCode() != http.StatusOK {
			t.Errorf("alice's logout_all logged bob out: %d", w.StatusCode())
		}
		fresh := e.mustLogin(t, "alice")
		p, err := e.client.LogoutAllPostWithResponse(ctx, bearer(fresh.Access))
		if err != nil || p.StatusCode() != http.StatusResetContent {
			t.Fatalf("POST logout_all: %v %d", err, p.StatusCode())
		}
		w, _ := e.client.WelcomeWithResponse(ctx, bearer(fresh.Access))
		wantError(t, "after POST logout_all", w.StatusCode(), w.Body, http.StatusUnauthorized, "token_not_valid")
	})
}

// TestConcurrentRequests logs in, refreshes and reads concurrently: SQLite must never answer
// "database is locked", and no request may fail (the per-account limit allows as many logins
// in flight as there are workers).
func TestConcurrentRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		const workers = 16 // LoginFailuresPerAccount below
		errs := make(chan string, workers*3)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
				if err != nil || r.JSON200 == nil {
					errs <- fmt.Sprintf("login: %v %d %s", err, r.StatusCode(), r.Body)
					return
				}
				rr, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: r.JSON200.Refresh})
				if err != nil || rr.JSON200 == nil {
					errs <- fmt.Sprintf("refresh: %v %d %s", err, rr.StatusCode(), rr.Body)
					return
				}
				if w, err := e.client.GetAccountWithResponse(ctx, bearer(rr.JSON200.Access)); err != nil || w.StatusCode() != 200 {
					errs <- fmt.Sprintf("account: %v", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for msg := range errs {
			t.Error(msg)
		}
	}, withConfig(func(c *server.Config) {
		// Each login in flight holds one of the account's attempts until it succeeds.
		c.LoginFailuresPerAccount = 16
	}))
}
