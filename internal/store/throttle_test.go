package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func mustReserve(t *testing.T, st *store.Store, a store.LoginAttempt) store.LoginReservation {
	t.Helper()
	r, err := st.ReserveLoginAttempt(context.Background(), a)
	if err != nil {
		t.Fatalf("reserve %+v: %v", a, err)
	}
	return r
}

// twoInstances opens two stores on one fresh, migrated database, as two processes would.
func twoInstances(t *testing.T, backend string) []*store.Store {
	t.Helper()
	dsn := storetest.DSN(t, backend)
	var instances []*store.Store
	for range 2 {
		st, err := store.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		instances = append(instances, st)
	}
	if err := instances[0].Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return instances
}

func times(ts ...time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = stored(t).UTC()
	}
	return out
}

func TestReserveLoginAttempt(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		attempt := func(account, ip string, at time.Duration) store.LoginAttempt {
			return store.LoginAttempt{Account: account, IP: ip, At: t0.Add(at), Since: t0.Add(at - 15*time.Minute), AccountLimit: 3, IPLimit: 5}
		}
		for i := range 3 {
			r := mustReserve(t, st, attempt("alice", "10.0.0.1", time.Duration(i)*time.Minute))
			if !r.Reserved || len(r.IDs) != 2 || len(r.AccountFailures) != i {
				t.Fatalf("attempt %d: %+v, want reserved after %d failures", i, r, i)
			}
		}
		// The fourth is refused; it sees the three, newest first, and records nothing.
		r := mustReserve(t, st, attempt("alice", "10.0.0.1", 3*time.Minute))
		if r.Reserved || len(r.IDs) != 0 || !slices.Equal(r.AccountFailures, times(t0.Add(2*time.Minute), t0.Add(time.Minute), t0)) || len(r.IPFailures) != 3 {
			t.Fatalf("over the account limit: %+v", r)
		}
		// Failures leave the window: at t0+15m30s only t0+1m and t0+2m are in it.
		if r := mustReserve(t, st, attempt("alice", "10.0.0.9", 15*time.Minute+30*time.Second)); !r.Reserved ||
			!slices.Equal(r.AccountFailures, times(t0.Add(2*time.Minute), t0.Add(time.Minute))) {
			t.Fatalf("after the oldest left the window: %+v", r)
		}

		// Counting only the account's failures from one IP: 10.0.0.2 has none.
		own := attempt("alice", "10.0.0.2", 3*time.Minute)
		own.AccountFromIPOnly = true
		if r := mustReserve(t, st, own); !r.Reserved || len(r.AccountFailures) != 0 {
			t.Fatalf("own failures only: %+v", r)
		}
		// The per-IP limit counts every account: 10.0.0.1 has 3 (alice), 2 more make 5.
		for _, who := range []string{"bob", "carol"} {
			if r := mustReserve(t, st, attempt(who, "10.0.0.1", 3*time.Minute)); !r.Reserved {
				t.Fatalf("%s under the IP limit: %+v", who, r)
			}
		}
		if r := mustReserve(t, st, attempt("dave", "10.0.0.1", 3*time.Minute)); r.Reserved || len(r.IPFailures) != 5 || len(r.AccountFailures) != 0 {
			t.Fatalf("over the IP limit: %+v", r)
		}
		// A negative limit is not checked and counts nothing.
		off := attempt("dave", "10.0.0.1", 3*time.Minute)
		off.IPLimit = -1
		if r := mustReserve(t, st, off); !r.Reserved || r.IPFailures != nil {
			t.Fatalf("IP limit off: %+v", r)
		}

		// A released reservation no longer counts.
		erin := attempt("erin", "10.0.0.3", 0)
		r = mustReserve(t, st, erin)
		if err := st.ReleaseLoginAttempt(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r := mustReserve(t, st, erin); len(r.AccountFailures) != 0 || len(r.IPFailures) != 0 {
			t.Fatalf("after release: %+v", r)
		}
	})
}

func TestLoginSucceeded(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "Alice")
		attempt := store.LoginAttempt{Account: "alice", IP: "10.0.0.1", At: t0, Since: t0.Add(-time.Hour), AccountLimit: 10, IPLimit: 10}
		if err := st.RecordLoginFailure(ctx, "alice", "10.0.0.1", t0); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLoginFailure(ctx, "alice", "10.0.0.2", t0); err != nil {
			t.Fatal(err)
		}
		if known, err := st.LoginIPKnown(ctx, "alice", "10.0.0.1", t0.Add(-time.Hour)); err != nil || known {
			t.Fatalf("known before any login: %v, %v", known, err)
		}
		r := mustReserve(t, st, attempt)
		if err := st.LoginSucceeded(ctx, r, alice.ID, alice.PasswordHash, "alice", "10.0.0.1", t0); err != nil {
			t.Fatal(err)
		}
		// The reservation and alice's failures from 10.0.0.1 are gone; those from elsewhere and
		// the IP's stay.
		r = mustReserve(t, st, attempt)
		if len(r.AccountFailures) != 1 || len(r.IPFailures) != 1 {
			t.Fatalf("after success: %+v, want the failure from 10.0.0.2 and the IP's one", r)
		}
		for ip, want := range map[string]bool{"10.0.0.1": true, "10.0.0.2": false} {
			if known, err := st.LoginIPKnown(ctx, "alice", ip, t0.Add(-time.Hour)); err != nil || known != want {
				t.Errorf("known %s = %v, %v; want %v", ip, known, err, want)
			}
		}
		if known, _ := st.LoginIPKnown(ctx, "bob", "10.0.0.1", t0.Add(-time.Hour)); known {
			t.Error("known for another account")
		}
		// Again: the record is updated, not duplicated.
		if err := st.LoginSucceeded(ctx, r, alice.ID, alice.PasswordHash, "alice", "10.0.0.1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if known, err := st.LoginIPKnown(ctx, "alice", "10.0.0.1", t0.Add(-time.Hour)); err != nil || known {
			t.Errorf("known after the user was deleted: %v, %v", known, err)
		}
		// A user deleted while logging in records nothing, without failing.
		if err := st.LoginSucceeded(ctx, store.LoginReservation{}, alice.ID, alice.PasswordHash, "alice", "10.0.0.1", t0); err != nil {
			t.Errorf("success of a deleted user: %v", err)
		}
	})
}

// TestKnownLoginIPs: an IP is known after a login from it, until its last login is older than
// the lifetime the caller asks for, and until the password changes by any path (an update of
// the user, a change of one's own); a login's rehash of the same password keeps it, and a
// login whose password changed since it was checked records nothing.
func TestKnownLoginIPs(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "Alice")
		hash := alice.PasswordHash
		known := func(what string, since time.Time, want bool) {
			t.Helper()
			if got, err := st.LoginIPKnown(ctx, "alice", "10.0.0.1", since); err != nil || got != want {
				t.Fatalf("%s: known %v, %v; want %v", what, got, err, want)
			}
		}
		login := func(at time.Time) {
			t.Helper()
			if err := st.LoginSucceeded(ctx, store.LoginReservation{}, alice.ID, hash, "alice", "10.0.0.1", at); err != nil {
				t.Fatal(err)
			}
		}
		login(t0)
		known("last login after since", t0.Add(-time.Second), true)
		known("last login at since (as old as the lifetime)", t0, false)

		if ok, err := st.UpgradePasswordHash(ctx, alice.ID, hash, "rehashed"); err != nil || !ok {
			t.Fatalf("upgrade: %v, %v", ok, err)
		}
		hash = "rehashed"
		known("after a rehash", t0.Add(-time.Hour), true)
		setName := func(u *store.User) error { u.FirstName = "Al"; return nil }
		if _, err := st.UpdateUser(ctx, alice.ID, setName, false, t0); err != nil {
			t.Fatal(err)
		}
		known("after an update of another field", t0.Add(-time.Hour), true)

		setHash := func(u *store.User) error { u.PasswordHash = "reset"; return nil }
		if _, err := st.UpdateUser(ctx, alice.ID, setHash, true, t0); err != nil {
			t.Fatal(err)
		}
		known("after an update of the password", t0.Add(-time.Hour), false)
		// A login that checked the password before that change records nothing.
		login(t0.Add(time.Minute))
		known("after a login with the old hash", t0.Add(-time.Hour), false)

		hash = "reset"
		login(t0.Add(time.Minute))
		known("after a login with the new hash", t0.Add(-time.Hour), true)
		mustCreateSession(t, st, alice.ID, "S1", t0.Add(time.Hour))
		if _, _, err := changePassword(st, alice.ID, hash, "changed", "S1", t0); err != nil {
			t.Fatal(err)
		}
		known("after a change of her own password", t0.Add(-time.Hour), false)
	})
}

// TestReserveLoginAttemptRace reserves many attempts at once for one account, and for one IP
// under many accounts, through two handles on one database (two instances): exactly the limit
// get through.
func TestReserveLoginAttemptRace(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			instances := twoInstances(t, backend)
			const n, limit = 30, 5
			race := func(name string, attempt func(i int) store.LoginAttempt) {
				var wg sync.WaitGroup
				var mu sync.Mutex
				reserved := 0
				for i := range n {
					wg.Go(func() {
						r, err := instances[i%2].ReserveLoginAttempt(context.Background(), attempt(i))
						if err != nil {
							t.Error(err)
							return
						}
						if r.Reserved {
							mu.Lock()
							reserved++
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if reserved != limit {
					t.Errorf("%s: %d of %d parallel attempts reserved, want %d", name, reserved, n, limit)
				}
			}
			// A few rounds, each on fresh keys: one round without the serialisation lets
			// an extra attempt through only most of the time.
			for round := range 3 {
				r := strconv.Itoa(round)
				race("one account", func(i int) store.LoginAttempt {
					return store.LoginAttempt{Account: "alice" + r, IP: "10." + r + ".0." + strconv.Itoa(i), At: t0, Since: t0.Add(-time.Hour), AccountLimit: limit, IPLimit: limit}
				})
				race("one IP", func(i int) store.LoginAttempt {
					return store.LoginAttempt{Account: "user" + r + "-" + strconv.Itoa(i), IP: "10.100.0." + r, At: t0, Since: t0.Add(-time.Hour), AccountLimit: limit, IPLimit: limit}
				})
			}
		})
	}
}

// TestConcurrentLoginsSucceed: many logins of one account from one IP, each reserving its
// attempt and then succeeding, all at once on two instances, never fail (on PostgreSQL they
// once aborted each other with "deadlock detected": each deleted its own reservation, then
// waited for the other's while clearing the account's failures).
func TestConcurrentLoginsSucceed(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			instances := twoInstances(t, backend)
			ctx := context.Background()
			u := store.User{Username: "alice", IsActive: true}
			if err := instances[0].CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			const workers, rounds = 12, 40
			for round := range rounds {
				var wg sync.WaitGroup
				for i := range workers {
					wg.Go(func() {
						st := instances[i%2]
						now := time.Now()
						r, err := st.ReserveLoginAttempt(ctx, store.LoginAttempt{Account: "alice", IP: "192.0.2.1",
							At: now, Since: now.Add(-time.Hour), AccountLimit: workers, IPLimit: workers})
						if err != nil || !r.Reserved {
							t.Errorf("round %d: reserve: %v (reserved %v)", round, err, r.Reserved)
							return
						}
						if err := st.LoginSucceeded(ctx, r, u.ID, u.PasswordHash, "alice", "192.0.2.1", now); err != nil {
							t.Errorf("round %d: login succeeded: %v", round, err)
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestThrottledAttemptsCounted: refusals are counted in one audit row per action, window and
// IP, and account when its limit refused: 2,000 of them at once, through two instances on
// one database, make one row whose count is exactly 2,000, with the first and last times.
// Refusals for the IP's failures make one row whatever the username. The retention prune
// goes by the last time.
func TestThrottledAttemptsCounted(t *testing.T) {
	const n, workers = 2000, 8
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			instances := twoInstances(t, backend)
			st := instances[0]
			ctx := context.Background()
			alice := mustCreateUser(t, st, "Alice")
			window := 15 * time.Minute
			start := t0.Truncate(window) // every attempt within one window
			attempt := func(account, ip string, at time.Time, accountLimit, ipLimit int) store.LoginAttempt {
				return store.LoginAttempt{Account: account, IP: ip, At: at, Since: at.Add(-window),
					AccountLimit: accountLimit, IPLimit: ipLimit,
					Failure:   store.AuditEvent{Action: "login.failed", Outcome: "failure", IP: ip, UserAgent: "ua"},
					Throttled: store.AuditEvent{Action: "login.throttled", Outcome: "failure", IP: ip, UserAgent: "ua"}}
			}
			if r := mustReserve(t, st, attempt("alice", "192.0.2.1", start, 1, -1)); !r.Reserved {
				t.Fatalf("first failure: %+v", r)
			}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < n; i += workers {
						at := start.Add(time.Duration(i+1) * time.Millisecond)
						r, err := instances[i%2].ReserveLoginAttempt(ctx, attempt("alice", "192.0.2.1", at, 1, -1))
						if err != nil || r.Reserved {
							t.Errorf("refusal %d: %+v, %v", i, r, err)
							return
						}
					}
				})
			}
			wg.Wait()
			throttled := func(what string, want ...string) []store.AuditEvent {
				t.Helper()
				events, _, err := st.AuditEvents(ctx, store.AuditFilter{Actions: []string{"login.throttled"}})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range events {
					got = append(got, fmt.Sprintf("count=%d target=%d ip=%s ua=%s first=%s last=%s", e.Count, e.TargetID, e.IP, e.UserAgent,
						e.FirstAt.Sub(start), e.At.Sub(start)))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: throttled events, newest first:\n got %q\nwant %q", what, got, want)
				}
				return events
			}
			last := time.Duration(n) * time.Millisecond
			aliceRow := fmt.Sprintf("count=%d target=%d ip=192.0.2.1 ua=ua first=1ms last=%s", n, alice.ID, last)
			throttled("one account, one IP, one window", aliceRow)

			// Locked out by the IP's failures: one row for the IP, whatever the username, naming
			// no account; an IPv6 client as its /64.
			ip6 := "2001:db8:1:2::/64"
			if r := mustReserve(t, st, attempt("bob", ip6, start, -1, 1)); !r.Reserved {
				t.Fatalf("bob's failure: %+v", r)
			}
			for i := range 50 {
				at := start.Add(time.Duration(i+1) * time.Millisecond)
				mustReserve(t, st, attempt(fmt.Sprintf("user%d", i), ip6, at, -1, 1))
			}
			ipRow := fmt.Sprintf("count=50 target=0 ip=%s ua=ua first=1ms last=50ms", ip6)
			throttled("one IP, many usernames", aliceRow, ipRow)

			// The next window starts a row of its own.
			if r := mustReserve(t, st, attempt("alice", "192.0.2.1", start.Add(window+time.Minute), 1, -1)); !r.Reserved {
				t.Fatalf("failure in the next window: %+v", r)
			}
			mustReserve(t, st, attempt("alice", "192.0.2.1", start.Add(window+time.Minute+time.Second), 1, -1))
			nextRow := fmt.Sprintf("count=1 target=%d ip=192.0.2.1 ua=ua first=16m1s last=16m1s", alice.ID)
			throttled("the next window", nextRow, aliceRow, ipRow)

			// The prune goes by the last time: a row whose first time is older stays.
			if _, err := st.PruneAuditEvents(ctx, start.Add(last)); err != nil {
				t.Fatal(err)
			}
			throttled("after a prune before the last time", nextRow, aliceRow)
			if _, err := st.PruneAuditEvents(ctx, start.Add(last+time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			throttled("after a prune past the last time", nextRow)
		})
	}
}
