package ssf_test

import (
	"context"
	"crypto/rand"
	"maps"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// TestEveryRevocationKindItsEvents makes each kind of change through the store methods the
// use-cases call, with their audit events, and checks that a stream receives exactly the
// events of the right types for it, once: one session-revoked per session the change ended
// (the user has two live sessions and one already revoked), each naming its session.
func TestEveryRevocationKindItsEvents(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newEnv(t, backend, ssf.Config{})
			ctx := context.Background()
			admin := in.user(t, "admin@example.test")
			by := audit.Source{ActorID: admin.ID}
			sr, cc, tc := ssf.TypeSessionRevoked, ssf.TypeCredentialChange, ssf.TypeTokenClaimsChange
			dis, purged := ssf.TypeAccountDisabled, ssf.TypeAccountPurged
			update := func(u store.User, change func(*store.User), revoke bool) error {
				_, err := in.st.UpdateUser(ctx, u.ID, func(x *store.User) error { change(x); return nil }, revoke, time.Now(), by.UserUpdate())
				return err
			}
			cases := []struct {
				name      string
				do        func(u store.User, s store.Session) error
				want      map[string]int
				initiator string
				ended     int // sessions ended, each named by a session-revoked: 1 s, 2 s and s2
			}{
				{"logout", func(u store.User, s store.Session) error {
					_, err := in.st.RevokeSession(ctx, s.ID, time.Now(), audit.Source{ActorID: u.ID}.Event(audit.Logout))
					return err
				}, map[string]int{sr: 1}, "user", 1},
				{"logout-all", func(u store.User, s store.Session) error {
					_, err := in.st.RevokeUserSessions(ctx, u.ID, time.Now(), audit.Source{ActorID: u.ID}.Event(audit.LogoutAll))
					return err
				}, map[string]int{sr: 2}, "user", 2},
				{"admin revoke", func(u store.User, s store.Session) error {
					return in.st.RevokeUserSession(ctx, u.ID, s.ID, time.Now(), by.Event(audit.SessionRevoked))
				}, map[string]int{sr: 1}, "admin", 1},
				{"admin logout-all", func(u store.User, s store.Session) error {
					_, err := in.st.RevokeUserSessions(ctx, u.ID, time.Now(), by.Event(audit.LogoutAll))
					return err
				}, map[string]int{sr: 2}, "admin", 2},
				{"refresh-token reuse", func(u store.User, s store.Session) error {
					_, err := in.st.RevokeSession(ctx, s.ID, time.Now(), audit.Source{}.Event(audit.RefreshReuseDetected))
					return err
				}, map[string]int{sr: 1}, "policy", 1},
				{"deactivation", func(u store.User, s store.Session) error {
					return update(u, func(x *store.User) { x.IsActive = false }, true)
				}, map[string]int{sr: 2, dis: 1}, "admin", 2},
				{"deletion", func(u store.User, s store.Session) error {
					return in.st.DeleteUser(ctx, u.ID, by.Event(audit.UserDeleted))
				}, map[string]int{sr: 2, purged: 1}, "admin", 2},
				{"password change", func(u store.User, s store.Session) error {
					now := time.Now()
					_, err := in.st.ChangePassword(ctx, store.PasswordChange{
						UserID: u.ID, OldHash: u.PasswordHash, NewHash: "new", Current: s.ID,
						Next:   &store.Session{ExpiresAt: now.Add(time.Hour), CreatedAt: now},
						First:  store.RefreshToken{ID: rand.Text(), IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
						Events: []store.AuditEvent{audit.Source{ActorID: u.ID}.Event(audit.PasswordChanged)},
					})
					return err
				}, map[string]int{cc: 1, sr: 2}, "user", 2},
				{"password reset by an administrator", func(u store.User, s store.Session) error {
					return update(u, func(x *store.User) { x.PasswordHash = "reset" }, true)
				}, map[string]int{cc: 1, sr: 2}, "admin", 2},
				{"made staff", func(u store.User, s store.Session) error {
					return update(u, func(x *store.User) { x.IsStaff = true }, false)
				}, map[string]int{tc: 1}, "admin", 0},
				{"name change: nothing", func(u store.User, s store.Session) error {
					return update(u, func(x *store.User) { x.FirstName = "New" }, false)
				}, map[string]int{}, "", 0},
				{"login and refresh: nothing", func(u store.User, s store.Session) error {
					in.session(t, u)
					next := store.RefreshToken{ID: rand.Text(), IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
					_, err := in.st.RotateRefreshToken(ctx, firstToken(t, in, s), next, time.Now())
					return err
				}, map[string]int{}, "", 0},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					u := in.user(t, "someone@example.test")
					s, s2, dead := in.session(t, u), in.session(t, u), in.session(t, u)
					// Ended before the stream: no change below may name it again.
					if _, err := in.st.RevokeSession(ctx, dead.ID, time.Now()); err != nil {
						t.Fatal(err)
					}
					client := "client-" + rand.Text()
					stream := in.stream(t, client, ssf.StreamInput{Format: ptr(ssf.FormatComplex)})
					wantSessions := map[string]bool{}
					for _, id := range []string{s.ID, s2.ID}[:tc.ended] {
						wantSessions[id] = true
					}
					named := map[string]bool{}
					if err := tc.do(u, s); err != nil {
						t.Fatal(err)
					}
					sets := in.drain(t, client, stream.ID)
					if got := countTypes(sets); !maps.Equal(got, tc.want) {
						t.Fatalf("event types = %v, want %v", got, tc.want)
					}
					txn := ""
					for _, d := range sets {
						user := d.subID["user"].(map[string]any)
						if user["sub"] != itoa(u.ID) || user["iss"] != issuer {
							t.Errorf("%s: sub_id.user = %v, want iss_sub of user %d", d.typ, user, u.ID)
						}
						if txn != "" && d.claims["txn"] != txn {
							t.Errorf("events of one change have txn %v and %v, want one", txn, d.claims["txn"])
						}
						txn, _ = d.claims["txn"].(string)
						if d.typ == ssf.TypeSessionRevoked {
							session, _ := d.subID["session"].(map[string]any)
							id, _ := session["id"].(string)
							if !wantSessions[id] || named[id] {
								t.Errorf("session-revoked sub_id %v, want one of %v, each once", d.subID, wantSessions)
							}
							named[id] = true
							if got := d.event["initiating_entity"]; got != tc.initiator {
								t.Errorf("initiating_entity = %v, want %s", got, tc.initiator)
							}
						}
					}
					// The next case starts with a stream of its own.
					if err := in.svc.DeleteStream(ctx, client, stream.ID); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

func itoa(id int64) string { return formatInt(id) }

// firstToken returns the id of the session's first refresh token.
func firstToken(t *testing.T, in *instance, s store.Session) string {
	t.Helper()
	id, ok := in.first[s.ID]
	if !ok {
		t.Fatal("no refresh token")
	}
	return id
}

// TestNoEventsWithoutStreams: while no stream is enabled or paused, nothing is written for any
// change; with one, logins and refreshes still write nothing.
func TestNoEventsWithoutStreams(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			st, err := store.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			in := newInstance(t, st, ssf.Config{})
			ctx := context.Background()
			churn := func() {
				u := in.user(t, "x@example.test")
				s := in.session(t, u)
				next := store.RefreshToken{ID: rand.Text(), IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
				if _, err := st.RotateRefreshToken(ctx, firstToken(t, in, s), next, time.Now()); err != nil {
					t.Fatal(err)
				}
				if _, err := st.RevokeSession(ctx, s.ID, time.Now(), audit.Source{}.Event(audit.Logout)); err != nil {
					t.Fatal(err)
				}
				if err := st.DeleteUser(ctx, u.ID); err != nil {
					t.Fatal(err)
				}
			}
			churn()
			stream := in.stream(t, "c", ssf.StreamInput{})
			if _, err := in.svc.SetStreamStatus(ctx, "c", stream.ID, store.StreamDisabled, ""); err != nil {
				t.Fatal(err)
			}
			churn()
			if rows := storetest.Rows(t, dsn, "security_events"); len(rows) != 0 {
				t.Fatalf("security events written with no stream enabled: %v", rows)
			}
			if _, err := in.svc.SetStreamStatus(ctx, "c", stream.ID, store.StreamEnabled, ""); err != nil {
				t.Fatal(err)
			}
			u := in.user(t, "y@example.test")
			s := in.session(t, u)
			next := store.RefreshToken{ID: rand.Text(), IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			if _, err := st.RotateRefreshToken(ctx, firstToken(t, in, s), next, time.Now()); err != nil {
				t.Fatal(err)
			}
			if rows := storetest.Rows(t, dsn, "security_events"); len(rows) != 0 {
				t.Fatalf("a login and a refresh wrote security events: %v", rows)
			}
			if rows := storetest.Rows(t, dsn, "ssf_queue"); len(rows) != 0 {
				t.Fatalf("a login and a refresh queued events: %v", rows)
			}
		})
	}
}

// TestSubjectFormats: each stream gets sub_id in the format it chose (RFC 9493), for the
// same event.
func TestSubjectFormats(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{})
	ctx := context.Background()
	streams := map[string]ssf.Stream{}
	for _, f := range ssf.Formats {
		streams[f] = in.stream(t, "c", ssf.StreamInput{Format: ptr(f)})
	}
	u := in.user(t, "carol@example.test")
	s := in.session(t, u)
	if _, err := in.st.RevokeSession(ctx, s.ID, time.Now(), audit.Source{ActorID: u.ID}.Event(audit.Logout)); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		ssf.FormatIssSub: {"format": "iss_sub", "iss": issuer, "sub": itoa(u.ID)},
		ssf.FormatEmail:  {"format": "email", "email": "carol@example.test"},
		ssf.FormatOpaque: {"format": "opaque", "id": itoa(u.ID)},
		ssf.FormatComplex: {"format": "complex",
			"user":    map[string]any{"format": "iss_sub", "iss": issuer, "sub": itoa(u.ID)},
			"session": map[string]any{"format": "opaque", "id": s.ID}},
	}
	for f, st := range streams {
		sets := in.drain(t, "c", st.ID)
		if len(sets) != 1 {
			t.Fatalf("%s: %d SETs, want 1", f, len(sets))
		}
		if got := sets[0].subID; !deepEqualJSON(got, want[f]) {
			t.Errorf("%s: sub_id = %v, want %v", f, got, want[f])
		}
	}
}
