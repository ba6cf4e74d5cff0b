package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestChangePassword: the new hash is stored, every live session revoked (the changing one
// too) and the new session started with its refresh token, in one go; a stale hash, a dead
// changing session or an unknown user change nothing.
func TestChangePassword(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		at := t0.Add(time.Minute)
		keep := mustCreateSession(t, st, alice.ID, "keep", at.Add(time.Hour))
		other := mustCreateSession(t, st, alice.ID, "other", at.Add(time.Hour))
		expired := mustCreateSession(t, st, alice.ID, "expired", at.Add(-time.Second))
		bobs := mustCreateSession(t, st, bob.ID, "bobs", at.Add(time.Hour))

		for _, tc := range []struct {
			name          string
			id            int64
			oldHash, keep string
			want          error
		}{
			{"stale hash", alice.ID, "hash-of-someone-else", keep.ID, store.ErrPasswordChanged},
			{"changing session of another user", alice.ID, alice.PasswordHash, bobs.ID, store.ErrSessionNotFound},
			{"changing session expired", alice.ID, alice.PasswordHash, expired.ID, store.ErrSessionNotFound},
			{"unknown user", 9999, alice.PasswordHash, keep.ID, store.ErrUserNotFound},
		} {
			if _, next, err := changePassword(st, tc.id, tc.oldHash, "new-hash", tc.keep, at); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			} else if _, err := st.SessionByID(ctx, next.ID); !errors.Is(err, store.ErrSessionNotFound) {
				t.Errorf("%s: the new session was recorded: %v", tc.name, err)
			}
			if got := mustUser(t, st, alice.ID).PasswordHash; got != alice.PasswordHash {
				t.Fatalf("%s: hash changed to %q", tc.name, got)
			}
			if s, _ := st.SessionByID(ctx, other.ID); s.RevokedAt != nil {
				t.Fatalf("%s: revoked another session", tc.name)
			}
		}

		n, next, err := changePassword(st, alice.ID, alice.PasswordHash, "new-hash", keep.ID, at)
		if err != nil || n != 2 {
			t.Fatalf("ChangePassword = %d, %v; want 2 sessions revoked", n, err)
		}
		if next.UserID != alice.ID || next.RevokedAt != nil || !next.CreatedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("new session %+v, want alice's, live, created at %v", next, at)
		}
		if rt, err := st.RefreshTokenByID(ctx, "r-"+next.ID); err != nil || rt.SessionID != next.ID {
			t.Errorf("the new session's refresh token: %+v, %v", rt, err)
		}
		if got := mustUser(t, st, alice.ID).PasswordHash; got != "new-hash" {
			t.Errorf("hash %q, want new-hash", got)
		}
		for _, tc := range []struct {
			id      string
			revoked bool
		}{{keep.ID, true}, {other.ID, true}, {expired.ID, false}, {bobs.ID, false}, {next.ID, false}} {
			s, err := st.SessionByID(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if (s.RevokedAt != nil) != tc.revoked {
				t.Errorf("session %s: revoked at %v, want revoked %v", tc.id, s.RevokedAt, tc.revoked)
			}
		}
		// The old hash is gone: a second change with it, or a login checked against it, fails.
		if _, _, err := changePassword(st, alice.ID, alice.PasswordHash, "newer", next.ID, at); !errors.Is(err, store.ErrPasswordChanged) {
			t.Errorf("second change with the old hash: %v, want ErrPasswordChanged", err)
		}
		sess := store.Session{UserID: alice.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		err = st.StartSession(ctx, &sess, store.RefreshToken{ID: "r-old", AccessID: "a-old", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}, alice.PasswordHash)
		if !errors.Is(err, store.ErrPasswordChanged) {
			t.Errorf("login checked against the old hash: %v, want ErrPasswordChanged", err)
		}
		if _, err := st.RefreshTokenByID(ctx, "r-old"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused login left its refresh token: %v", err)
		}
	})
}

// TestChangePasswordRacesLogins runs logins checked against the old hash alongside a password
// change: afterwards no session of those logins is live, only the change's new one. Each
// login either committed first
// (and the change revoked it) or found the hash changed.
func TestChangePasswordRacesLogins(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := t0.Add(time.Minute)
		for round := range 10 {
			u := mustCreateUser(t, st, fmt.Sprint("racer", round))
			keep := mustCreateSession(t, st, u.ID, fmt.Sprint("keep", round), at.Add(time.Hour))
			const logins = 8
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				ids   = make([]string, logins)
				errs  = make([]error, logins)
			)
			for i := range logins {
				wg.Go(func() {
					<-start
					sess := store.Session{UserID: u.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
					rt := store.RefreshToken{ID: fmt.Sprintf("r%d-%d", round, i), IssuedAt: at, ExpiresAt: at.Add(time.Hour)}
					errs[i] = st.StartSession(ctx, &sess, rt, u.PasswordHash)
					ids[i] = sess.ID
				})
			}
			var (
				changeErr error
				next      store.Session
			)
			wg.Go(func() {
				<-start
				_, next, changeErr = changePassword(st, u.ID, u.PasswordHash, "changed", keep.ID, at)
			})
			close(start)
			wg.Wait()
			if changeErr != nil {
				t.Fatalf("round %d: change: %v", round, changeErr)
			}
			live, err := st.LiveSessions(ctx, u.ID, at)
			if err != nil {
				t.Fatal(err)
			}
			if len(live) != 1 || live[0].ID != next.ID {
				t.Fatalf("round %d: live sessions %v, want only the change's new one", round, sessionIDs(live))
			}
			for i, err := range errs {
				if err != nil && !errors.Is(err, store.ErrPasswordChanged) {
					t.Fatalf("round %d: login %d: %v", round, i, err)
				}
			}
		}
	})
}

func sessionIDs(ss []store.Session) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}
