package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// allEvents returns every audit event, oldest first.
func allEvents(t *testing.T, st *store.Store) []store.AuditEvent {
	t.Helper()
	events, total, err := st.AuditEvents(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if int(total) != len(events) {
		t.Fatalf("total %d, %d events", total, len(events))
	}
	slices.Reverse(events)
	return events
}

// brief is what the store tests compare of an event.
func brief(e store.AuditEvent) string {
	return fmt.Sprintf("%s target=%d session=%q key=%q fields=%v", e.Action, e.TargetID, e.SessionID, e.KeyID, e.Fields)
}

func briefs(events []store.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = brief(e)
	}
	return out
}

func TestAuditEventRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		full := store.AuditEvent{
			At: t0, Action: "a.full", Outcome: "success", ActorID: 7, TargetID: 8, SessionID: "S1",
			IP: "2001:db8::1", UserAgent: "agent/1.0 (ünïcode)", KeyID: "kid1", Fields: []string{"email", "is_active"},
		}
		bare := store.AuditEvent{At: t0.Add(time.Second), Action: "a.bare", Outcome: "failure"}
		skipped := store.AuditEvent{At: t0, Outcome: "success"} // no action: nothing to record
		if err := st.RecordAuditEvents(ctx, full, bare, skipped); err != nil {
			t.Fatal(err)
		}
		got := allEvents(t, st)
		if len(got) != 2 {
			t.Fatalf("got %d events, want 2: %+v", len(got), got)
		}
		for i, want := range []store.AuditEvent{full, bare} {
			g := got[i]
			if g.ID == 0 || !g.At.Equal(stored(want.At)) || g.At.Location() != time.UTC {
				t.Errorf("event %d: id %d at %v, want an id and %v in UTC", i, g.ID, g.At, stored(want.At))
			}
			if g.Count != 1 || !g.FirstAt.Equal(g.At) {
				t.Errorf("event %d: count %d, first at %v; want one event, first at %v", i, g.Count, g.FirstAt, g.At)
			}
			g.ID, g.At, want.At, g.Count, g.FirstAt = 0, time.Time{}, time.Time{}, 0, time.Time{}
			if fmt.Sprint(g) != fmt.Sprint(want) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, g, want)
			}
		}
	})
}

func TestAuditEventsFilterAndOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		// Two events share a time: the later ID comes first.
		events := []store.AuditEvent{
			{At: t0, Action: "login.failed", TargetID: 1},
			{At: t0.Add(time.Minute), Action: "login.succeeded", ActorID: 1, TargetID: 1},
			{At: t0.Add(time.Minute), Action: "user.created", ActorID: 2, TargetID: 3},
			{At: t0.Add(2 * time.Minute), Action: "user.deleted", ActorID: 1, TargetID: 3},
			{At: t0.Add(3 * time.Minute), Action: "key.rotated"},
		}
		for _, e := range events {
			if err := st.RecordAuditEvents(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name  string
			f     store.AuditFilter
			want  []string // actions, newest first
			total int64
		}{
			{"all", store.AuditFilter{}, []string{"key.rotated", "user.deleted", "user.created", "login.succeeded", "login.failed"}, 5},
			{"actor or target 1", store.AuditFilter{UserID: 1}, []string{"user.deleted", "login.succeeded", "login.failed"}, 3},
			{"target only 3", store.AuditFilter{UserID: 3}, []string{"user.deleted", "user.created"}, 2},
			{"actor only 2", store.AuditFilter{UserID: 2}, []string{"user.created"}, 1},
			{"actions", store.AuditFilter{Actions: []string{"login.failed", "key.rotated"}}, []string{"key.rotated", "login.failed"}, 2},
			{"since included", store.AuditFilter{Since: t0.Add(2 * time.Minute)}, []string{"key.rotated", "user.deleted"}, 2},
			{"until excluded", store.AuditFilter{Until: t0.Add(time.Minute)}, []string{"login.failed"}, 1},
			{"range", store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"user.deleted", "user.created", "login.succeeded"}, 3},
			{"page", store.AuditFilter{Limit: 2, Offset: 1}, []string{"user.deleted", "user.created"}, 5},
			{"past the end", store.AuditFilter{Limit: 2, Offset: 5}, []string{}, 5},
			{"combined", store.AuditFilter{UserID: 1, Actions: []string{"login.failed", "login.succeeded"}, Since: t0.Add(time.Second)}, []string{"login.succeeded"}, 1},
		} {
			got, total, err := st.AuditEvents(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			actions := []string{}
			for _, e := range got {
				actions = append(actions, e.Action)
			}
			if !slices.Equal(actions, tc.want) || total != tc.total {
				t.Errorf("%s: %v (total %d), want %v (total %d)", tc.name, actions, total, tc.want, tc.total)
			}
		}

		n, err := st.PruneAuditEvents(ctx, t0.Add(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("prune: %d, %v; want 1", n, err)
		}
		if _, total, _ := st.AuditEvents(ctx, store.AuditFilter{}); total != 4 {
			t.Errorf("after prune: %d events, want 4", total)
		}
	})
}

// TestAuditEventsWrittenWithChanges checks that each changing method writes its events with
// the IDs only it knows, and writes none when it changes nothing.
func TestAuditEventsWrittenWithChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ev := func(action string) store.AuditEvent {
			// Target and session are the store's to set: these wrong values must not survive.
			return store.AuditEvent{Action: action, Outcome: "success", ActorID: 99, TargetID: 12345, SessionID: "CALLER"}
		}
		root := mustCreateUser(t, st, "root", superuser)
		alice := store.User{Username: "alice", PasswordHash: "h1", IsActive: true, DateJoined: t0}
		if err := st.CreateUser(ctx, &alice, ev("user.created")); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Hour)
		stale := store.Session{ID: "S0", UserID: alice.ID, CreatedAt: t0, ExpiresAt: later}
		err := st.StartSession(ctx, &stale, store.RefreshToken{ID: "r0", AccessID: "a0", IssuedAt: t0, ExpiresAt: later}, "h0", ev("login.succeeded"))
		if !errors.Is(err, store.ErrPasswordChanged) {
			t.Fatalf("login with a stale hash: %v, want ErrPasswordChanged", err)
		}
		sess := store.Session{ID: "S1", UserID: alice.ID, CreatedAt: t0, ExpiresAt: later}
		if err := st.StartSession(ctx, &sess, store.RefreshToken{ID: "r1", AccessID: "a1", IssuedAt: t0, ExpiresAt: later}, "h1", ev("login.succeeded")); err != nil {
			t.Fatal(err)
		}
		mustCreateSession(t, st, alice.ID, "S2", later)
		mustCreateSession(t, st, alice.ID, "S3", later)
		for range 2 { // the second revokes nothing
			if _, err := st.RevokeSession(ctx, "S1", t0, ev("logout")); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.RevokeUserSession(ctx, alice.ID, "S2", t0, ev("session.revoked")); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeUserSession(ctx, alice.ID, "S2", t0, ev("session.revoked")); !errors.Is(err, store.ErrSessionNotFound) {
			t.Fatalf("revoke S2 again: %v", err)
		}
		for range 2 { // S3, then nothing live
			if _, err := st.RevokeUserSessions(ctx, alice.ID, t0, ev("logout_all")); err != nil {
				t.Fatal(err)
			}
		}
		audit := func(before, after store.User) []store.AuditEvent {
			e := ev("user.updated")
			e.TargetID, e.Fields = after.ID, []string{before.Email + ">" + after.Email}
			return []store.AuditEvent{e}
		}
		setEmail := func(u *store.User) error { u.Email = "a@example.com"; return nil }
		for range 2 { // the second changes nothing
			if _, err := st.UpdateUser(ctx, alice.ID, setEmail, false, t0, audit); err != nil {
				t.Fatal(err)
			}
		}
		mustCreateSession(t, st, alice.ID, "S4", later)
		if _, _, err := changePassword(st, alice.ID, "h0", "h2", "S4", t0, ev("password.changed")); !errors.Is(err, store.ErrPasswordChanged) {
			t.Fatalf("change password from a stale hash: %v, want ErrPasswordChanged", err)
		}
		if _, _, err := changePassword(st, alice.ID, "h1", "h2", "S4", t0, ev("password.changed")); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteUser(ctx, root.ID, ev("user.deleted")); !errors.Is(err, store.ErrLastSuperuser) {
			t.Fatalf("delete the last superuser: %v", err)
		}
		if err := st.DeleteUser(ctx, alice.ID, ev("user.deleted")); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSigningKey(ctx, store.SigningKey{ID: "K1", Algorithm: "EdDSA", Private: []byte("p")}, ev("key.rotated")); err != nil {
			t.Fatal(err)
		}
		imported := []store.User{{ID: 501, Username: "dj1", PasswordHash: "h"}, {ID: 502, Username: "dj2", PasswordHash: "h"}}
		if err := st.ImportUsers(ctx, imported, ev("user.created")); err != nil {
			t.Fatal(err)
		}

		a := alice.ID
		want := []string{
			fmt.Sprintf(`user.created target=%d session="CALLER" key="" fields=[]`, a),
			fmt.Sprintf(`login.succeeded target=%d session="S1" key="" fields=[]`, a),
			fmt.Sprintf(`logout target=%d session="S1" key="" fields=[]`, a),
			fmt.Sprintf(`session.revoked target=%d session="S2" key="" fields=[]`, a),
			fmt.Sprintf(`logout_all target=%d session="CALLER" key="" fields=[]`, a),
			fmt.Sprintf(`user.updated target=%d session="CALLER" key="" fields=[>a@example.com]`, a),
			fmt.Sprintf(`password.changed target=%d session="S4" key="" fields=[]`, a),
			fmt.Sprintf(`user.deleted target=%d session="CALLER" key="" fields=[]`, a),
			`key.rotated target=12345 session="CALLER" key="K1" fields=[]`,
			`user.created target=501 session="CALLER" key="" fields=[]`,
			`user.created target=502 session="CALLER" key="" fields=[]`,
		}
		got := allEvents(t, st)
		if !slices.Equal(briefs(got), want) {
			t.Errorf("events:\n got %s\nwant %s", strings.Join(briefs(got), "\n    "), strings.Join(want, "\n    "))
		}
		for _, e := range got {
			if e.ActorID != 99 || e.Outcome != "success" {
				t.Errorf("%s: actor %d outcome %q, want the caller's", e.Action, e.ActorID, e.Outcome)
			}
		}
		// A zero At is the time of the change.
		if !got[1].At.Equal(stored(t0)) {
			t.Errorf("login event at %v, want the session's creation %v", got[1].At, stored(t0))
		}
	})
}

// TestImportUsersAuditsEachUser imports more users than one INSERT of events holds: each gets
// its event, with itself as target.
func TestImportUsersAuditsEachUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		const n = 250
		users := make([]store.User, n)
		for i := range users {
			users[i] = store.User{ID: int64(1000 + i), Username: fmt.Sprintf("user%d", i), PasswordHash: "h"}
		}
		created := store.AuditEvent{Action: "user.created", Outcome: "success", UserAgent: "authapi import-django"}
		if err := st.ImportUsers(context.Background(), users, created); err != nil {
			t.Fatal(err)
		}
		events := allEvents(t, st)
		if len(events) != n {
			t.Fatalf("%d events, want %d", len(events), n)
		}
		targets := map[int64]bool{}
		for _, e := range events {
			targets[e.TargetID] = e.Action == "user.created" && e.UserAgent == "authapi import-django"
		}
		for _, u := range users {
			if !targets[u.ID] {
				t.Errorf("user %d has no user.created event", u.ID)
			}
		}
	})
}

// TestLoginAttemptEvents checks that a reservation writes the failure's event, withdrawn with
// it on success or release, and that a refusal writes the throttled event, naming the
// account's user when there is one.
func TestLoginAttemptEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		attempt := func(account string, i int) store.LoginAttempt {
			at := t0.Add(time.Duration(i) * time.Second)
			return store.LoginAttempt{
				Account: account, IP: "10.0.0.1", At: at, Since: at.Add(-time.Hour), AccountLimit: 2, IPLimit: -1,
				Failure:   store.AuditEvent{Action: "login.failed", TargetID: 777},
				Throttled: store.AuditEvent{Action: "login.throttled"},
			}
		}
		released := mustReserve(t, st, attempt("alice", 0))
		if len(released.AuditIDs) != 1 {
			t.Fatalf("reservation: %+v, want one audit event", released)
		}
		if err := st.ReleaseLoginAttempt(ctx, released); err != nil {
			t.Fatal(err)
		}
		succeeded := mustReserve(t, st, attempt("alice", 1))
		if err := st.LoginSucceeded(ctx, succeeded, alice.ID, alice.PasswordHash, "alice", "10.0.0.1", t0); err != nil {
			t.Fatal(err)
		}
		if got := allEvents(t, st); len(got) != 0 {
			t.Fatalf("withdrawn attempts left events: %v", briefs(got))
		}
		mustReserve(t, st, attempt("alice", 2))
		mustReserve(t, st, attempt("alice", 3))
		if r := mustReserve(t, st, attempt("alice", 4)); r.Reserved || len(r.AuditIDs) != 0 {
			t.Fatalf("third failure: %+v, want refused with a final event", r)
		}
		mustReserve(t, st, attempt("nobody", 5))
		a := alice.ID
		want := []string{
			fmt.Sprintf(`login.failed target=%d session="" key="" fields=[]`, a),
			fmt.Sprintf(`login.failed target=%d session="" key="" fields=[]`, a),
			fmt.Sprintf(`login.throttled target=%d session="" key="" fields=[]`, a),
			`login.failed target=0 session="" key="" fields=[]`,
		}
		if got := briefs(allEvents(t, st)); !slices.Equal(got, want) {
			t.Errorf("events:\n got %v\nwant %v", got, want)
		}
	})
}

// TestAuditEventFailureRollsBackTheChange breaks the audit log's insert on purpose and checks
// that each change whose event it refuses is rolled back with it.
func TestAuditEventFailureRollsBackTheChange(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, backend)
			st, err := store.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			storetest.RefuseAuditEvents(t, dsn, "refused")
			refused := store.AuditEvent{Action: "refused"}
			mustCreateUser(t, st, "root", superuser)
			alice := mustCreateUser(t, st, "alice")
			later := t0.Add(time.Hour)
			mustCreateSession(t, st, alice.ID, "S1", later)
			mustCreateSession(t, st, alice.ID, "S3", later)
			lastChange, _ := st.LastAuthChangeID(ctx)

			mustFail := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s: succeeded although its audit event was refused", what)
				}
			}
			u := store.User{Username: "bob", PasswordHash: "h", IsActive: true}
			mustFail("create user", st.CreateUser(ctx, &u, refused))
			mustFail("import users", st.ImportUsers(ctx, []store.User{{ID: 500, Username: "carl", PasswordHash: "h"}}, refused))
			sess := store.Session{ID: "S2", UserID: alice.ID, CreatedAt: t0, ExpiresAt: later}
			mustFail("start session", st.StartSession(ctx, &sess, store.RefreshToken{ID: "r", AccessID: "a", IssuedAt: t0, ExpiresAt: later}, alice.PasswordHash, refused))
			_, err = st.RevokeSession(ctx, "S1", t0, refused)
			mustFail("revoke session", err)
			mustFail("revoke user session", st.RevokeUserSession(ctx, alice.ID, "S1", t0, refused))
			_, err = st.RevokeUserSessions(ctx, alice.ID, t0, refused)
			mustFail("revoke user sessions", err)
			_, err = st.UpdateUser(ctx, alice.ID, func(u *store.User) error { u.IsActive = false; return nil }, true, t0,
				func(_, _ store.User) []store.AuditEvent { return []store.AuditEvent{refused} })
			mustFail("update user", err)
			_, _, err = changePassword(st, alice.ID, alice.PasswordHash, "new hash", "S1", t0, refused)
			mustFail("change password", err)
			mustFail("delete user", st.DeleteUser(ctx, alice.ID, refused))
			mustFail("create signing key", st.CreateSigningKey(ctx, store.SigningKey{ID: "K", Algorithm: "EdDSA", Private: []byte("p")}, refused))
			_, err = st.ReserveLoginAttempt(ctx, store.LoginAttempt{Account: "alice", IP: "10.0.0.1", At: t0, Since: t0.Add(-time.Hour), AccountLimit: 5, IPLimit: 5, Failure: refused})
			mustFail("reserve login attempt", err)

			for _, name := range []string{"bob", "carl"} {
				if _, err := st.UserByUsername(ctx, name); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s exists: %v", name, err)
				}
			}
			if _, err := st.SessionByID(ctx, "S2"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("session S2 exists: %v", err)
			}
			for _, id := range []string{"S1", "S3"} {
				if s, err := st.SessionByID(ctx, id); err != nil || s.RevokedAt != nil {
					t.Errorf("session %s: %+v, %v; want live", id, s, err)
				}
			}
			if u := mustUser(t, st, alice.ID); !u.IsActive || u.LastLogin != nil || u.PasswordHash != alice.PasswordHash {
				t.Errorf("alice: %+v, want active, never logged in, her password unchanged", u)
			}
			if keys, err := st.SigningKeys(ctx); err != nil || len(keys) != 0 {
				t.Errorf("signing keys: %v, %v; want none", keys, err)
			}
			r := mustReserve(t, st, store.LoginAttempt{Account: "alice", IP: "10.0.0.1", At: t0, Since: t0.Add(-time.Hour), AccountLimit: 5, IPLimit: 5})
			if len(r.AccountFailures) != 0 || len(r.IPFailures) != 0 {
				t.Errorf("the refused reservation counted: %+v", r)
			}
			if got := allEvents(t, st); len(got) != 0 {
				t.Errorf("events written: %v", briefs(got))
			}
			if id, _ := st.LastAuthChangeID(ctx); id != lastChange {
				t.Errorf("auth changes logged: last id %d, want %d", id, lastChange)
			}
		})
	}
}
