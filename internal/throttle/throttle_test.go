package throttle_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/throttle"
)

func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"}, // IPv4-mapped: the IPv4 client
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an ip", "not an ip"},
		{"", ""},
	} {
		if got := throttle.IPKey(tc.ip); got != tc.want {
			t.Errorf("IPKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

func TestAccountKey(t *testing.T) {
	for _, tc := range []struct{ username, want string }{
		{"Alice", "alice"},
		{"ALICE", "alice"},
		{"a\x00b", "a\uFFFDb"},
		{"a\xffb", "a\uFFFDb"},
		{"ａｄｍｉｎ", "admin"}, // fullwidth: NFKC, as the store keys usernames
		{"ＡＤＭＩＮ", "admin"},
	} {
		if got := throttle.AccountKey(tc.username); got != tc.want {
			t.Errorf("AccountKey(%q) = %q, want %q", tc.username, got, tc.want)
		}
	}
}

// TestLogins follows one account through the policy: exact waits, a known IP that failures
// elsewhere do not lock, and an abandoned attempt that does not count.
func TestLogins(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			alice := store.User{Username: "Alice", PasswordHash: "x", IsActive: true, DateJoined: time.Now()}
			if err := st.CreateUser(ctx, &alice); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			l := throttle.NewLogins(st, throttle.Policy{FailuresPerAccount: 3, FailuresPerIP: 10, Window: 15 * time.Minute, KnownIPLifetime: time.Hour}, func() time.Time { return now })
			begin := func(what, username, ip string, wantWait time.Duration) throttle.Attempt {
				t.Helper()
				a, wait, err := l.Begin(ctx, username, audit.Source{IP: ip}, login)
				if err != nil || wait != wantWait {
					t.Fatalf("%s: wait %v, %v; want %v", what, wait, err, wantWait)
				}
				return a
			}
			const a, b, c, d = "203.0.113.1", "2001:db8::1", "198.51.100.1", "192.0.2.1"
			// The owner has logged in from b and d.
			for _, ip := range []string{b, d} {
				if err := begin("owner's first login", "alice", ip, 0).Succeeded(ctx, alice.ID, alice.PasswordHash); err != nil {
					t.Fatal(err)
				}
			}
			t0 := now
			// An attacker fails three times from a, a minute apart (a wrong password leaves the
			// reservation as the failure).
			for range 3 {
				begin("attacker", "ALICE", a, 0)
				now = now.Add(time.Minute)
			}
			// a and the unknown c wait until the first failure leaves the window: 15m - 3m.
			begin("attacker again", "alice", a, 12*time.Minute)
			begin("unknown IP", "alice", c, 12*time.Minute)
			// The owner's IP, in another address of its /64, is not locked.
			if err := begin("owner from b", "alice", "2001:db8::2", 0).Succeeded(ctx, alice.ID, alice.PasswordHash); err != nil {
				t.Fatal(err)
			}
			// An attempt whose password was never checked does not count.
			if err := begin("owner, hasher busy", "alice", b, 0).Abandon(ctx); err != nil {
				t.Fatal(err)
			}
			// The owner's own failures lock b: three, from t0+3m.
			for range 3 {
				begin("owner fails from b", "alice", b, 0)
				now = now.Add(time.Minute)
			}
			begin("b locked by its own failures", "alice", b, 12*time.Minute)
			// Later, three failures from d (known too, so not locked by b's or a's).
			now = now.Add(2 * time.Minute)
			for range 3 {
				begin("fails from d", "alice", d, 0)
				now = now.Add(time.Minute)
			}
			// Now t0+11m. b waits for its own third most recent failure (t0+3m) to leave the
			// window; counting d's newer ones would say 12m. d waits for its own (t0+8m).
			if elapsed := now.Sub(t0); elapsed != 11*time.Minute {
				t.Fatalf("clock at t0+%v", elapsed)
			}
			begin("b after d's failures", "alice", b, 7*time.Minute)
			begin("d", "alice", d, 12*time.Minute)
			// The attacker's IP counts every failure of the account: the third newest is d's first.
			begin("attacker after the owner's failures", "alice", a, 12*time.Minute)

			// Limits off: nothing is counted or recorded.
			off := throttle.NewLogins(st, throttle.Policy{FailuresPerAccount: -1, FailuresPerIP: -1, Window: time.Minute}, time.Now)
			if at, wait, err := off.Begin(ctx, "alice", audit.Source{IP: a}, login); err != nil || wait != 0 || at.Succeeded(ctx, alice.ID, alice.PasswordHash) != nil || at.Abandon(ctx) != nil {
				t.Fatalf("limits off: %v %v", wait, err)
			}
		})
	}
}

// TestLoginEvents checks the audit events of attempts with the limits on (a failure recorded
// with its reservation, a refusal with its count) and off (a failure recorded when reported),
// of a login and of a password change.
func TestLoginEvents(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			alice := store.User{Username: "Alice", PasswordHash: "x", IsActive: true, DateJoined: time.Now()}
			if err := st.CreateUser(ctx, &alice); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			src := audit.Source{IP: "192.0.2.1", UserAgent: "ua"}
			on := throttle.NewLogins(st, throttle.Policy{FailuresPerAccount: 1, FailuresPerIP: -1, Window: time.Hour}, clock)
			a, _, err := on.Begin(ctx, "ALICE", src, login)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Failed(ctx, alice.ID); err != nil { // recorded already: no second event
				t.Fatal(err)
			}
			if _, wait, err := on.Begin(ctx, "alice", src, login); err != nil || wait <= 0 {
				t.Fatalf("second attempt: wait %v, %v; want throttled", wait, err)
			}
			off := throttle.NewLogins(st, throttle.Policy{FailuresPerAccount: -1, FailuresPerIP: -1, Window: time.Hour}, clock)
			a, _, err = off.Begin(ctx, "nobody", src, login)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Failed(ctx, 0); err != nil {
				t.Fatal(err)
			}
			// A password change's check: its own actions, the same limits as a login's.
			if _, wait, err := on.Begin(ctx, "alice", src, passwordChange); err != nil || wait <= 0 {
				t.Fatalf("password change after a failed login: wait %v, %v; want throttled", wait, err)
			}
			a, _, err = off.Begin(ctx, "alice", src, passwordChange)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Failed(ctx, alice.ID); err != nil {
				t.Fatal(err)
			}
			events, _, err := st.AuditEvents(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range events {
				got = append(got, fmt.Sprintf("%s %s target=%d ip=%s ua=%s at=%v", e.Action, e.Outcome, e.TargetID, e.IP, e.UserAgent, e.At.Equal(now)))
			}
			want := []string{
				fmt.Sprintf("password.change_failed failure target=%d ip=192.0.2.1 ua=ua at=true", alice.ID),
				fmt.Sprintf("password.change_throttled failure target=%d ip=192.0.2.1 ua=ua at=true", alice.ID),
				"login.failed failure target=0 ip=192.0.2.1 ua=ua at=true",
				fmt.Sprintf("login.throttled failure target=%d ip=192.0.2.1 ua=ua at=true", alice.ID),
				fmt.Sprintf("login.failed failure target=%d ip=192.0.2.1 ua=ua at=true", alice.ID),
			}
			if !slices.Equal(got, want) {
				t.Errorf("events, newest first:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// The events of a login and of a password change's old-password check, as auth names them.
var (
	login          = throttle.Events{Failed: audit.LoginFailed, Throttled: audit.LoginThrottled}
	passwordChange = throttle.Events{Failed: audit.PasswordChangeFailed, Throttled: audit.PasswordChangeThrottled}
)
