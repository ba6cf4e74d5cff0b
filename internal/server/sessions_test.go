package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
)

// sid is the session id of an access or refresh token.
func sid(t *testing.T, tok string) string {
	t.Helper()
	s, ok := decodeSegment(t, tok, 1)["sid"].(string)
	if !ok {
		t.Fatalf("token without sid: %s", tok)
	}
	return s
}

// liveSessionIDs reads a user's live sessions from the store, newest first.
func (e *testEnv) liveSessionIDs(t *testing.T, userID int64) []string {
	t.Helper()
	live, err := e.store.LiveSessions(context.Background(), userID, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(live))
	for i, s := range live {
		ids[i] = s.ID
	}
	return ids
}

// TestAdminOperationPermissions is the matrix of who may call the operations for a user's
// sessions, the password change and the signing keys: anonymous, a user, staff, a superuser.
// A refused call changes nothing, and writes no audit event.
func TestAdminOperationPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		tokens := map[string]string{}
		for name, r := range map[string]role{"root": superRole, "staff": staffRole, "alice": regular} {
			e.mustUser(t, name, r)
			tokens[name] = e.mustLogin(t, name).Access
		}
		target := e.mustUser(t, "target", regular)
		first := e.mustLogin(t, "target")
		e.mustLogin(t, "target") // a second session, for logout everywhere
		e.clock.Add(time.Second) // a rotated key must not share the first key's creation time
		keysBefore, err := e.store.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}

		type call func(auth ...client.RequestEditorFn) (int, []byte)
		liveTarget := func(want int) func(t *testing.T) {
			return func(t *testing.T) {
				if got := len(e.liveSessionIDs(t, target.ID)); got != want {
					t.Fatalf("target has %d live sessions, want %d", got, want)
				}
			}
		}
		keyCount := func(t *testing.T) {
			if keys, _ := e.store.SigningKeys(ctx); len(keys) != len(keysBefore) {
				t.Fatalf("%d signing keys, want %d", len(keys), len(keysBefore))
			}
		}
		for _, tc := range []struct {
			op    string
			call  call
			want  map[string]int // by caller; "" is anonymous
			after func(t *testing.T)
		}{
			{"list user sessions", func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.ListUserSessionsWithResponse(ctx, target.ID, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, map[string]int{"": 401, "alice": 403, "staff": 200, "root": 200}, nil},
			{"revoke user session", func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.RevokeUserSessionWithResponse(ctx, target.ID, sid(t, first.Access), a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, map[string]int{"": 401, "alice": 403, "staff": 403, "root": 204}, liveTarget(2)},
			{"log a user out everywhere", func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.LogoutUserEverywhereWithResponse(ctx, target.ID, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, map[string]int{"": 401, "alice": 403, "staff": 403, "root": 204}, liveTarget(1)},
			{"list signing keys", func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.ListSigningKeysWithResponse(ctx, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, map[string]int{"": 401, "alice": 403, "staff": 403, "root": 200}, nil},
			{"rotate signing key", func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.RotateSigningKeyWithResponse(ctx, client.KeyRotateRequest{}, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, map[string]int{"": 401, "alice": 403, "staff": 403, "root": 201}, keyCount},
		} {
			// Refusals first, then the checks that they changed nothing, then the successes.
			eventsBefore := len(e.auditEvents(t))
			for _, who := range []string{"", "alice", "staff", "root"} {
				if who == "root" {
					if tc.after != nil {
						tc.after(t)
					}
					if n := len(e.auditEvents(t)); n != eventsBefore {
						t.Fatalf("%s: the refused calls wrote %d audit events", tc.op, n-eventsBefore)
					}
				}
				var auth []client.RequestEditorFn
				if who != "" {
					auth = append(auth, bearer(tokens[who]))
				}
				status, body := tc.call(auth...)
				what := fmt.Sprintf("%s as %q", tc.op, who)
				switch want := tc.want[who]; want {
				case 401:
					wantError(t, what, status, body, 401, "not_authenticated")
				case 403:
					wantError(t, what, status, body, 403, "permission_denied")
				default:
					if status != want {
						t.Fatalf("%s: status %d, want %d; body %s", what, status, want, body)
					}
				}
			}
		}
		if live := e.liveSessionIDs(t, target.ID); len(live) != 0 {
			t.Errorf("target's sessions %v live after logout everywhere", live)
		}

		// Every authenticated user may change their own password; nobody anonymous may.
		r, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "a brand new passphrase"})
		mustNoErr(t, err)
		wantError(t, "change password anonymously", r.StatusCode(), r.Body, 401, "not_authenticated")
		for _, who := range []string{"alice", "staff", "root"} {
			r, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "a brand new passphrase"}, bearer(tokens[who]))
			mustNoErr(t, err)
			if r.StatusCode() != http.StatusOK {
				t.Errorf("change password as %s: status %d, body %s", who, r.StatusCode(), r.Body)
			}
		}
	})
}

// TestUserSessions: staff read a user's live sessions; a superuser revokes one (its tokens die
// at once, the others live) or all; unknown users and other users' sessions are not found.
func TestUserSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		e.mustUser(t, "staff", staffRole)
		alice := e.mustUser(t, "alice", regular)
		bob := e.mustUser(t, "bob", regular)
		root := e.mustLogin(t, "root")
		staff := bearer(e.mustLogin(t, "staff").Access)
		laptop := e.mustLogin(t, "alice")
		e.clock.Add(time.Second)
		phone := e.mustLogin(t, "alice")
		bobs := e.mustLogin(t, "bob")

		l, err := e.client.ListUserSessionsWithResponse(ctx, alice.ID, staff)
		mustNoErr(t, err)
		if l.JSON200 == nil || len(*l.JSON200) != 2 {
			t.Fatalf("list alice's sessions: %d %s", l.StatusCode(), l.Body)
		}
		list := *l.JSON200
		if list[0].Id != sid(t, phone.Access) || list[1].Id != sid(t, laptop.Access) || list[0].Current || list[1].Current {
			t.Errorf("sessions %+v: want phone then laptop, neither current", list)
		}
		if list[0].Ip != "127.0.0.1" || list[0].UserAgent == "" || !list[0].Expires.After(list[0].Created) || list[0].LastUsed.IsZero() {
			t.Errorf("session details %+v", list[0])
		}
		// current marks the caller's own session only.
		rootID := e.mustUserID(t, "root")
		own, err := e.client.ListUserSessionsWithResponse(ctx, rootID, bearer(root.Access))
		mustNoErr(t, err)
		if own.JSON200 == nil || len(*own.JSON200) != 1 || !(*own.JSON200)[0].Current {
			t.Errorf("root's own sessions: %s, want one, current", own.Body)
		}

		for _, id := range []int64{999999, bob.ID + 1000} {
			l, err := e.client.ListUserSessionsWithResponse(ctx, id, staff)
			mustNoErr(t, err)
			wantError(t, "list sessions of an unknown user", l.StatusCode(), l.Body, 404, "not_found")
			d, err := e.client.RevokeUserSessionWithResponse(ctx, id, sid(t, laptop.Access), bearer(root.Access))
			mustNoErr(t, err)
			wantError(t, "revoke a session of an unknown user", d.StatusCode(), d.Body, 404, "not_found")
			o, err := e.client.LogoutUserEverywhereWithResponse(ctx, id, bearer(root.Access))
			mustNoErr(t, err)
			wantError(t, "log out an unknown user", o.StatusCode(), o.Body, 404, "not_found")
		}
		// Bob's session named under alice: not found, and bob stays logged in.
		d, err := e.client.RevokeUserSessionWithResponse(ctx, alice.ID, sid(t, bobs.Access), bearer(root.Access))
		mustNoErr(t, err)
		wantError(t, "bob's session under alice", d.StatusCode(), d.Body, 404, "not_found")
		if got := getAccount(t, e, bobs.Access); got != http.StatusOK {
			t.Fatalf("bob after a refused revoke: %d", got)
		}

		d, err = e.client.RevokeUserSessionWithResponse(ctx, alice.ID, sid(t, laptop.Access), bearer(root.Access))
		mustNoErr(t, err)
		if d.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke laptop: %d %s", d.StatusCode(), d.Body)
		}
		w, _ := e.client.WelcomeWithResponse(ctx, bearer(laptop.Access))
		wantError(t, "laptop access after the revoke", w.StatusCode(), w.Body, 401, "token_not_valid")
		rr := refresh(t, e, laptop.Refresh)
		wantError(t, "laptop refresh after the revoke", rr.StatusCode(), rr.Body, 401, "token_not_valid")
		if got := getAccount(t, e, phone.Access); got != http.StatusOK {
			t.Fatalf("phone after the laptop's revoke: %d", got)
		}
		d, err = e.client.RevokeUserSessionWithResponse(ctx, alice.ID, sid(t, laptop.Access), bearer(root.Access))
		mustNoErr(t, err)
		wantError(t, "revoke twice", d.StatusCode(), d.Body, 404, "not_found")

		o, err := e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, bearer(root.Access))
		mustNoErr(t, err)
		if o.StatusCode() != http.StatusNoContent {
			t.Fatalf("log alice out everywhere: %d %s", o.StatusCode(), o.Body)
		}
		if got := getAccount(t, e, phone.Access); got != http.StatusUnauthorized {
			t.Fatalf("phone after logout everywhere: %d, want 401", got)
		}
		if got := getAccount(t, e, bobs.Access); got != http.StatusOK {
			t.Fatalf("bob after alice's logout everywhere: %d", got)
		}
		// A user without sessions: still 204, nothing to revoke.
		o, err = e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, bearer(root.Access))
		mustNoErr(t, err)
		if o.StatusCode() != http.StatusNoContent {
			t.Fatalf("log alice out everywhere again: %d %s", o.StatusCode(), o.Body)
		}
		if l, _ := e.client.ListUserSessionsWithResponse(ctx, alice.ID, staff); l.JSON200 == nil || len(*l.JSON200) != 0 {
			t.Errorf("alice's sessions after logout everywhere: %s", l.Body)
		}
	})
}

// mustUserID finds a user's id in the store.
func (e *testEnv) mustUserID(t *testing.T, username string) int64 {
	t.Helper()
	u, err := e.store.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestConcurrentAdminRevocations: two superusers revoke the same session at once (exactly one
// revokes it, the other finds it gone), and log the same user out everywhere at once (both
// succeed, nothing survives), while the user keeps logging in.
func TestConcurrentAdminRevocations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		rootIDs := []int64{e.mustUser(t, "root", superRole).ID, e.mustUser(t, "root2", superRole).ID}
		alice := e.mustUser(t, "alice", regular)
		admins := []client.RequestEditorFn{bearer(e.mustLogin(t, "root").Access), bearer(e.mustLogin(t, "root2").Access)}
		for round := range 5 {
			victim := e.mustLogin(t, "alice")
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				statuses [2]int
			)
			for i, admin := range admins {
				wg.Go(func() {
					<-start
					r, err := e.client.RevokeUserSessionWithResponse(ctx, alice.ID, sid(t, victim.Access), admin)
					if err != nil {
						t.Error(err)
						return
					}
					statuses[i] = r.StatusCode()
				})
			}
			close(start)
			wg.Wait()
			if got := map[int]int{statuses[0]: 1, statuses[1]: 1}; statuses[0] == statuses[1] || got[204] != 1 || got[404] != 1 {
				t.Fatalf("round %d: two revokes of one session answered %v, want one 204 and one 404", round, statuses)
			}
			if got := getAccount(t, e, victim.Access); got != http.StatusUnauthorized {
				t.Fatalf("round %d: the revoked session answers %d", round, got)
			}
			// One event, by the superuser who revoked it.
			events := e.auditEvents(t, audit.SessionRevoked)
			if len(events) != round+1 || events[0].SessionID != sid(t, victim.Access) || events[0].TargetID != alice.ID ||
				events[0].ActorID != rootIDs[slices.Index(statuses[:], 204)] {
				t.Fatalf("round %d: session.revoked events %+v, want one more, for the session, by the superuser who got 204 (%v)",
					round, events, statuses)
			}
		}

		for round := range 5 {
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				statuses [2]int
				mu       sync.Mutex
				logins   []client.TokenPair
			)
			for range 3 {
				logins = append(logins, e.mustLogin(t, "alice"))
			}
			for i, admin := range admins {
				wg.Go(func() {
					<-start
					r, err := e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, admin)
					if err != nil {
						t.Error(err)
						return
					}
					statuses[i] = r.StatusCode()
				})
			}
			// A login racing the revocations: it ends either revoked or after them, live.
			var late client.TokenPair
			wg.Go(func() {
				<-start
				r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
				if err != nil || r.JSON200 == nil {
					t.Errorf("racing login: %v", err)
					return
				}
				mu.Lock()
				late = *r.JSON200
				mu.Unlock()
			})
			close(start)
			wg.Wait()
			if statuses != [2]int{204, 204} {
				t.Fatalf("round %d: two logouts everywhere answered %v, want 204 twice", round, statuses)
			}
			for i, p := range logins {
				if got := getAccount(t, e, p.Access); got != http.StatusUnauthorized {
					t.Fatalf("round %d: session %d answers %d after logout everywhere", round, i, got)
				}
			}
			live := e.liveSessionIDs(t, alice.ID)
			if len(live) > 1 || len(live) == 1 && live[0] != sid(t, late.Access) {
				t.Fatalf("round %d: live sessions %v; only the racing login's may survive", round, live)
			}
			if _, err := e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, admins[0]); err != nil {
				t.Fatal(err)
			}
		}
		// Each logout everywhere that revoked something wrote one event, naming its superuser:
		// the first of each round did.
		events := e.auditEvents(t, audit.LogoutAll)
		if len(events) < 5 || len(events) > 5*3 {
			t.Fatalf("%d logout_all events for 5 rounds of 3 calls", len(events))
		}
		for _, ev := range events {
			if ev.TargetID != alice.ID || !slices.Contains(rootIDs, ev.ActorID) {
				t.Errorf("logout_all event %+v, want alice's by a superuser", ev)
			}
		}
	})
}

// TestUserSessionIDValidated: a session id that cannot be one is a 400 naming sid.
func TestUserSessionIDValidated(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	e.mustUser(t, "root", superRole)
	auth := "Bearer " + e.mustLogin(t, "root").Access
	for _, bad := range []string{"lowercase", "A1B", "A_B"} {
		r, body := e.do(t, http.MethodDelete, "/api/v1/account/management/1/sessions/"+bad+"/", "", "", "Authorization", auth)
		got := wantError(t, bad, r.StatusCode, body, 400, "invalid")
		if got.Fields == nil || len((*got.Fields)["sid"]) == 0 {
			t.Errorf("%s: fields %v, want a message for sid", bad, got.Fields)
		}
	}
}
