package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestAuthChangesLogged checks that every change of authentication state logs one change of
// its user, in its own transaction, tells the local watchers, and that no-ops log nothing.
func TestAuthChangesLogged(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, st *store.Store, u store.User) error
		session bool // the change names the session "s1"
		logs    bool
	}{
		{"revoke session", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.RevokeSession(ctx, "s1", time.Now())
			return err
		}, true, true},
		{"revoke session again", func(t *testing.T, st *store.Store, u store.User) error {
			if _, err := st.RevokeSession(ctx, "s1", time.Now()); err != nil {
				return err
			}
			before, _ := st.LastAuthChangeID(ctx)
			_, err := st.RevokeSession(ctx, "s1", time.Now())
			if after, _ := st.LastAuthChangeID(ctx); after != before {
				t.Errorf("second revocation logged a change")
			}
			return err
		}, true, true},
		{"revoke user session", func(t *testing.T, st *store.Store, u store.User) error {
			return st.RevokeUserSession(ctx, u.ID, "s1", time.Now())
		}, true, true},
		{"revoke user sessions", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.RevokeUserSessions(ctx, u.ID, time.Now())
			return err
		}, false, true},
		{"deactivate", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsActive = false; return nil }, false, time.Now())
			return err
		}, false, true},
		{"demote", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsStaff = false; return nil }, false, time.Now())
			return err
		}, false, true},
		{"password change", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.PasswordHash = "new"; return nil }, true, time.Now())
			return err
		}, false, true},
		{"update with nothing changed", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(*store.User) error { return nil }, false, time.Now())
			return err
		}, false, false},
		{"delete", func(t *testing.T, st *store.Store, u store.User) error {
			return st.DeleteUser(ctx, u.ID)
		}, false, true},
		{"login", func(t *testing.T, st *store.Store, u store.User) error {
			sess := store.Session{UserID: u.ID, ExpiresAt: later}
			return st.StartSession(ctx, &sess, store.RefreshToken{ID: "r-login", ExpiresAt: later}, u.PasswordHash)
		}, false, true},
		{"password hash upgrade", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, "upgraded")
			return err
		}, false, true},
		{"own password change", func(t *testing.T, st *store.Store, u store.User) error {
			mustCreateSession(t, st, u.ID, "s-keep", later)
			_, _, err := changePassword(st, u.ID, u.PasswordHash, "new", "s-keep", time.Now())
			return err
		}, false, true},
		{"touch session", func(t *testing.T, st *store.Store, u store.User) error {
			return st.TouchSession(ctx, "s1", time.Now())
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, st *store.Store) {
				u := mustCreateUser(t, st, "alice", superuser)
				mustCreateUser(t, st, "root", superuser) // so alice may be demoted
				mustCreateSession(t, st, u.ID, "s1", later)
				start, err := st.LastAuthChangeID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var (
					mu      sync.Mutex
					watched []int64
				)
				st.OnAuthChange(func(id int64) { mu.Lock(); watched = append(watched, id); mu.Unlock() })
				if err := tc.change(t, st, u); err != nil {
					t.Fatalf("change: %v", err)
				}
				got, err := st.AuthChangesAfter(ctx, start, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.logs {
					if len(got) != 0 || len(watched) != 0 {
						t.Fatalf("logged %+v, watchers told %v; want nothing", got, watched)
					}
					return
				}
				if len(got) != 1 || got[0].UserID != u.ID || got[0].ID <= start {
					t.Fatalf("logged %+v, want one change of user %d after id %d", got, u.ID, start)
				}
				if want := map[bool]string{true: "s1"}[tc.session]; got[0].SessionID != want {
					t.Errorf("session %q, want %q", got[0].SessionID, want)
				}
				if len(watched) != 1 || watched[0] != u.ID {
					t.Errorf("watchers told %v, want [%d]", watched, u.ID)
				}
			})
		})
	}
}

// TestAuthChangeRolledBack checks that a change that fails logs nothing: the log is written in
// the change's own transaction.
func TestAuthChangeRolledBack(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "root", superuser) // the last administrator
		start, _ := st.LastAuthChangeID(ctx)
		_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsActive = false; return nil }, true, time.Now())
		if err == nil {
			t.Fatal("deactivating the last administrator succeeded")
		}
		if err := st.DeleteUser(ctx, u.ID); err == nil {
			t.Fatal("deleting the last administrator succeeded")
		}
		if got, _ := st.AuthChangesAfter(ctx, start, 0); len(got) != 0 {
			t.Fatalf("refused changes logged %+v", got)
		}
	})
}

func TestAuthChangesPagingAndPrune(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "alice")
		for range 3 {
			if _, err := st.UpgradePasswordHash(ctx, u.ID, mustUser(t, st, u.ID).PasswordHash, time.Now().String()); err != nil {
				t.Fatal(err)
			}
		}
		all, err := st.AuthChangesAfter(ctx, 0, 0)
		if err != nil || len(all) != 3 {
			t.Fatalf("changes %+v, %v; want 3", all, err)
		}
		if !(all[0].ID < all[1].ID && all[1].ID < all[2].ID) {
			t.Fatalf("not in id order: %+v", all)
		}
		page, err := st.AuthChangesAfter(ctx, all[0].ID, 1)
		if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
			t.Fatalf("page after %d: %+v, %v; want only %d", all[0].ID, page, err, all[1].ID)
		}
		if last, err := st.LastAuthChangeID(ctx); err != nil || last != all[2].ID {
			t.Fatalf("last id %d, %v; want %d", last, err, all[2].ID)
		}
		if n, err := st.PruneAuthChanges(ctx, all[0].At.Add(-time.Second)); err != nil || n != 0 {
			t.Fatalf("pruning older rows than any deleted %d, %v", n, err)
		}
		if n, err := st.PruneAuthChanges(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
			t.Fatalf("pruned %d, %v; want 3", n, err)
		}
		if last, err := st.LastAuthChangeID(ctx); err != nil || last != 0 {
			t.Fatalf("last id after pruning all %d, %v; want 0", last, err)
		}
	})
}
