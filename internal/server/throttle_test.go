package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// from sends a request as if forwarded for ip (believed only from a trusted proxy).
func from(ip string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("X-Forwarded-For", ip)
		return nil
	}
}

// trustLoopback makes the test client a trusted proxy, so that from(ip) sets the client IP.
func trustLoopback(c *server.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

func (e *testEnv) login(t *testing.T, username, password string, editors ...client.RequestEditorFn) *client.ObtainTokenResponse {
	t.Helper()
	r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username, Password: password}, editors...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// parallelLogins sends n wrong passwords at once, for username(i), and counts the statuses.
func parallelLogins(t *testing.T, e *testEnv, n int, username func(i int) string) map[int]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		start  = make(chan struct{})
		wg     sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username(i), Password: "wrong_password_1"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[r.StatusCode()]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// forEachBackendSlowHash is forEachBackend with hashes slow enough (a few milliseconds, 1 MiB)
// that parallel logins overlap while they are checked, as with production costs.
func forEachBackendSlowHash(t *testing.T, fn func(t *testing.T, e *testEnv), opts ...envOption) {
	t.Helper()
	costs := password.Params{Memory: 1024, Iterations: 8, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, newTestEnv(t, backend, append([]envOption{withCosts(costs)}, opts...)...))
		})
	}
}

// TestParallelLoginsPerAccount: wrong passwords for one account, all at once, check no more
// passwords than the per-account limit; the rest are throttled before hashing.
func TestParallelLoginsPerAccount(t *testing.T) {
	const n, limit = 30, 5
	forEachBackendSlowHash(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		got := parallelLogins(t, e, n, func(int) string { return "alice" })
		if got[401] != limit || got[429] != n-limit {
			t.Errorf("statuses %v, want %d × 401 and %d × 429", got, limit, n-limit)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = limit, 1000 }))
}

// TestParallelLoginsPerIP: wrong passwords from one IP for distinct usernames, all at once,
// check no more than the per-IP limit.
func TestParallelLoginsPerIP(t *testing.T) {
	const n, limit = 30, 5
	forEachBackendSlowHash(t, func(t *testing.T, e *testEnv) {
		got := parallelLogins(t, e, n, func(i int) string { return "user" + strconv.Itoa(i) })
		if got[401] != limit || got[429] != n-limit {
			t.Errorf("statuses %v, want %d × 401 and %d × 429", got, limit, n-limit)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = 1000, limit }))
}

// TestPerIPLimitIgnoresSpoofedForwarding tests the per-IP limit alone (distinct usernames):
// without a trusted proxy, every spoofed X-Forwarded-For counts against the one socket IP;
// behind a trusted proxy, each forwarded client counts on its own.
func TestPerIPLimitIgnoresSpoofedForwarding(t *testing.T) {
	limits := func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = 1000, 3 }
	t.Run("no trusted proxy", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, e *testEnv) {
			e.mustUser(t, "alice", regular)
			for i := range 3 {
				r := e.login(t, "user"+strconv.Itoa(i), "wrong_password_1", from("198.51.100."+strconv.Itoa(i+1)))
				wantError(t, "failure "+strconv.Itoa(i), r.StatusCode(), r.Body, 401, "authentication_failed")
			}
			r := e.login(t, "alice", demoPassword, from("198.51.100.99"))
			wantError(t, "spoofed X-Forwarded-For", r.StatusCode(), r.Body, 429, "throttled")
		}, withConfig(limits))
	})
	t.Run("trusted proxy", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, e *testEnv) {
			e.mustUser(t, "alice", regular)
			for i := range 3 {
				r := e.login(t, "user"+strconv.Itoa(i), "wrong_password_1", from("198.51.100.1"))
				wantError(t, "failure "+strconv.Itoa(i), r.StatusCode(), r.Body, 401, "authentication_failed")
			}
			r := e.login(t, "alice", demoPassword, from("198.51.100.1"))
			wantError(t, "same forwarded client", r.StatusCode(), r.Body, 429, "throttled")
			if r := e.login(t, "alice", demoPassword, from("198.51.100.2")); r.StatusCode() != 200 {
				t.Errorf("another forwarded client: %d %s", r.StatusCode(), r.Body)
			}
		}, withConfig(limits, trustLoopback))
	})
}

// TestPerIPLimitsByIPv6Network: an IPv6 client is counted by its /64 (it may use any address
// in it), an IPv4-mapped address as the IPv4 client, for login failures and refreshes.
func TestPerIPLimitsByIPv6Network(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
			r := e.login(t, "user"+strconv.Itoa(i), "wrong_password_1", from(ip))
			wantError(t, "failure from "+ip, r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r := e.login(t, "alice", demoPassword, from("2001:db8:1:2:abcd::1"))
		wantError(t, "same /64", r.StatusCode(), r.Body, 429, "throttled")
		if r := e.login(t, "alice", demoPassword, from("2001:db8:1:3::1")); r.StatusCode() != 200 {
			t.Errorf("next /64: %d %s", r.StatusCode(), r.Body)
		}

		for i := range 3 {
			r := e.login(t, "mapped"+strconv.Itoa(i), "wrong_password_1", from("::ffff:192.0.2.7"))
			wantError(t, "failure from an IPv4-mapped address", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r = e.login(t, "alice", demoPassword, from("192.0.2.7"))
		wantError(t, "IPv4 after its mapped form", r.StatusCode(), r.Body, 429, "throttled")

		// Refreshes: a burst of 2 per /64.
		refreshFrom := func(ip string) int {
			r, err := e.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: "garbage"}, from(ip))
			if err != nil {
				t.Fatal(err)
			}
			return r.StatusCode()
		}
		for _, ip := range []string{"2001:db8:9:9::1", "2001:db8:9:9::2"} {
			if got := refreshFrom(ip); got != 401 {
				t.Fatalf("refresh from %s: %d, want 401", ip, got)
			}
		}
		if got := refreshFrom("2001:db8:9:9::3"); got != 429 {
			t.Errorf("third refresh from the /64: %d, want 429", got)
		}
		if got := refreshFrom("2001:db8:9:a::1"); got != 401 {
			t.Errorf("refresh from the next /64: %d, want 401", got)
		}
	}, withConfig(func(c *server.Config) {
		c.LoginFailuresPerAccount, c.LoginFailuresPerIP, c.RefreshesPerIPPerMinute = 1000, 3, 2
	}, trustLoopback))
}

// TestLockoutIsNotAWeapon: an attacker's failures lock the account for their IP and for
// unknown ones, but not for an IP the owner has logged in from; the owner's own failures lock
// that IP, with a Retry-After counted from them alone.
func TestLockoutIsNotAWeapon(t *testing.T) {
	const attacker, unknown, home, office = "203.0.113.66", "198.51.100.7", "192.0.2.10", "2001:db8:5:6::1"
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", superRole)
		for _, ip := range []string{home, office} {
			if r := e.login(t, "alice", demoPassword, from(ip)); r.StatusCode() != 200 {
				t.Fatalf("owner's first login from %s: %d %s", ip, r.StatusCode(), r.Body)
			}
		}
		for i := range 5 {
			r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from(attacker))
			wantError(t, "attacker's failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r := e.login(t, "alice", demoPassword, from(attacker))
		wantError(t, "attacker's IP", r.StatusCode(), r.Body, 429, "throttled")
		r = e.login(t, "alice", demoPassword, from(unknown))
		wantError(t, "unknown IP", r.StatusCode(), r.Body, 429, "throttled")
		if r := e.login(t, "alice", demoPassword, from(home)); r.StatusCode() != 200 {
			t.Fatalf("owner from home while the attacker locks the account: %d %s", r.StatusCode(), r.Body)
		}
		r = e.login(t, "alice", demoPassword, from(attacker))
		wantError(t, "attacker's IP after the owner's login", r.StatusCode(), r.Body, 429, "throttled")

		// The owner's own failures lock home, for the whole window.
		for i := range 5 {
			r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from(home))
			wantError(t, "owner's failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r = e.login(t, "alice", demoPassword, from(home))
		wantError(t, "home after its own failures", r.StatusCode(), r.Body, 429, "throttled")
		if got := r.HTTPResponse.Header.Get("Retry-After"); got != "900" {
			t.Errorf("home: Retry-After %s, want 900", got)
		}
		// Five minutes later, failures from the office (another address of its /64) lock
		// only the office; home still waits for its own failures: 600 s, not 900.
		e.clock.Add(5 * time.Minute)
		for i := range 5 {
			r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from("2001:db8:5:6::2"))
			wantError(t, "office failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		r = e.login(t, "alice", demoPassword, from(home))
		wantError(t, "home", r.StatusCode(), r.Body, 429, "throttled")
		if got := r.HTTPResponse.Header.Get("Retry-After"); got != "600" {
			t.Errorf("home: Retry-After %s, want 600 (from its own failures)", got)
		}
		r = e.login(t, "alice", demoPassword, from(office))
		wantError(t, "office", r.StatusCode(), r.Body, 429, "throttled")
		if got := r.HTTPResponse.Header.Get("Retry-After"); got != "900" {
			t.Errorf("office: Retry-After %s, want 900", got)
		}
		e.clock.Add(10*time.Minute + time.Second)
		if r := e.login(t, "alice", demoPassword, from(home)); r.StatusCode() != 200 {
			t.Errorf("home after its failures left the window: %d %s", r.StatusCode(), r.Body)
		}
	}, withConfig(trustLoopback))
}

// TestRevokedAndInactiveOnAnEndpoint: an access token of a logged-out session, or of a
// deactivated user, is refused on an ordinary endpoint with its own code and message.
func TestRevokedAndInactiveOnAnEndpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		alice := e.mustUser(t, "alice", regular)
		e.mustUser(t, "root", superRole)
		pair := e.mustLogin(t, "alice")
		if r, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: pair.Refresh}, bearer(pair.Access)); err != nil || r.StatusCode() != 200 {
			t.Fatalf("logout: %v", err)
		}
		a, _ := e.client.GetAccountWithResponse(ctx, bearer(pair.Access))
		if got := wantError(t, "access token after logout", a.StatusCode(), a.Body, 401, "token_not_valid"); got.Detail != "Token is blacklisted" {
			t.Errorf("detail %q, want the revoked-session message", got.Detail)
		}

		live := e.mustLogin(t, "alice")
		root := e.mustLogin(t, "root")
		inactive := false
		if p, err := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, client.UserPatch{IsActive: &inactive}, bearer(root.Access)); err != nil || p.StatusCode() != 200 {
			t.Fatalf("deactivate: %v %d", err, p.StatusCode())
		}
		a, _ = e.client.GetAccountWithResponse(ctx, bearer(live.Access))
		if got := wantError(t, "access token of a deactivated user", a.StatusCode(), a.Body, 401, "user_inactive"); got.Detail != "User is inactive" {
			t.Errorf("detail %q", got.Detail)
		}
	})
}

// TestKnownIPsExpireAndAreForgotten: the IP a user logged in from stops exempting her from a
// lockout by others' failures once her last login from it is older than the lifetime, and as
// soon as her password is changed by any path; a login's rehash of the same password keeps it.
func TestKnownIPsExpireAndAreForgotten(t *testing.T) {
	const attacker, home, newPassword = "203.0.113.66", "192.0.2.10", "a fresh password 42"
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// act runs after alice's first login from home and returns her password then.
		act  func(t *testing.T, e *testEnv, alice client.TokenPair, root client.RequestEditorFn) string
		want int // alice's login from home once the attacker has locked her account
	}{
		{"nothing", func(*testing.T, *testEnv, client.TokenPair, client.RequestEditorFn) string { return demoPassword }, 200},
		{"just within the lifetime", func(_ *testing.T, e *testEnv, _ client.TokenPair, _ client.RequestEditorFn) string {
			e.clock.Add(server.DefaultKnownLoginIPLifetime - time.Second)
			return demoPassword
		}, 200},
		{"the lifetime passed", func(_ *testing.T, e *testEnv, _ client.TokenPair, _ client.RequestEditorFn) string {
			e.clock.Add(server.DefaultKnownLoginIPLifetime)
			return demoPassword
		}, 429},
		{"her own password change", func(t *testing.T, e *testEnv, alice client.TokenPair, _ client.RequestEditorFn) string {
			r, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: newPassword}, bearer(alice.Access), from(home))
			if err != nil || r.StatusCode() != http.StatusOK {
				t.Fatalf("change password: %v, %d %s", err, r.StatusCode(), r.Body)
			}
			return newPassword
		}, 429},
		{"a superuser's PUT", func(t *testing.T, e *testEnv, _ client.TokenPair, root client.RequestEditorFn) string {
			r, err := e.client.UpdateUserWithResponse(ctx, e.mustUserID(t, "alice"), client.UserUpdate{
				Username: "alice", FirstName: "Alice", LastName: "Seed", Email: "alice@example.com", Password: ptr(newPassword)}, root)
			if err != nil || r.StatusCode() != http.StatusOK {
				t.Fatalf("PUT password: %v, %d %s", err, r.StatusCode(), r.Body)
			}
			return newPassword
		}, 429},
		{"a superuser's PATCH", func(t *testing.T, e *testEnv, _ client.TokenPair, root client.RequestEditorFn) string {
			r, err := e.client.PartialUpdateUserWithResponse(ctx, e.mustUserID(t, "alice"), client.UserPatch{Password: ptr(newPassword)}, root)
			if err != nil || r.StatusCode() != http.StatusOK {
				t.Fatalf("PATCH password: %v, %d %s", err, r.StatusCode(), r.Body)
			}
			return newPassword
		}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *testEnv) {
				e.mustUser(t, "root", superRole)
				root := bearer(e.mustLogin(t, "root").Access)
				e.mustUser(t, "alice", regular)
				r := e.login(t, "alice", demoPassword, from(home))
				if r.JSON200 == nil {
					t.Fatalf("alice's first login from home: %d %s", r.StatusCode(), r.Body)
				}
				pw := tc.act(t, e, *r.JSON200, root)
				for i := range 5 {
					r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from(attacker))
					wantError(t, "attacker's failure", r.StatusCode(), r.Body, 401, "authentication_failed")
				}
				if r := e.login(t, "alice", pw, from(home)); r.StatusCode() != tc.want {
					t.Errorf("alice from home: status %d, want %d", r.StatusCode(), tc.want)
				}
			}, withConfig(trustLoopback))
		})
	}

	// A login that rehashes her password (made with other costs) keeps home known.
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", regular)
		costs := password.FastParams()
		costs.Iterations++
		old, err := password.NewHasher(costs, password.Limit{}).Hash(ctx, demoPassword)
		if err != nil {
			t.Fatal(err)
		}
		setHash := func(u *store.User) error { u.PasswordHash = old; return nil }
		if _, err := e.store.UpdateUser(ctx, alice.ID, setHash, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if r := e.login(t, "alice", demoPassword, from(home)); r.StatusCode() != 200 {
			t.Fatalf("alice's first login from home: %d %s", r.StatusCode(), r.Body)
		}
		if u, err := e.store.UserByID(ctx, alice.ID); err != nil || u.PasswordHash == old {
			t.Fatalf("alice's hash after the login: rehashed %v, %v; want rehashed", u.PasswordHash != old, err)
		}
		for i := range 5 {
			r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from(attacker))
			wantError(t, "attacker's failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		if r := e.login(t, "alice", demoPassword, from(home)); r.StatusCode() != 200 {
			t.Errorf("alice from home after a rehash: %d %s, want 200", r.StatusCode(), r.Body)
		}
	}, withConfig(trustLoopback))
}

// TestThrottledLoginsCounted: a flood of logins on a locked account, 2,000 at once through
// two instances on one database, adds one audit row whose count is exact, and the API shows
// it with its first and last times.
func TestThrottledLoginsCounted(t *testing.T) {
	const n, workers, attacker = 2000, 8, "203.0.113.9"
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		// Refusals are counted one row per window of the throttle, aligned to the clock: from a
		// window's start, the second the clock moves on meanwhile stays within it (from the last
		// second of a window, as a clock started at time.Now() could be, it made two rows).
		window := server.DefaultConfig().LoginFailureWindow
		e.clock.Set(e.clock.Now().Truncate(window).Add(window))
		e.mustUser(t, "root", superRole)
		root := e.mustLogin(t, "root").Access
		alice := e.mustUser(t, "alice", regular)
		for i := range 5 {
			r := e.login(t, "alice", "wrong_password_"+strconv.Itoa(i), from(attacker))
			wantError(t, "attacker's failure", r.StatusCode(), r.Body, 401, "authentication_failed")
		}
		first := e.clock.Now()
		other := newTestEnv(t, e.backend, withDSN(e.dsn), withHasher(e.hasher), withConfig(trustLoopback, func(c *server.Config) { c.Now = e.clock.Now }))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					env := []*testEnv{e, other}[i%2]
					r, err := env.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword}, from(attacker))
					if err != nil || r.StatusCode() != http.StatusTooManyRequests {
						t.Errorf("login %d: %v, status %d, want 429", i, err, r.StatusCode())
						return
					}
					if i == n/2 {
						e.clock.Add(time.Second) // the last ones come later than the first
					}
				}
			})
		}
		wg.Wait()
		events, total, _ := e.auditPage(t, root, client.ListAuditEventsParams{Action: &[]client.AuditAction{api(audit.LoginThrottled)}})
		if total != 1 || len(events) != 1 {
			t.Fatalf("%d throttled rows (total %d), want 1: %+v", len(events), total, events)
		}
		ev := events[0]
		if ev.Count != n || id(ev.TargetId) != alice.ID || ev.Ip != attacker || !ev.FirstTime.Equal(first) || !ev.Time.Equal(first.Add(time.Second)) {
			t.Errorf("throttled row: count %d, target %d, ip %s, first %v, last %v; want %d, %d, %s, %v, %v",
				ev.Count, id(ev.TargetId), ev.Ip, ev.FirstTime, ev.Time, n, alice.ID, attacker, first, first.Add(time.Second))
		}
		if _, total, _ := e.auditPage(t, root, client.ListAuditEventsParams{}); total > 20 {
			t.Errorf("%d audit rows in all after %d refusals, want a handful", total, n)
		}
	}, withConfig(trustLoopback))
}
