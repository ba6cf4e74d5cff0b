package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
)

func refresh(t *testing.T, e *testEnv, raw string) *client.RefreshTokenResponse {
	t.Helper()
	r, err := e.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: raw})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRefreshRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		first := e.mustLogin(t, "alice")

		e.clock.Add(time.Minute)
		r := refresh(t, e, first.Refresh)
		if r.JSON200 == nil || r.JSON200.Refresh == nil || *r.JSON200.Refresh == first.Refresh {
			t.Fatalf("rotation: %d %s; want a new refresh token", r.StatusCode(), r.Body)
		}
		second := client.TokenPair{Access: r.JSON200.Access, Refresh: *r.JSON200.Refresh}

		// The retired token is no longer valid to verify.
		v, _ := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: first.Refresh}, bearer(second.Access))
		wantError(t, "verify retired refresh", v.StatusCode(), v.Body, 401, "token_not_valid")

		// Within the grace window the retired token gets the same new pair again.
		e.clock.Add(reuseGrace / 2)
		again := refresh(t, e, first.Refresh)
		if again.JSON200 == nil || again.JSON200.Refresh == nil || *again.JSON200.Refresh != second.Refresh || again.JSON200.Access != second.Access {
			t.Fatalf("reuse within grace: %d %s; want the same pair", again.StatusCode(), again.Body)
		}

		// After it, reuse revokes the whole session: refresh and access tokens alike.
		e.clock.Add(reuseGrace)
		reuse := refresh(t, e, first.Refresh)
		wantError(t, "reuse after grace", reuse.StatusCode(), reuse.Body, 401, "token_not_valid")
		nr := refresh(t, e, second.Refresh)
		wantError(t, "new refresh after reuse", nr.StatusCode(), nr.Body, 401, "token_not_valid")
		w, _ := e.client.WelcomeWithResponse(ctx, bearer(second.Access))
		wantError(t, "access after reuse", w.StatusCode(), w.Body, 401, "token_not_valid")
	})
}

func TestRefreshWithoutRotationOrGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		for i := range 3 {
			r := refresh(t, e, pair.Refresh)
			if r.JSON200 == nil || r.JSON200.Refresh != nil {
				t.Fatalf("refresh %d without rotation: %d %s; want access only", i, r.StatusCode(), r.Body)
			}
		}
	}, withConfig(func(c *server.Config) { c.RotateRefreshTokens = false }))

	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		if r := refresh(t, e, pair.Refresh); r.JSON200 == nil {
			t.Fatalf("refresh: %d %s", r.StatusCode(), r.Body)
		}
		r := refresh(t, e, pair.Refresh)
		wantError(t, "immediate reuse with grace off", r.StatusCode(), r.Body, 401, "token_not_valid")
	}, withConfig(func(c *server.Config) { c.RefreshReuseGrace = 0 }))
}

// TestConcurrentRefreshIsRaceSafe: N concurrent refreshes of one token never yield more than
// one new refresh token; without a grace window exactly one succeeds.
func TestConcurrentRefreshIsRaceSafe(t *testing.T) {
	for _, grace := range []time.Duration{0, reuseGrace} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *testEnv) {
				e.mustUser(t, "alice", regular)
				pair := e.mustLogin(t, "alice")
				const n = 12
				var (
					mu        sync.Mutex
					successes int
					distinct  = map[string]bool{}
					wg        sync.WaitGroup
				)
				for range n {
					wg.Go(func() {
						r, err := e.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: pair.Refresh})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						defer mu.Unlock()
						switch {
						case r.JSON200 != nil && r.JSON200.Refresh != nil:
							successes++
							distinct[*r.JSON200.Refresh] = true
						case r.StatusCode() != http.StatusUnauthorized:
							t.Errorf("concurrent refresh: %d %s", r.StatusCode(), r.Body)
						}
					})
				}
				wg.Wait()
				if len(distinct) != 1 {
					t.Fatalf("%d distinct new refresh tokens from %d concurrent refreshes, want 1", len(distinct), n)
				}
				if grace == 0 && successes != 1 {
					t.Errorf("without grace %d refreshes succeeded, want exactly 1", successes)
				}
				if grace > 0 && successes != n {
					t.Errorf("within grace %d of %d refreshes succeeded, want all (same pair)", successes, n)
				}
			}, withConfig(func(c *server.Config) { c.RefreshReuseGrace = grace }))
		})
	}
}

func TestSessionMaxLifetime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		current := e.mustLogin(t, "alice").Refresh
		// Refresh every 40 minutes: each extends the session, but never past 2 hours.
		for i := range 2 {
			e.clock.Add(40 * time.Minute)
			r := refresh(t, e, current)
			if r.JSON200 == nil {
				t.Fatalf("refresh %d: %d %s", i, r.StatusCode(), r.Body)
			}
			current = *r.JSON200.Refresh
		}
		exp := decodeSegment(t, current, 1)["exp"]
		e.clock.Add(40 * time.Minute) // 2h after login
		r := refresh(t, e, current)
		wantError(t, "refresh at the absolute lifetime", r.StatusCode(), r.Body, 401, "token_not_valid")
		if exp != json.Number(strconv.FormatInt(e.clock.Now().Unix(), 10)) {
			t.Errorf("last refresh token exp = %v, want the session's absolute end", exp)
		}
	}, withConfig(func(c *server.Config) { c.SessionMaxLifetime = 2 * time.Hour }))
}

func TestSessionsAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "bob", regular)
		laptop := e.mustLogin(t, "alice")
		e.clock.Add(time.Second)
		phone := e.mustLogin(t, "alice")
		bob := e.mustLogin(t, "bob")

		l, err := e.client.ListSessionsWithResponse(ctx, bearer(phone.Access))
		if err != nil || l.JSON200 == nil || len(*l.JSON200) != 2 {
			t.Fatalf("list sessions: %v %d %s", err, l.StatusCode(), l.Body)
		}
		list := *l.JSON200
		phoneSID := decodeSegment(t, phone.Access, 1)["sid"]
		laptopSID := decodeSegment(t, laptop.Access, 1)["sid"]
		if list[0].Id != phoneSID || !list[0].Current || list[1].Id != laptopSID || list[1].Current {
			t.Errorf("sessions = %+v; want phone (current) then laptop", list)
		}
		if list[0].Ip != "127.0.0.1" || list[0].UserAgent == "" || !list[0].Expires.After(list[0].Created) {
			t.Errorf("session details = %+v", list[0])
		}

		// Another user's session is not found, and stays alive.
		bobSID := decodeSegment(t, bob.Access, 1)["sid"].(string)
		d, _ := e.client.RevokeSessionWithResponse(ctx, bobSID, bearer(phone.Access))
		wantError(t, "revoke bob's session", d.StatusCode(), d.Body, 404, "not_found")
		if w, _ := e.client.WelcomeWithResponse(ctx, bearer(bob.Access)); w.StatusCode() != 200 {
			t.Fatalf("bob's session was revoked by alice")
		}

		d, err = e.client.RevokeSessionWithResponse(ctx, laptopSID.(string), bearer(phone.Access))
		if err != nil || d.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke laptop: %v %d %s", err, d.StatusCode(), d.Body)
		}
		w, _ := e.client.WelcomeWithResponse(ctx, bearer(laptop.Access))
		wantError(t, "laptop access after revoke", w.StatusCode(), w.Body, 401, "token_not_valid")
		r := refresh(t, e, laptop.Refresh)
		wantError(t, "laptop refresh after revoke", r.StatusCode(), r.Body, 401, "token_not_valid")
		d, _ = e.client.RevokeSessionWithResponse(ctx, laptopSID.(string), bearer(phone.Access))
		wantError(t, "revoke twice", d.StatusCode(), d.Body, 404, "not_found")
		if l, _ := e.client.ListSessionsWithResponse(ctx, bearer(phone.Access)); l.JSON200 == nil || len(*l.JSON200) != 1 {
			t.Errorf("after revoke: %s", l.Body)
		}
		n, _ := e.client.ListSessionsWithResponse(ctx)
		wantError(t, "list without token", n.StatusCode(), n.Body, 401, "not_authenticated")
	})
}

func TestLoginThrottling(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		login := func(username, password string, editors ...client.RequestEditorFn) *client.ObtainTokenResponse {
			r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: username, Password: password}, editors...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		for i := range 3 {
			r := login("alice", "wrong_password_1")
			wantError(t, "failure "+strconv.Itoa(i), r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r := login("ALICE", "wrong_password_1") // same account, other spelling
		wantError(t, "fourth failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		r = login("alice", demoPassword)
		got := wantError(t, "correct password while throttled", r.StatusCode(), r.Body, 429, "throttled")
		// Every failure happened at this same instant, so the wait is the whole window.
		if retry := r.HTTPResponse.Header.Get("Retry-After"); retry != "900" || !strings.Contains(got.Detail, "900 seconds") {
			t.Errorf("Retry-After = %q, detail %q; want 900", retry, got.Detail)
		}
		// A spoofed X-Forwarded-For does not reset the limit: the socket's IP counts.
		r = login("alice", demoPassword, func(_ context.Context, req *http.Request) error {
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			return nil
		})
		wantError(t, "spoofed X-Forwarded-For", r.StatusCode(), r.Body, 429, "throttled")
		// Unknown accounts are throttled the same way, so throttling reveals nobody.
		for range 4 {
			login("nobody", "wrong_password_1")
		}
		r = login("nobody", "wrong_password_1")
		wantError(t, "unknown account", r.StatusCode(), r.Body, 429, "throttled")

		e.clock.Add(15*time.Minute + time.Second)
		if r := login("alice", demoPassword); r.StatusCode() != 200 {
			t.Fatalf("after the window: %d %s", r.StatusCode(), r.Body)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 4; c.LoginFailuresPerIP = 100 }))
}

func TestLoginThrottlingPerIP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		for i := range 3 {
			r, _ := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "user" + strconv.Itoa(i), Password: "x_wrong_password"})
			wantError(t, "failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r, _ := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: demoPassword})
		wantError(t, "per-IP limit", r.StatusCode(), r.Body, 429, "throttled")
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerIP = 3 }))
}

func TestTrustedProxy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		from := func(ip string) client.RequestEditorFn {
			return func(_ context.Context, req *http.Request) error {
				req.Header.Set("X-Forwarded-For", ip)
				return nil
			}
		}
		for range 2 {
			e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "x", Password: "x_wrong_password"}, from("198.51.100.1"))
		}
		r, _ := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: demoPassword}, from("198.51.100.1"))
		wantError(t, "client behind the proxy", r.StatusCode(), r.Body, 429, "throttled")
		ok, _ := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: demoPassword}, from("198.51.100.2"))
		if ok.JSON200 == nil {
			t.Fatalf("another client behind the proxy: %d %s", ok.StatusCode(), ok.Body)
		}
		l, _ := e.client.ListSessionsWithResponse(context.Background(), bearer(ok.JSON200.Access))
		if l.JSON200 == nil || (*l.JSON200)[0].Ip != "198.51.100.2" {
			t.Errorf("session ip = %s, want the forwarded client", l.Body)
		}
	}, withConfig(func(c *server.Config) {
		c.LoginFailuresPerIP = 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}))
}

func TestRefreshRateLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		limited := 0
		for range 8 {
			r := refresh(t, e, "garbage")
			if r.StatusCode() == http.StatusTooManyRequests {
				limited++
				wantError(t, "refresh limit", r.StatusCode(), r.Body, 429, "throttled")
				if r.HTTPResponse.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
			}
		}
		if limited != 3 {
			t.Errorf("%d of 8 refreshes limited, want 3 (burst of 5)", limited)
		}
	}, withConfig(func(c *server.Config) { c.RefreshesPerIPPerMinute = 5 }))
}

func TestCORS(t *testing.T) {
	e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) { c.CORSOrigins = []string{"https://app.example"} }))
	r, _ := e.do(t, http.MethodOptions, "/api/v1/auth/token/", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed origin: %v", r.Header)
	}
	r, _ = e.do(t, http.MethodOptions, "/api/v1/auth/token/", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", r.Header)
	}
	off := newTestEnv(t, "sqlite")
	r, _ = off.do(t, http.MethodGet, "/healthz", "", "", "Origin", "https://app.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS on by default: %v", r.Header)
	}
}

// djangoHash is super_secret_password in Django's PBKDF2 format, made with python3:
// hashlib.pbkdf2_hmac('sha256', b'super_secret_password', b'seasalt', 1000).
const djangoHash = "pbkdf2_sha256$1000$seasalt$qksGsfLuc8We7GSg96W9Ffwd6eOH8KNva5kYCKyPjYw="

// TestImportedDjangoPasswordIsUpgraded: a user imported from the demo logs in with their old
// password, and their hash becomes argon2id.
func TestImportedDjangoPasswordIsUpgraded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u := e.mustUser(t, "imported", regular)
		setHash := func(u *store.User) error { u.PasswordHash = djangoHash; return nil }
		if _, err := e.store.UpdateUser(ctx, u.ID, setHash, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		bad, _ := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "imported", Password: "wrong_password_1"})
		wantError(t, "wrong password", bad.StatusCode(), bad.Body, 401, "authentication_failed")
		if got, _ := e.store.UserByID(ctx, u.ID); got.PasswordHash != djangoHash {
			t.Fatalf("a failed login changed the hash to %q", got.PasswordHash)
		}
		e.mustLogin(t, "imported")
		got, err := e.store.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.PasswordHash, "$argon2id$") || e.hasher.NeedsRehash(got.PasswordHash) {
			t.Errorf("hash after login = %q, want current argon2id", got.PasswordHash)
		}
		e.mustLogin(t, "imported") // and the new hash verifies
	})
}

func TestTokenResponsesAreNotCached(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	e.mustUser(t, "alice", regular)
	r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: demoPassword})
	if err != nil || r.JSON200 == nil {
		t.Fatal(err)
	}
	rr := refresh(t, e, r.JSON200.Refresh)
	for name, h := range map[string]http.Header{"login": r.HTTPResponse.Header, "refresh": rr.HTTPResponse.Header} {
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, h.Get("Cache-Control"))
		}
	}
}
