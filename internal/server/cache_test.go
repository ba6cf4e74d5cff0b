package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

// instances is two servers (two processes, each with its own Store and auth cache) on one
// database.
type instances struct{ a, b *testEnv }

func newInstances(t *testing.T, backend string, opts ...envOption) instances {
	t.Helper()
	dsn := storetest.DSN(t, backend)
	hasher := password.NewHasher(password.FastParams(), testLimit)
	opts = append([]envOption{withDSN(dsn), withHasher(hasher)}, opts...)
	a := newTestEnv(t, backend, opts...)
	b := newTestEnv(t, backend, opts...)
	return instances{a, b}
}

// status sends the probe with access on e and returns the status.
type probe func(t *testing.T, e *testEnv, access string) int

func getAccount(t *testing.T, e *testEnv, access string) int {
	t.Helper()
	r, err := e.client.GetAccountWithResponse(context.Background(), bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode()
}

func listUsers(t *testing.T, e *testEnv, access string) int {
	t.Helper()
	r, err := e.client.ListUsersWithResponse(context.Background(), nil, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode()
}

// settle bounds this file's waits for a cache to catch up: a hang fails, a machine loaded by
// the race detector, PostgreSQL and other test binaries does not (the guarantee is 1s).
const settle = 30 * time.Second

// waitStatus polls the probe every 50ms until it answers want, failing after settle.
func waitStatus(t *testing.T, what string, e *testEnv, access string, p probe, want int) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		got := p(t, e, access)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d after %v, want %d", what, got, settle, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevocationReachesEveryInstance is the table of every change of authentication state: a
// token is used on two instances (so both caches hold it), the change is made on the first;
// the first refuses the token on the very next request, the second soon after (within 1s,
// waited for up to settle).
func TestRevocationReachesEveryInstance(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		probe  probe
		want   int // the probe's status after the change
		change func(t *testing.T, in instances, alice client.TokenPair, aliceID int64, admin string)
	}{
		{"logout", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, _ int64, _ string) {
			r, err := in.a.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: alice.Refresh}, bearer(alice.Access))
			mustStatus(t, "logout", r, err, http.StatusOK)
		}},
		{"logout all", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, _ int64, _ string) {
			r, err := in.a.client.LogoutAllPostWithResponse(ctx, bearer(alice.Access))
			mustStatus(t, "logout all", r, err, http.StatusResetContent)
		}},
		{"session revoke", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, _ int64, _ string) {
			c, err := in.a.tokens.Parse(alice.Access, token.Access)
			if err != nil {
				t.Fatal(err)
			}
			r, err := in.a.client.RevokeSessionWithResponse(ctx, c.SessionID, bearer(alice.Access))
			mustStatus(t, "revoke session", r, err, http.StatusNoContent)
		}},
		{"refresh reuse", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, _ int64, _ string) {
			r, err := in.a.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: alice.Refresh})
			mustStatus(t, "refresh", r, err, http.StatusOK)
			r, err = in.a.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: alice.Refresh})
			mustStatus(t, "refresh reuse", r, err, http.StatusUnauthorized)
		}},
		{"deactivation", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, _ client.TokenPair, id int64, admin string) {
			r, err := in.a.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{IsActive: ptr(false)}, bearer(admin))
			mustStatus(t, "deactivate", r, err, http.StatusOK)
		}},
		{"deletion", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, _ client.TokenPair, id int64, admin string) {
			r, err := in.a.client.DeleteUserWithResponse(ctx, id, bearer(admin))
			mustStatus(t, "delete", r, err, http.StatusNoContent)
		}},
		{"demotion", listUsers, http.StatusForbidden, func(t *testing.T, in instances, _ client.TokenPair, id int64, admin string) {
			r, err := in.a.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{IsStaff: ptr(false)}, bearer(admin))
			mustStatus(t, "demote", r, err, http.StatusOK)
		}},
		{"password change", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, _ client.TokenPair, id int64, admin string) {
			r, err := in.a.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{Password: ptr("a new Passw0rd of some length")}, bearer(admin))
			mustStatus(t, "change password", r, err, http.StatusOK)
		}},
		{"admin session revoke", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, id int64, admin string) {
			r, err := in.a.client.RevokeUserSessionWithResponse(ctx, id, sid(t, alice.Access), bearer(admin))
			mustStatus(t, "revoke alice's session", r, err, http.StatusNoContent)
		}},
		{"admin logout all", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, _ client.TokenPair, id int64, admin string) {
			r, err := in.a.client.LogoutUserEverywhereWithResponse(ctx, id, bearer(admin))
			mustStatus(t, "log alice out everywhere", r, err, http.StatusNoContent)
		}},
		{"own password change", getAccount, http.StatusUnauthorized, func(t *testing.T, in instances, alice client.TokenPair, _ int64, _ string) {
			// From another session of alice's, which ends too; its login dropped the cached
			// entries of alice's first token, so they are cached again first.
			other := in.a.mustLogin(t, "alice")
			for _, e := range []*testEnv{in.a, in.b} {
				mustCache(t, e, alice.Access, getAccount)
				mustCache(t, e, other.Access, getAccount)
			}
			r, err := in.a.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "a new Passw0rd of some length"}, bearer(other.Access))
			mustStatus(t, "change own password", r, err, http.StatusOK)
			for _, e := range []*testEnv{in.a, in.b} {
				waitStatus(t, "the changing session after the change", e, other.Access, getAccount, http.StatusUnauthorized)
				if got := getAccount(t, e, r.JSON200.Access); got != http.StatusOK {
					t.Fatalf("the change's new session: %d, want 200", got)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackendOnly(t, func(t *testing.T, backend string) {
				in := newInstances(t, backend, withConfig(func(c *server.Config) { c.RefreshReuseGrace = 0 }))
				aliceUser := in.a.mustUser(t, "alice", staffRole)
				in.a.mustUser(t, "root", superRole)
				alice := in.a.mustLogin(t, "alice")
				admin := in.a.mustLogin(t, "root").Access
				for _, e := range []*testEnv{in.a, in.b} {
					mustCache(t, e, alice.Access, tc.probe)
				}
				tc.change(t, in, alice, aliceUser.ID, admin)
				if got := tc.probe(t, in.a, alice.Access); got != tc.want {
					t.Fatalf("the instance that made the change: status %d on the next request, want %d", got, tc.want)
				}
				waitStatus(t, "the other instance", in.b, alice.Access, tc.probe, tc.want)
			})
		})
	}
}

// mustCache uses access on e until e's cache holds it. It first waits until e has read every
// change committed so far (the login's among them), so that only a later change can drop the
// entry.
func mustCache(t *testing.T, e *testEnv, access string, p probe) {
	t.Helper()
	now := time.Now()
	deadline := now.Add(settle)
	for !e.cache.CaughtUp(now) {
		if time.Now().After(deadline) {
			t.Fatalf("the cache did not read the change log within %v", settle)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		if got := p(t, e, access); got != http.StatusOK {
			t.Fatalf("before the change: status %d, want 200", got)
		}
		if _, ok := e.cache.Get(access); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token was not cached within %v", settle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forEachBackendOnly runs fn on each backend as a parallel subtest.
func forEachBackendOnly(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, backend)
		})
	}
}

type statusCoder interface{ StatusCode() int }

func mustStatus(t *testing.T, what string, r statusCoder, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.StatusCode() != want {
		t.Fatalf("%s: status %d, want %d", what, r.StatusCode(), want)
	}
}

// TestCacheFailsClosed makes the change log unreadable, then revokes a session behind the
// cache's back, directly in the database (no change logged): once the log has gone unread
// for the staleness bound, the instance reads the database on every request and refuses.
func TestCacheFailsClosed(t *testing.T) {
	forEachBackendOnly(t, func(t *testing.T, backend string) {
		in := newInstances(t, backend)
		in.a.mustUser(t, "alice", regular)
		alice := in.a.mustLogin(t, "alice")
		mustCache(t, in.b, alice.Access, getAccount)
		driver := map[string]string{"sqlite": "sqlite3", "postgres": "pgx"}[backend]
		db, err := sql.Open(driver, in.a.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, stmt := range []string{
			`ALTER TABLE auth_changes RENAME TO auth_changes_away`,
			`UPDATE sessions SET revoked_at = expires_at`,
		} {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		waitStatus(t, "after the change log went unreadable", in.b, alice.Access, getAccount, http.StatusUnauthorized)
		if n := in.b.cache.Len(); n != 1 {
			t.Fatalf("%d entries: the 401 came from a dropped entry, not from the stale cache", n)
		}
		if _, err := db.Exec(`ALTER TABLE auth_changes_away RENAME TO auth_changes`); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(settle)
		for !in.b.cache.Fresh() {
			if time.Now().After(deadline) {
				t.Fatal("the cache did not recover with the change log back")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := getAccount(t, in.b, alice.Access); got != http.StatusUnauthorized {
			t.Fatalf("after recovery: status %d, want 401", got)
		}
	})
}

// TestCachedTokenNeverValidatesAnother flips each byte of a cached token's signature: every
// variant is refused.
func TestCachedTokenNeverValidatesAnother(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		access := e.mustLogin(t, "alice").Access
		mustCache(t, e, access, getAccount)
		sig := len(access) - 10
		for i := sig; i < len(access); i++ {
			b := []byte(access)
			b[i] ^= 0x01
			if got := getAccount(t, e, string(b)); got != http.StatusUnauthorized {
				t.Fatalf("byte %d flipped: status %d, want 401", i, got)
			}
		}
	})
}

// TestCacheBoundedUnderFlood sends many distinct valid tokens of one live session: the cache
// never holds more than its bound, and every token is still accepted.
func TestCacheBoundedUnderFlood(t *testing.T) {
	const bound = 20
	e := newTestEnv(t, "sqlite", withCache(authcache.Config{MaxEntries: bound}))
	e.mustUser(t, "alice", regular)
	first := e.mustLogin(t, "alice").Access
	mustCache(t, e, first, getAccount)
	c, err := e.tokens.Parse(first, token.Access)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 * bound {
		c.ID = fmt.Sprint("flood-", i)
		access, err := e.tokens.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := getAccount(t, e, access); got != http.StatusOK {
			t.Fatalf("token %d: status %d", i, got)
		}
		if n := e.cache.Len(); n > bound {
			t.Fatalf("after %d tokens: %d entries, bound %d", i+1, n, bound)
		}
	}
	if n := e.cache.Len(); n != bound {
		t.Fatalf("%d entries after the flood, want the bound %d (are tokens cached at all?)", n, bound)
	}
}
