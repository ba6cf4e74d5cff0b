package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// Usernames are unique, and found, in their NFKC-normalised form ignoring case: the fullwidth
// "ａｄｍｉｎ" is "admin".
func TestUsernameKeyNFKC(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			admin := mustCreateUser(t, st, "admin")
			for _, name := range []string{"ａｄｍｉｎ", "ＡＤＭＩＮ", "Admin"} {
				u := store.User{Username: name, PasswordHash: "x", IsActive: true, DateJoined: t0}
				if err := st.CreateUser(ctx, &u); !errors.Is(err, store.ErrConflict) {
					t.Errorf("CreateUser(%q) beside admin = %v, want ErrConflict", name, err)
				}
				if got, err := st.UserByUsername(ctx, name); err != nil || got.ID != admin.ID {
					t.Errorf("UserByUsername(%q) = %d, %v; want admin (%d)", name, got.ID, err, admin.ID)
				}
			}
			if got := store.UsernameKey("ａｄｍｉｎ"); got != "admin" {
				t.Errorf("UsernameKey(ａｄｍｉｎ) = %q, want admin", got)
			}
		})
	}
}

// TestUsernameKeysMigration: migration 00009 recomputes the keys of users stored before it (as
// the store wrote them then: lower-cased, not normalised); where two usernames become one, it
// leaves both rows as they are and reports them, rather than merge them or fail.
func TestUsernameKeysMigration(t *testing.T) {
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
			if err := st.MigrateTo(ctx, 7); err != nil {
				t.Fatalf("migrate to 7: %v", err)
			}
			// In id order: 1 admin, 2 ａｄｍｉｎ (collides with 1), 3 Ｂｏｂ (alone: re-keyed),
			// 4 Ａdmin (collides with 1 and 2), 5 carol.
			for _, name := range []string{"admin", "ａｄｍｉｎ", "Ｂｏｂ", "Ａdmin", "carol"} {
				key := strings.ToLower(name)
				err := st.Exec(ctx, `INSERT INTO users (username, username_key, first_name, last_name, email, email_key, search_key,
					password_hash, is_active, is_staff, is_superuser, date_joined) VALUES (?, ?, 'Ｆｉｒｓｔ', 'L', ?, ?, ?, 'x', ?, ?, ?, ?)`,
					name, key, "m@example.com", "m@example.com", key+"\nｆｉｒｓｔ\nl\nm@example.com", true, false, false, t0)
				if err != nil {
					t.Fatalf("insert %s: %v", name, err)
				}
			}
			if got := st.RekeyCollisions(); got != nil {
				t.Fatalf("RekeyCollisions before 00009 = %v", got)
			}
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			want := []store.UsernameCollision{{Key: "admin", Users: []store.User{{ID: 1, Username: "admin"}, {ID: 2, Username: "ａｄｍｉｎ"}, {ID: 4, Username: "Ａdmin"}}, Holder: 1}}
			if got := st.RekeyCollisions(); !slices.EqualFunc(got, want, sameCollision) {
				t.Errorf("RekeyCollisions = %+v, want %+v", got, want)
			}
			if got, err := st.UsernameCollisions(ctx); err != nil || !slices.EqualFunc(got, want, sameCollision) {
				t.Errorf("UsernameCollisions = %+v, %v; want %+v", got, err, want)
			}
			keys, err := st.QueryStrings(ctx, "SELECT username_key FROM users ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			if w := []string{"admin", "ａｄｍｉｎ", "bob", "ａdmin", "carol"}; !slices.Equal(keys, w) {
				t.Errorf("username keys = %q, want %q: the colliding rows' as they were, Ｂｏｂ's re-keyed", keys, w)
			}
			// Ｂｏｂ is found by its normalised name, and by a search in any width.
			if u, err := st.UserByUsername(ctx, "bob"); err != nil || u.ID != 3 {
				t.Errorf("UserByUsername(bob) = %d, %v; want 3", u.ID, err)
			}
			if got := searchNames(t, st, "first bob"); !slices.Equal(got, []string{"Ｂｏｂ"}) {
				t.Errorf("search 'first bob' = %v, want Ｂｏｂ", got)
			}
			// Either spelling of a collision logs in as the user whose key is the folded form.
			if u, err := st.UserByUsername(ctx, "ａｄｍｉｎ"); err != nil || u.ID != 1 {
				t.Errorf("UserByUsername(ａｄｍｉｎ) = %d, %v; want 1", u.ID, err)
			}
			// A colliding user can still be changed (deactivated, say) and renamed; once renamed,
			// its collision is gone.
			if _, err := st.UpdateUser(ctx, 2, func(u *store.User) error { u.IsActive = false; return nil }, true, t0); err != nil {
				t.Errorf("deactivate colliding user 2: %v", err)
			}
			if _, err := st.UpdateUser(ctx, 2, func(u *store.User) error { u.Username = "admin2"; return nil }, false, t0); err != nil {
				t.Errorf("rename colliding user 2: %v", err)
			}
			if _, err := st.UpdateUser(ctx, 4, func(u *store.User) error { u.Username = "admin"; return nil }, false, t0); !errors.Is(err, store.ErrConflict) {
				t.Errorf("rename user 4 to admin = %v, want ErrConflict", err)
			}
			want[0].Users = slices.Delete(want[0].Users, 1, 2)
			if got, err := st.UsernameCollisions(ctx); err != nil || !slices.EqualFunc(got, want, sameCollision) {
				t.Errorf("UsernameCollisions after renaming user 2 = %+v, %v; want %+v", got, err, want)
			}
			// Applied once: another process's Migrate finds nothing to do, and reports nothing.
			again, err := store.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { again.Close() })
			if err := again.Migrate(ctx); err != nil || again.RekeyCollisions() != nil {
				t.Errorf("second Migrate = %v, collisions %v; want nil, none", err, again.RekeyCollisions())
			}
		})
	}
}

func sameCollision(a, b store.UsernameCollision) bool {
	return a.Key == b.Key && a.Holder == b.Holder && slices.EqualFunc(a.Users, b.Users, func(x, y store.User) bool { return x.ID == y.ID && x.Username == y.Username })
}
