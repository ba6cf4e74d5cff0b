package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// t0 is a fixed clock reading, deliberately not in UTC and with nanoseconds,
// to check that the store normalises times.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))

// stored is t as the store keeps it: PostgreSQL keeps microseconds.
func stored(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// eachBackend runs f as a parallel subtest on a fresh store per backend.
func eachBackend(t *testing.T, f func(t *testing.T, st *store.Store)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f(t, storetest.Open(t, backend))
		})
	}
}

type userOpt func(*store.User)

func superuser(u *store.User) { u.IsSuperuser = true; u.IsStaff = true }
func inactive(u *store.User)  { u.IsActive = false }

func mustCreateUser(t *testing.T, st *store.Store, username string, opts ...userOpt) store.User {
	t.Helper()
	u := store.User{
		Username:     username,
		FirstName:    "First " + username,
		LastName:     "Last",
		Email:        username + "@example.com",
		PasswordHash: "hash-of-" + username,
		IsActive:     true,
		DateJoined:   t0,
	}
	for _, o := range opts {
		o(&u)
	}
	if err := st.CreateUser(context.Background(), &u); err != nil {
		t.Fatalf("CreateUser(%q): %v", username, err)
	}
	return u
}

// changePassword changes user id's password hash from oldHash to newHash from session current,
// at at, into a new session (returned) that expires an hour later.
func changePassword(st *store.Store, id int64, oldHash, newHash, current string, at time.Time, events ...store.AuditEvent) (int64, store.Session, error) {
	next := store.Session{ID: "after-" + current, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	n, err := st.ChangePassword(context.Background(), store.PasswordChange{
		UserID: id, OldHash: oldHash, NewHash: newHash, Current: current, Next: &next,
		First:  store.RefreshToken{ID: "r-" + next.ID, AccessID: "a-" + next.ID, IssuedAt: at, ExpiresAt: next.ExpiresAt},
		Events: events,
	})
	return n, next, err
}

func mustCreateSession(t *testing.T, st *store.Store, userID int64, id string, expires time.Time) store.Session {
	t.Helper()
	s := store.Session{
		ID:        id,
		UserID:    userID,
		CreatedAt: t0,
		ExpiresAt: expires,
		UserAgent: "test-agent",
		IP:        "192.0.2.1",
	}
	if err := st.CreateSession(context.Background(), &s); err != nil {
		t.Fatalf("CreateSession(%q): %v", id, err)
	}
	return s
}

func mustUser(t *testing.T, st *store.Store, id int64) store.User {
	t.Helper()
	u, err := st.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("UserByID(%d): %v", id, err)
	}
	return u
}

// equalUser compares users, times with Equal.
func equalUser(a, b store.User) bool {
	if (a.LastLogin == nil) != (b.LastLogin == nil) || a.LastLogin != nil && !a.LastLogin.Equal(*b.LastLogin) {
		return false
	}
	a.LastLogin, b.LastLogin = nil, nil
	if !a.DateJoined.Equal(b.DateJoined) {
		return false
	}
	a.DateJoined, b.DateJoined = time.Time{}, time.Time{}
	return a == b
}

func equalSession(a, b store.Session) bool {
	if (a.RevokedAt == nil) != (b.RevokedAt == nil) || a.RevokedAt != nil && !a.RevokedAt.Equal(*b.RevokedAt) {
		return false
	}
	return a.ID == b.ID && a.UserID == b.UserID && a.UserAgent == b.UserAgent && a.IP == b.IP &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastUsedAt.Equal(b.LastUsedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestCreateAndGetUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "Alice")
		bob := mustCreateUser(t, st, "bob")
		if alice.ID <= 0 || bob.ID <= alice.ID {
			t.Errorf("IDs = %d, %d; want positive and increasing", alice.ID, bob.ID)
		}
		if want := stored(t0); !alice.DateJoined.Equal(want) || alice.DateJoined.Location() != time.UTC {
			t.Errorf("DateJoined = %v, want %v in UTC", alice.DateJoined, want)
		}

		got, err := st.UserByID(ctx, alice.ID)
		if err != nil || !equalUser(got, alice) {
			t.Errorf("UserByID = %+v, %v; want %+v", got, err, alice)
		}
		if got.DateJoined.Location() != time.UTC {
			t.Errorf("DateJoined location = %v, want UTC", got.DateJoined.Location())
		}
		got, err = st.UserByUsername(ctx, "aLICE")
		if err != nil || got.ID != alice.ID || got.Username != "Alice" {
			t.Errorf("UserByUsername(aLICE) = %+v, %v; want Alice", got, err)
		}

		dup := store.User{Username: "ALICE", IsActive: true}
		if err := st.CreateUser(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser(ALICE) = %v, want ErrConflict", err)
		}

		zero := store.User{Username: "zero"}
		before := time.Now().Add(-time.Second)
		if err := st.CreateUser(ctx, &zero); err != nil {
			t.Fatalf("CreateUser(zero): %v", err)
		}
		if zero.DateJoined.Before(before) {
			t.Errorf("default DateJoined = %v, want about now", zero.DateJoined)
		}

		if _, err := st.UserByID(ctx, 9999); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("UserByID(9999) = %v, want ErrUserNotFound", err)
		}
		if _, err := st.UserByUsername(ctx, "nobody"); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("UserByUsername(nobody) = %v, want ErrUserNotFound", err)
		}
		if n, err := st.CountUsers(ctx); err != nil || n != 3 {
			t.Errorf("CountUsers = %d, %v; want 3", n, err)
		}
	})
}

func TestListUsers(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		var ids []int64
		for _, name := range []string{"e", "d", "c", "b", "a"} {
			ids = append(ids, mustCreateUser(t, st, name).ID)
		}
		tests := []struct {
			limit, offset int
			want          []int64
		}{
			{limit: 0, offset: 0, want: ids},
			{limit: 2, offset: 0, want: ids[:2]},
			{limit: 2, offset: 1, want: ids[1:3]},
			{limit: 10, offset: 4, want: ids[4:]},
			{limit: 10, offset: 5, want: nil},
			{limit: 10, offset: 7, want: nil}, // past the end: counted, not offset+0
			{limit: 0, offset: 3, want: ids[3:]},
		}
		for _, tt := range tests {
			page, err := st.ListUsers(context.Background(), store.UserQuery{Limit: tt.limit, Offset: tt.offset})
			users, total := page.Users, page.Total
			if err != nil {
				t.Fatalf("ListUsers(%d, %d): %v", tt.limit, tt.offset, err)
			}
			var got []int64
			for _, u := range users {
				got = append(got, u.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || total != 5 {
				t.Errorf("ListUsers(%d, %d) = %v, total %d; want %v, total 5", tt.limit, tt.offset, got, total, tt.want)
			}
		}
		// Every field as UserByID reads it, but the password hash.
		ctx := context.Background()
		login := t0.Add(time.Hour)
		if _, err := st.UpdateUser(ctx, ids[0], func(u *store.User) error {
			u.FirstName, u.LastName, u.Email, u.IsStaff, u.LastLogin = "Eve", "E.", "e@example.com", true, &login
			return nil
		}, false, t0); err != nil {
			t.Fatal(err)
		}
		want, err := st.UserByID(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		want.PasswordHash = ""
		if page, err := st.ListUsers(ctx, store.UserQuery{Limit: 1}); err != nil || len(page.Users) != 1 || !reflect.DeepEqual(page.Users[0], want) {
			t.Errorf("ListUsers(1) = %+v, %v; want %+v", page.Users, err, want)
		}
	})
}

// saveAs is an UpdateUser change that makes the user exactly u (its ID aside).
func saveAs(u store.User) func(*store.User) error {
	return func(cur *store.User) error { *cur = u; return nil }
}

func TestUpdateUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		mustCreateUser(t, st, "bob")

		login := stored(t0.Add(time.Hour))
		want := alice
		want.Username = "Alice2"
		want.FirstName, want.LastName, want.Email = "A", "L", "a@example.org"
		want.PasswordHash = "new-hash"
		want.IsStaff, want.IsSuperuser = true, true
		want.LastLogin = &login
		want.DateJoined = stored(t0.Add(-time.Hour))
		var seen store.User
		got, err := st.UpdateUser(ctx, alice.ID, func(u *store.User) error {
			seen = *u
			*u = want
			u.ID = 12345 // ignored
			return nil
		}, false, t0)
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		if !equalUser(seen, alice) {
			t.Errorf("change saw %+v, want the current %+v", seen, alice)
		}
		if !equalUser(got, want) || !equalUser(mustUser(t, st, alice.ID), want) {
			t.Errorf("after update got %+v, stored %+v; want %+v", got, mustUser(t, st, alice.ID), want)
		}
		alice = want

		// Changing only the case of one's own username is not a conflict.
		alice.Username = "ALICE2"
		if _, err := st.UpdateUser(ctx, alice.ID, saveAs(alice), false, t0); err != nil {
			t.Errorf("UpdateUser(case change) = %v, want nil", err)
		}
		if _, err := st.UserByUsername(ctx, "alice2"); err != nil {
			t.Errorf("UserByUsername(alice2) after case change = %v", err)
		}

		bob := alice
		bob.Username = "BOB"
		if _, err := st.UpdateUser(ctx, alice.ID, saveAs(bob), false, t0); !errors.Is(err, store.ErrConflict) {
			t.Errorf("UpdateUser(BOB) = %v, want ErrConflict", err)
		}
		if got := mustUser(t, st, alice.ID); got.Username != "ALICE2" {
			t.Errorf("after conflict username = %q, want ALICE2", got.Username)
		}

		// An error from change aborts the update and comes back as is.
		refusal := errors.New("refused")
		_, err = st.UpdateUser(ctx, alice.ID, func(u *store.User) error { u.FirstName = "X"; return refusal }, true, t0)
		if err != refusal {
			t.Errorf("UpdateUser(refusing change) = %v, want %v", err, refusal)
		}
		if got := mustUser(t, st, alice.ID); !equalUser(got, alice) {
			t.Errorf("after refused change got %+v, want unchanged %+v", got, alice)
		}

		if _, err := st.UpdateUser(ctx, 9999, saveAs(store.User{Username: "ghost"}), false, t0); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("UpdateUser(9999) = %v, want ErrUserNotFound", err)
		}
	})
}

func TestUpdateUserRevokesSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		live := mustCreateSession(t, st, alice.ID, "live", t0.Add(time.Hour))
		expired := mustCreateSession(t, st, alice.ID, "expired", t0.Add(time.Minute))
		other := mustCreateSession(t, st, bob.ID, "other", t0.Add(time.Hour))

		now := t0.Add(10 * time.Minute)
		if _, err := st.UpdateUser(ctx, alice.ID, func(u *store.User) error { u.PasswordHash = "changed"; return nil }, true, now); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		for _, tt := range []struct {
			id          string
			wantRevoked bool
		}{{live.ID, true}, {expired.ID, false}, {other.ID, false}} {
			s, err := st.SessionByID(ctx, tt.id)
			if err != nil {
				t.Fatalf("SessionByID(%s): %v", tt.id, err)
			}
			if revoked := s.RevokedAt != nil; revoked != tt.wantRevoked {
				t.Errorf("session %s revoked = %v, want %v", tt.id, revoked, tt.wantRevoked)
			} else if revoked && !s.RevokedAt.Equal(stored(now)) {
				t.Errorf("session %s RevokedAt = %v, want %v", tt.id, s.RevokedAt, now)
			}
		}
	})
}

// TestUpdateUserRace: concurrent read-modify-write changes of one user each see the row as
// the previous one left it, so none is lost, and a change never writes back a column it
// did not alter.
func TestUpdateUserRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		mustCreateSession(t, st, alice.ID, "s", t0.Add(time.Hour))
		const n = 20
		var (
			start sync.WaitGroup
			done  sync.WaitGroup
			errs  = make([]error, n+1)
		)
		start.Add(1)
		for i := range n {
			done.Go(func() {
				start.Wait()
				_, errs[i] = st.UpdateUser(ctx, alice.ID, func(u *store.User) error {
					u.LastName += "+" // a counter: each change appends to what it finds
					if i%2 == 0 {
						u.FirstName = fmt.Sprintf("first%d", i)
					} else {
						u.Email = fmt.Sprintf("e%d@example.com", i)
					}
					return nil
				}, false, t0)
			})
		}
		done.Go(func() {
			start.Wait()
			_, errs[n] = st.UpdateUser(ctx, alice.ID, func(u *store.User) error {
				u.PasswordHash = "new-hash"
				return nil
			}, true, t0)
		})
		start.Done()
		done.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		}
		got := mustUser(t, st, alice.ID)
		if want := "Last" + strings.Repeat("+", n); got.LastName != want {
			t.Errorf("LastName = %q, want %q: an update was lost", got.LastName, want)
		}
		if got.PasswordHash != "new-hash" {
			t.Errorf("PasswordHash = %q, want new-hash: a concurrent edit undid the password change", got.PasswordHash)
		}
		if !strings.HasPrefix(got.FirstName, "first") || !strings.HasPrefix(got.Email, "e") {
			t.Errorf("FirstName %q, Email %q: want values some update sent", got.FirstName, got.Email)
		}
		if s, _ := st.SessionByID(ctx, "s"); s.RevokedAt == nil {
			t.Error("password change did not revoke the session")
		}
	})
}

func TestLastSuperuserGuard(t *testing.T) {
	tests := []struct {
		name   string
		change func(ctx context.Context, st *store.Store, u store.User) error
	}{
		{"demote", func(ctx context.Context, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsSuperuser = false; return nil }, false, t0)
			return err
		}},
		{"deactivate", func(ctx context.Context, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsActive = false; return nil }, true, t0)
			return err
		}},
		{"remove staff", func(ctx context.Context, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsStaff = false; return nil }, false, t0)
			return err
		}},
		{"delete", func(ctx context.Context, st *store.Store, u store.User) error {
			return st.DeleteUser(ctx, u.ID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, st *store.Store) {
				ctx := context.Background()
				root := mustCreateUser(t, st, "root", superuser)
				mustCreateUser(t, st, "retired", superuser, inactive)                           // does not count
				mustCreateUser(t, st, "nonstaff", func(u *store.User) { u.IsSuperuser = true }) // cannot manage users: does not count
				mustCreateUser(t, st, "plain")

				if err := tt.change(ctx, st, root); !errors.Is(err, store.ErrLastSuperuser) {
					t.Fatalf("%s last superuser = %v, want ErrLastSuperuser", tt.name, err)
				}
				if got := mustUser(t, st, root.ID); !equalUser(got, root) {
					t.Errorf("after refused %s got %+v, want unchanged %+v", tt.name, got, root)
				}

				// Edits that keep root an active superuser are fine.
				root.Email = "root@example.org"
				if _, err := st.UpdateUser(ctx, root.ID, saveAs(root), false, t0); err != nil {
					t.Errorf("UpdateUser(email) of last superuser = %v, want nil", err)
				}

				mustCreateUser(t, st, "admin", superuser)
				if err := tt.change(ctx, st, root); err != nil {
					t.Errorf("%s with another active superuser = %v, want nil", tt.name, err)
				}
			})
		})
	}
}

// TestLastSuperuserRace removes the last two administrators at once, each by demotion,
// deactivation or deletion, while other edits of both run: exactly one removal succeeds, the
// other gets ErrLastSuperuser, and nothing deadlocks or fails otherwise.
func TestLastSuperuserRace(t *testing.T) {
	removals := []struct {
		name   string
		remove func(ctx context.Context, st *store.Store, id int64) error
	}{
		{"demote", func(ctx context.Context, st *store.Store, id int64) error {
			_, err := st.UpdateUser(ctx, id, func(u *store.User) error { u.IsSuperuser = false; return nil }, false, t0)
			return err
		}},
		{"deactivate", func(ctx context.Context, st *store.Store, id int64) error {
			_, err := st.UpdateUser(ctx, id, func(u *store.User) error { u.IsActive = false; return nil }, true, t0)
			return err
		}},
		{"delete", func(ctx context.Context, st *store.Store, id int64) error { return st.DeleteUser(ctx, id) }},
	}
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		survivor := mustCreateUser(t, st, "a", superuser).ID
		round := 0
		for _, ra := range removals {
			for _, rb := range removals {
				for range 2 {
					// survivor and a new b are the only administrators.
					round++
					ids := []int64{survivor, mustCreateUser(t, st, fmt.Sprintf("b%d", round), superuser).ID}
					var (
						start sync.WaitGroup
						done  sync.WaitGroup
						errs  = make([]error, 2)
						edits = make([]error, 4)
					)
					start.Add(1)
					for i, r := range []func(context.Context, *store.Store, int64) error{ra.remove, rb.remove} {
						done.Go(func() { start.Wait(); errs[i] = r(ctx, st, ids[i]) })
					}
					for i := range edits {
						done.Go(func() {
							start.Wait()
							_, err := st.UpdateUser(ctx, ids[i%2], func(u *store.User) error { u.FirstName = "edited"; return nil }, false, t0)
							if !errors.Is(err, store.ErrUserNotFound) { // the user may be gone
								edits[i] = err
							}
						})
					}
					start.Done()
					done.Wait()

					what := fmt.Sprintf("round %d (%s the survivor, %s the new one)", round, ra.name, rb.name)
					for _, err := range edits {
						if err != nil {
							t.Fatalf("%s: concurrent edit: %v", what, err)
						}
					}
					ok, refused := 0, 0
					for _, err := range errs {
						switch {
						case err == nil:
							ok++
						case errors.Is(err, store.ErrLastSuperuser):
							refused++
						default:
							t.Fatalf("%s: unexpected error %v", what, err)
						}
					}
					if ok != 1 || refused != 1 {
						t.Fatalf("%s: errors %v; want exactly one success and one ErrLastSuperuser", what, errs)
					}
					var admins []int64
					for _, id := range ids {
						if u, err := st.UserByID(ctx, id); err == nil && u.IsActive && u.IsStaff && u.IsSuperuser {
							admins = append(admins, id)
						}
					}
					if len(admins) != 1 {
						t.Fatalf("%s: administrators left %v, want 1", what, admins)
					}
					survivor = admins[0]
				}
			}
		}
	})
}

func TestSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		s := mustCreateSession(t, st, alice.ID, "s1", t0.Add(time.Hour))
		if !s.LastUsedAt.Equal(s.CreatedAt) || s.CreatedAt.Location() != time.UTC {
			t.Errorf("LastUsedAt = %v, CreatedAt = %v; want equal, in UTC", s.LastUsedAt, s.CreatedAt)
		}
		bobs := mustCreateSession(t, st, bob.ID, "", t0.Add(time.Hour))
		if bobs.ID == "" {
			t.Errorf("CreateSession with empty ID left it empty")
		}

		got, err := st.SessionByID(ctx, "s1")
		if err != nil || !equalSession(got, s) {
			t.Errorf("SessionByID = %+v, %v; want %+v", got, err, s)
		}
		if _, err := st.SessionByID(ctx, "nope"); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("SessionByID(nope) = %v, want ErrSessionNotFound", err)
		}
		dup := store.Session{ID: "s1", UserID: bob.ID, ExpiresAt: t0}
		if err := st.CreateSession(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateSession(dup id) = %v, want ErrConflict", err)
		}
		orphan := store.Session{ID: "orphan", UserID: 9999, ExpiresAt: t0}
		if err := st.CreateSession(ctx, &orphan); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("CreateSession(unknown user) = %v, want ErrUserNotFound", err)
		}

		u, gs, err := st.UserSession(ctx, alice.ID, "s1")
		if err != nil || !equalUser(u, alice) || !equalSession(gs, s) {
			t.Errorf("UserSession = %+v, %+v, %v; want %+v, %+v", u, gs, err, alice, s)
		}
		if _, _, err := st.UserSession(ctx, 9999, "s1"); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("UserSession(unknown user) = %v, want ErrUserNotFound", err)
		}
		u, _, err = st.UserSession(ctx, alice.ID, "nope")
		if !errors.Is(err, store.ErrSessionNotFound) || u.ID != alice.ID {
			t.Errorf("UserSession(unknown session) = user %d, %v; want user %d, ErrSessionNotFound", u.ID, err, alice.ID)
		}
		if _, _, err := st.UserSession(ctx, alice.ID, bobs.ID); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("UserSession(bob's session) = %v, want ErrSessionNotFound", err)
		}

		used := t0.Add(5 * time.Minute)
		if err := st.TouchSession(ctx, "s1", used); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		if err := st.TouchSession(ctx, "nope", used); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("TouchSession(nope) = %v, want ErrSessionNotFound", err)
		}

		if !s.Live(t0) || s.Live(t0.Add(time.Hour)) {
			t.Errorf("Live before/at expiry = %v/%v, want true/false", s.Live(t0), s.Live(t0.Add(time.Hour)))
		}
		revokeAt := t0.Add(10 * time.Minute)
		if ok, err := st.RevokeSession(ctx, "s1", revokeAt); !ok || err != nil {
			t.Errorf("first RevokeSession = %v, %v; want true, nil", ok, err)
		}
		if ok, err := st.RevokeSession(ctx, "s1", revokeAt.Add(time.Minute)); ok || err != nil {
			t.Errorf("second RevokeSession = %v, %v; want false, nil", ok, err)
		}
		if ok, err := st.RevokeSession(ctx, "nope", revokeAt); ok || !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("RevokeSession(nope) = %v, %v; want false, ErrSessionNotFound", ok, err)
		}
		got, err = st.SessionByID(ctx, "s1")
		if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(stored(revokeAt)) || !got.LastUsedAt.Equal(stored(used)) {
			t.Errorf("after revoke got %+v, %v; want RevokedAt %v, LastUsedAt %v", got, err, revokeAt, used)
		}
		if got.Live(t0) {
			t.Errorf("revoked session is Live")
		}
	})
}

func TestRevokeUserSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		for i := range 3 {
			mustCreateSession(t, st, alice.ID, fmt.Sprintf("a%d", i), t0.Add(time.Hour))
		}
		mustCreateSession(t, st, alice.ID, "a-expired", t0.Add(-time.Hour))
		mustCreateSession(t, st, bob.ID, "b", t0.Add(time.Hour))
		if _, err := st.RevokeSession(ctx, "a0", t0); err != nil {
			t.Fatal(err)
		}

		if n, err := st.RevokeUserSessions(ctx, alice.ID, t0); n != 2 || err != nil {
			t.Errorf("RevokeUserSessions = %d, %v; want 2, nil", n, err)
		}
		if n, err := st.RevokeUserSessions(ctx, alice.ID, t0); n != 0 || err != nil {
			t.Errorf("second RevokeUserSessions = %d, %v; want 0, nil", n, err)
		}
		if s, _ := st.SessionByID(ctx, "b"); s.RevokedAt != nil {
			t.Errorf("bob's session revoked")
		}
	})
}

func TestDeleteUserCascades(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		mustCreateSession(t, st, alice.ID, "a", t0.Add(time.Hour))
		mustCreateSession(t, st, bob.ID, "b", t0.Add(time.Hour))

		if err := st.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		if _, err := st.UserByID(ctx, alice.ID); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("UserByID(deleted) = %v, want ErrUserNotFound", err)
		}
		if _, err := st.SessionByID(ctx, "a"); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("SessionByID(deleted user's) = %v, want ErrSessionNotFound", err)
		}
		if _, err := st.SessionByID(ctx, "b"); err != nil {
			t.Errorf("SessionByID(bob's) = %v, want nil", err)
		}
		if err := st.DeleteUser(ctx, alice.ID); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("second DeleteUser = %v, want ErrUserNotFound", err)
		}
	})
}

func TestSigningKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		keys, err := st.SigningKeys(ctx)
		if err != nil || len(keys) != 0 {
			t.Fatalf("SigningKeys on empty store = %v, %v; want none", keys, err)
		}
		want := []store.SigningKey{
			{ID: "k-old", Algorithm: "EdDSA", Private: []byte{0, 1, 2, 0xff, 0}, CreatedAt: t0.Add(-time.Hour)},
			{ID: "k-new", Algorithm: "ES256", Private: []byte("-----BEGIN PRIVATE KEY-----\n..."), CreatedAt: t0},
		}
		for _, k := range []store.SigningKey{want[1], want[0]} {
			if err := st.CreateSigningKey(ctx, k); err != nil {
				t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
			}
		}
		if err := st.CreateSigningKey(ctx, want[0]); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateSigningKey(dup) = %v, want ErrConflict", err)
		}
		keys, err = st.SigningKeys(ctx)
		if err != nil || len(keys) != len(want) {
			t.Fatalf("SigningKeys = %v, %v; want %d keys", keys, err, len(want))
		}
		for i, k := range keys {
			w := want[i]
			if k.ID != w.ID || k.Algorithm != w.Algorithm || !bytes.Equal(k.Private, w.Private) || !k.CreatedAt.Equal(stored(w.CreatedAt)) {
				t.Errorf("key %d = %+v, want %+v", i, k, w)
			}
		}
	})
}

func TestMigrate(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := store.Open(storetest.DSN(t, backend))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}

			status := func(wantApplied bool) {
				t.Helper()
				states, err := st.MigrationStatus(ctx)
				if err != nil || len(states) == 0 {
					t.Fatalf("MigrationStatus = %v, %v; want some migrations", states, err)
				}
				for _, s := range states {
					if s.Applied != wantApplied || s.Version <= 0 || !strings.HasSuffix(s.Source, ".sql") && !strings.HasSuffix(s.Source, ".go") {
						t.Errorf("migration %+v, want Applied %v", s, wantApplied)
					}
				}
			}
			status(false)
			for i := range 2 {
				if err := st.Migrate(ctx); err != nil {
					t.Fatalf("Migrate #%d: %v", i+1, err)
				}
				status(true)
			}
			mustCreateUser(t, st, "alice")
		})
	}
}

// TestConcurrentWritesSQLite checks that concurrent writers queue instead of
// failing with "database is locked".
func TestConcurrentWritesSQLite(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	ctx := context.Background()
	const n = 20
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			u := store.User{Username: fmt.Sprintf("user%02d", i), IsActive: true, IsSuperuser: true}
			if errs[i] = st.CreateUser(ctx, &u); errs[i] != nil {
				return
			}
			s := store.Session{ID: u.Username, UserID: u.ID, ExpiresAt: t0.Add(time.Hour)}
			if errs[i] = st.CreateSession(ctx, &s); errs[i] != nil {
				return
			}
			_, errs[i] = st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.FirstName = "updated"; return nil }, true, t0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if got, err := st.CountUsers(ctx); got != n || err != nil {
		t.Errorf("CountUsers = %d, %v; want %d", got, err, n)
	}
}
