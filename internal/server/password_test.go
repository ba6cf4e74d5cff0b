package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/server"
)

const newPassphrase = "a brand new passphrase"

// changePassword sends a password change with access.
func (e *testEnv) changePassword(t *testing.T, access, old, new string) *client.ChangePasswordResponse {
	t.Helper()
	r, err := e.client.ChangePasswordWithResponse(context.Background(), client.PasswordChange{OldPassword: old, NewPassword: new}, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mustLoginWith is mustLogin with another password than demoPassword.
func (e *testEnv) mustLoginWith(t *testing.T, username, password string) client.TokenPair {
	t.Helper()
	r := e.login(t, username, password)
	if r.JSON200 == nil {
		t.Fatalf("login %s: status %d, body %s", username, r.StatusCode(), r.Body)
	}
	return *r.JSON200
}

// TestChangePassword: a password change ends every session of the user, the one that made it
// too, and answers with the pair of a new session, which works (access and refresh); other
// users are untouched; the old password stops working and the new one works.
func TestChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "bob", regular)
		current := e.mustLogin(t, "alice")
		others := []client.TokenPair{e.mustLogin(t, "alice"), e.mustLogin(t, "alice")}
		bob := e.mustLogin(t, "bob")

		r := e.changePassword(t, current.Access, demoPassword, newPassphrase)
		if r.JSON200 == nil {
			t.Fatalf("change password: %d %s", r.StatusCode(), r.Body)
		}
		next := *r.JSON200
		if sid(t, next.Access) == sid(t, current.Access) || sid(t, next.Refresh) != sid(t, next.Access) {
			t.Fatalf("the new pair's sessions: access %s, refresh %s; want one new session (the old was %s)",
				sid(t, next.Access), sid(t, next.Refresh), sid(t, current.Access))
		}
		for i, o := range append([]client.TokenPair{current}, others...) {
			w, _ := e.client.WelcomeWithResponse(ctx, bearer(o.Access))
			wantError(t, fmt.Sprint("session ", i, " access"), w.StatusCode(), w.Body, 401, "token_not_valid")
			r := refresh(t, e, o.Refresh)
			wantError(t, fmt.Sprint("session ", i, " refresh"), r.StatusCode(), r.Body, 401, "token_not_valid")
		}
		if got := getAccount(t, e, bob.Access); got != http.StatusOK {
			t.Fatalf("another user after the change: %d", got)
		}
		if got := getAccount(t, e, next.Access); got != http.StatusOK {
			t.Fatalf("the new pair's access: %d, want 200", got)
		}
		rr := refresh(t, e, next.Refresh)
		if rr.JSON200 == nil || rr.JSON200.Refresh == nil {
			t.Fatalf("refresh of the new pair: %d %s", rr.StatusCode(), rr.Body)
		}
		l, _ := e.client.ListSessionsWithResponse(ctx, bearer(rr.JSON200.Access))
		if l.JSON200 == nil || len(*l.JSON200) != 1 || (*l.JSON200)[0].Id != sid(t, next.Access) || !(*l.JSON200)[0].Current {
			t.Errorf("sessions after the change: %s, want only the new one", l.Body)
		}
		old := e.login(t, "alice", demoPassword)
		wantError(t, "login with the old password", old.StatusCode(), old.Body, 401, "authentication_failed")
		if n := e.login(t, "alice", newPassphrase); n.JSON200 == nil {
			t.Fatalf("login with the new password: %d %s", n.StatusCode(), n.Body)
		}
	})
}

// TestChangePasswordEvictsThief: a thief who copied the owner's refresh token and refreshed
// it shares the owner's session; the owner's password change ends it, so neither the thief's
// refresh token nor the access token it got works, on this instance or another, while the
// owner's new pair does.
func TestChangePasswordEvictsThief(t *testing.T) {
	forEachBackendOnly(t, func(t *testing.T, backend string) {
		in := newInstances(t, backend)
		e := in.a
		e.mustUser(t, "alice", regular)
		owner := e.mustLogin(t, "alice") // A0, R0
		stolen := refresh(t, e, owner.Refresh)
		if stolen.JSON200 == nil || stolen.JSON200.Refresh == nil {
			t.Fatalf("the thief's refresh: %d %s", stolen.StatusCode(), stolen.Body)
		}
		thief := client.TokenPair{Access: stolen.JSON200.Access, Refresh: *stolen.JSON200.Refresh} // A1, R1
		for _, x := range []*testEnv{in.a, in.b} {
			mustCache(t, x, thief.Access, getAccount)
		}

		r := e.changePassword(t, owner.Access, demoPassword, newPassphrase)
		if r.JSON200 == nil {
			t.Fatalf("change password: %d %s", r.StatusCode(), r.Body)
		}
		for _, x := range []*testEnv{in.a, in.b} {
			waitStatus(t, "the thief's access", x, thief.Access, getAccount, http.StatusUnauthorized)
			if got := getAccount(t, x, r.JSON200.Access); got != http.StatusOK {
				t.Errorf("the owner's new access: %d, want 200", got)
			}
		}
		rr := refresh(t, in.b, thief.Refresh)
		wantError(t, "the thief's refresh token", rr.StatusCode(), rr.Body, 401, "token_not_valid")
		if rr := refresh(t, in.b, r.JSON200.Refresh); rr.JSON200 == nil {
			t.Errorf("the owner's new refresh token: %d %s", rr.StatusCode(), rr.Body)
		}
	})
}

// TestChangePasswordFieldErrors: every field at fault is reported at once, in the Error body's
// fields; nothing changes.
func TestChangePasswordFieldErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		current := e.mustLogin(t, "alice")
		other := e.mustLogin(t, "alice")
		const wrong = "Your old password was entered incorrectly. Please enter it again."
		for _, tc := range []struct {
			name, body string
			code       string
			fields     map[string][]string
		}{
			{"wrong old, weak new", `{"old_password":"not it","new_password":"1234"}`, "invalid", map[string][]string{
				"old_password": {wrong},
				"new_password": {"This password is too short. It must contain at least 8 characters.", "This password is too common.", "This password is entirely numeric."},
			}},
			{"both blank", `{"old_password":"","new_password":""}`, "invalid", map[string][]string{
				"old_password": {"This field may not be blank."}, "new_password": {"This field may not be blank."},
			}},
			{"both missing", `{}`, "invalid", map[string][]string{
				"old_password": {"This field is required."}, "new_password": {"This field is required."},
			}},
			{"blank old, weak new", `{"old_password":"","new_password":"alice-seed"}`, "invalid", map[string][]string{
				"old_password": {"This field may not be blank."}, "new_password": {"The password is too similar to the username."},
			}},
			{"right old, weak new", `{"old_password":"` + demoPassword + `","new_password":"password"}`, "invalid_password", map[string][]string{
				"new_password": {"This password is too common."},
			}},
			{"wrong old, good new", `{"old_password":"not it","new_password":"` + newPassphrase + `"}`, "invalid", map[string][]string{
				"old_password": {wrong},
			}},
			{"unknown field", `{"old_password":"` + demoPassword + `","new_password":"` + newPassphrase + `","is_staff":true}`, "invalid", map[string][]string{
				"is_staff": {"Unknown field."},
			}},
		} {
			r, body := e.do(t, http.MethodPost, "/api/v1/account/password/", "application/json", tc.body, "Authorization", "Bearer "+current.Access)
			got := wantError(t, tc.name, r.StatusCode, body, 400, tc.code)
			if got.Fields == nil {
				t.Errorf("%s: no fields; body %s", tc.name, body)
				continue
			}
			for name, want := range tc.fields {
				if msgs := (*got.Fields)[name]; !sameMessages(msgs, want) {
					t.Errorf("%s: %s = %q, want %q", tc.name, name, msgs, want)
				}
			}
			if len(*got.Fields) != len(tc.fields) {
				t.Errorf("%s: fields %v, want only %v", tc.name, *got.Fields, tc.fields)
			}
		}
		if got := getAccount(t, e, other.Access); got != http.StatusOK {
			t.Fatalf("another session after refused changes: %d", got)
		}
		if r := e.login(t, "alice", demoPassword); r.JSON200 == nil {
			t.Fatalf("the old password after refused changes: %d %s", r.StatusCode(), r.Body)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 100 }))
}

// sameMessages compares messages ignoring order, as the policy's order is not the contract.
func sameMessages(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// TestChangePasswordThrottled sends wrong old passwords all at once: exactly the per-account
// limit are checked (400), the rest are throttled (429 with Retry-After); the failures count
// as failed logins, and a right password is throttled too until the window has passed.
func TestChangePasswordThrottled(t *testing.T) {
	const n, limit = 20, 5
	forEachBackendSlowHash(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", regular)
		current := e.mustLogin(t, "alice")
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			start  = make(chan struct{})
			counts = map[int]int{}
		)
		for i := range n {
			wg.Go(func() {
				<-start
				r, err := e.client.ChangePasswordWithResponse(context.Background(),
					client.PasswordChange{OldPassword: "wrong password " + strconv.Itoa(i), NewPassword: newPassphrase}, bearer(current.Access))
				if err != nil {
					t.Error(err)
					return
				}
				switch r.StatusCode() {
				case 400:
					wantError(t, "checked", r.StatusCode(), r.Body, 400, "invalid")
				case 429:
					wantError(t, "throttled", r.StatusCode(), r.Body, 429, "throttled")
					if secs, err := strconv.Atoi(r.HTTPResponse.Header.Get("Retry-After")); err != nil || secs < 1 {
						t.Errorf("Retry-After %q", r.HTTPResponse.Header.Get("Retry-After"))
					}
				}
				mu.Lock()
				counts[r.StatusCode()]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if counts[400] != limit || counts[429] != n-limit {
			t.Fatalf("statuses %v, want %d × 400 and %d × 429", counts, limit, n-limit)
		}
		r := e.changePassword(t, current.Access, demoPassword, newPassphrase)
		wantError(t, "the right password while throttled", r.StatusCode(), r.Body, 429, "throttled")
		l := e.login(t, "alice", demoPassword)
		wantError(t, "a login while throttled", l.StatusCode(), l.Body, 429, "throttled")

		e.clock.Add(5*time.Minute + time.Second)
		if r := e.changePassword(t, current.Access, demoPassword, newPassphrase); r.JSON200 == nil {
			t.Fatalf("after the window: %d %s", r.StatusCode(), r.Body)
		}
		// One event per answer: each checked wrong password, each refusal (all counted in one
		// row), the change.
		for action, want := range map[audit.Action][2]int{ // rows, events
			audit.PasswordChangeFailed: {limit, limit}, audit.PasswordChangeThrottled: {1, n - limit + 1},
			audit.LoginThrottled: {1, 1}, audit.PasswordChanged: {1, 1}, audit.LoginFailed: {0, 0},
		} {
			events := e.auditEvents(t, action)
			var count int64
			for _, ev := range events {
				count += ev.Count
			}
			if len(events) != want[0] || count != int64(want[1]) {
				t.Errorf("%d %s rows counting %d events, want %d counting %d", len(events), action, count, want[0], want[1])
			}
			for _, ev := range events {
				if action != audit.LoginThrottled && (ev.ActorID != alice.ID || ev.SessionID != sid(t, current.Access)) || ev.TargetID != alice.ID {
					t.Errorf("%s event %+v, want alice's own, from her session", action, ev)
				}
			}
		}
	}, withConfig(func(c *server.Config) {
		c.LoginFailuresPerAccount, c.LoginFailuresPerIP, c.LoginFailureWindow = limit, 1000, 5*time.Minute
	}))
}

// TestChangePasswordCountsWithLogins: failed logins lock the password change of the account,
// as failed password checks lock its logins.
func TestChangePasswordCountsWithLogins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		current := e.mustLogin(t, "alice")
		for range 2 {
			l := e.login(t, "alice", "wrong")
			wantError(t, "failed login", l.StatusCode(), l.Body, 401, "authentication_failed")
		}
		r := e.changePassword(t, current.Access, "wrong", newPassphrase)
		wantError(t, "third failure", r.StatusCode(), r.Body, 400, "invalid")
		r = e.changePassword(t, current.Access, demoPassword, newPassphrase)
		wantError(t, "after three failures", r.StatusCode(), r.Body, 429, "throttled")
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 3 }))
}

// TestChangePasswordRacesLogins keeps logging in with the old password while the password
// changes: every session those logins started is dead afterwards (revoked by the change, or
// refused because it came too late); only the change's new session and the new password work.
func TestChangePasswordRacesLogins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", regular)
		current := e.mustLogin(t, "alice")
		logins, refusals := 1, 0 // the audit events so far
		old := demoPassword
		for round := range 5 {
			next := fmt.Sprintf("%s, round %d", newPassphrase, round)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				started []client.TokenPair
				refused int
				changed = make(chan struct{})
			)
			for range 4 {
				wg.Go(func() {
					// Log in until a login that began after the change is refused.
					for {
						select {
						case <-changed:
							r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: old})
							if err != nil || r.StatusCode() != http.StatusUnauthorized {
								t.Errorf("a login after the change: %v %v", err, r.StatusCode())
							}
							mu.Lock()
							refused++
							mu.Unlock()
							return
						default:
						}
						r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: old})
						switch {
						case err != nil:
							t.Error(err)
							return
						case r.JSON200 != nil:
							mu.Lock()
							started = append(started, *r.JSON200)
							mu.Unlock()
						case r.StatusCode() != http.StatusUnauthorized:
							t.Errorf("login: %d %s", r.StatusCode(), r.Body)
							return
						default:
							mu.Lock()
							refused++
							mu.Unlock()
						}
					}
				})
			}
			r := e.changePassword(t, current.Access, old, next)
			if r.JSON200 == nil {
				t.Fatalf("round %d: change: %d %s", round, r.StatusCode(), r.Body)
			}
			current = *r.JSON200
			close(changed)
			wg.Wait()
			for i, p := range started {
				if got := getAccount(t, e, p.Access); got != http.StatusUnauthorized {
					t.Fatalf("round %d: session %d of %d logged in with the old password answers %d after the change",
						round, i, len(started), got)
				}
			}
			if live := e.liveSessionIDs(t, alice.ID); !slices.Equal(live, []string{sid(t, current.Access)}) {
				t.Fatalf("round %d: live sessions %v, want only the change's new one", round, live)
			}
			// Every answer is in the audit log: a login refused because the password changed
			// after its check is a failed login too.
			succeeded, failed := len(e.auditEvents(t, audit.LoginSucceeded)), len(e.auditEvents(t, audit.LoginFailed))
			if succeeded != logins+len(started) || failed != refusals+refused {
				t.Fatalf("round %d: %d logins and %d refusals logged, want %d and %d",
					round, succeeded, failed, logins+len(started), refusals+refused)
			}
			logins, refusals = succeeded, failed
			old = next
		}
		if r := e.login(t, "alice", old); r.JSON200 == nil {
			t.Fatalf("the last new password: %d %s", r.StatusCode(), r.Body)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = -1, -1 }))
}

// TestConcurrentPasswordChanges: two changes from the same old password at once, from one
// session (a double submit) or two: exactly one succeeds; the other is refused (its old
// password is no longer right, or its session was revoked by the first); the winner's
// password is the password.
func TestConcurrentPasswordChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		old := demoPassword
		wantFailures := 0
		for round := range 10 {
			a := e.mustLoginWith(t, "alice", old)
			b := a
			if round%2 == 1 {
				b = e.mustLoginWith(t, "alice", old)
			}
			news := [2]string{fmt.Sprintf("first choice %d", round), fmt.Sprintf("second choice %d", round)}
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				statuses [2]int
			)
			for i, p := range []client.TokenPair{a, b} {
				wg.Go(func() {
					<-start
					r, err := e.client.ChangePasswordWithResponse(context.Background(), client.PasswordChange{OldPassword: old, NewPassword: news[i]}, bearer(p.Access))
					if err != nil {
						t.Error(err)
						return
					}
					statuses[i] = r.StatusCode()
				})
			}
			close(start)
			wg.Wait()
			winner := slices.Index(statuses[:], http.StatusOK)
			if winner < 0 || statuses[1-winner] == http.StatusOK ||
				statuses[1-winner] != http.StatusBadRequest && statuses[1-winner] != http.StatusUnauthorized {
				t.Fatalf("round %d: statuses %v, want one 200 and one 400 or 401", round, statuses)
			}
			if r := e.login(t, "alice", news[1-winner]); r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("round %d: the loser's password logs in: %d", round, r.StatusCode())
			}
			if r := e.login(t, "alice", news[winner]); r.JSON200 == nil {
				t.Fatalf("round %d: the winner's password: %d %s", round, r.StatusCode(), r.Body)
			}
			// The change is logged once; a loser refused for its old password as a failure.
			changes, failures := len(e.auditEvents(t, audit.PasswordChanged)), len(e.auditEvents(t, audit.PasswordChangeFailed))
			if statuses[1-winner] == http.StatusBadRequest {
				wantFailures++
			}
			if changes != round+1 || failures != wantFailures {
				t.Fatalf("round %d (statuses %v): %d password.changed and %d password.change_failed events, want %d and %d",
					round, statuses, changes, failures, round+1, wantFailures)
			}
			old = news[winner]
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = -1, -1 }))
}
