package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func mustCreateRefreshToken(t *testing.T, st *store.Store, id, sessionID string, expires time.Time) store.RefreshToken {
	t.Helper()
	rt := store.RefreshToken{ID: id, SessionID: sessionID, AccessID: "a-" + id, IssuedAt: t0, ExpiresAt: expires}
	if err := st.CreateRefreshToken(context.Background(), rt); err != nil {
		t.Fatalf("create refresh token %s: %v", id, err)
	}
	return rt
}

// eachRotationStore is eachBackend plus PostgreSQL with rotations committed asynchronously,
// which runs other statements.
func eachRotationStore(t *testing.T, f func(t *testing.T, st *store.Store)) {
	eachBackend(t, f)
	t.Run("postgres-async", func(t *testing.T) {
		t.Parallel()
		f(t, storetest.OpenWithOptions(t, "postgres", store.Options{RotationCommit: store.CommitAsync}))
	})
}

func TestRotateRefreshToken(t *testing.T) {
	eachRotationStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, "alice")
		sess := mustCreateSession(t, st, u.ID, "s1", t0.Add(time.Hour))
		mustCreateRefreshToken(t, st, "r1", sess.ID, t0.Add(time.Hour))

		if err := st.CreateRefreshToken(ctx, store.RefreshToken{ID: "rx", SessionID: "nope", AccessID: "a", IssuedAt: t0, ExpiresAt: t0}); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("refresh token of unknown session = %v, want ErrSessionNotFound", err)
		}

		at := t0.Add(time.Minute)
		next := store.RefreshToken{ID: "r2", AccessID: "a2", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}
		rot, err := st.RotateRefreshToken(ctx, "r1", next, at)
		if err != nil || !rot.Rotated || rot.Replacement.ID != "r2" || rot.Replacement.SessionID != "s1" {
			t.Fatalf("rotate = %+v, %v; want rotated to r2 in s1", rot, err)
		}
		if rot.Old.UsedAt == nil || !rot.Old.UsedAt.Equal(stored(at)) || rot.Old.ReplacedBy != "r2" {
			t.Errorf("old after rotation = %+v", rot.Old)
		}
		if rot.Old.ID != "r1" || rot.Old.SessionID != "s1" || rot.Old.AccessID != "a-r1" ||
			!rot.Old.IssuedAt.Equal(stored(t0)) || !rot.Old.ExpiresAt.Equal(stored(t0.Add(time.Hour))) {
			t.Errorf("old after rotation = %+v, want r1 of s1 as created", rot.Old)
		}
		if stored, err := st.RefreshTokenByID(ctx, "r1"); err != nil || !reflect.DeepEqual(stored, rot.Old) {
			t.Errorf("old as stored = %+v, %v; want what the rotation returned, %+v", stored, err, rot.Old)
		}
		if stored, err := st.RefreshTokenByID(ctx, "r2"); err != nil || !reflect.DeepEqual(stored, rot.Replacement) {
			t.Errorf("replacement as stored = %+v, %v; want what the rotation returned, %+v", stored, err, rot.Replacement)
		}
		got, err := st.SessionByID(ctx, "s1")
		if err != nil || !got.ExpiresAt.Equal(stored(at.Add(time.Hour))) || !got.LastUsedAt.Equal(stored(at)) {
			t.Errorf("session after rotation = %+v, %v; want expiry and last use moved", got, err)
		}

		// Rotating the retired token again reports the replacement and records nothing.
		again, err := st.RotateRefreshToken(ctx, "r1", store.RefreshToken{ID: "r3", AccessID: "a3", IssuedAt: at, ExpiresAt: at}, at.Add(time.Second))
		if err != nil || again.Rotated || again.Replacement.ID != "r2" || again.Replacement.AccessID != "a2" {
			t.Fatalf("second rotate = %+v, %v; want not rotated, replacement r2", again, err)
		}
		if _, err := st.RefreshTokenByID(ctx, "r3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("r3 recorded by a refused rotation: %v", err)
		}
		if _, err := st.RotateRefreshToken(ctx, "unknown", next, at); !errors.Is(err, store.ErrRefreshTokenNotFound) {
			t.Errorf("rotate unknown = %v, want ErrRefreshTokenNotFound", err)
		}
	})
}

// TestRotateRefreshTokenRace: of many concurrent rotations of one token exactly one wins, and
// every loser sees the winner's replacement.
func TestRotateRefreshTokenRace(t *testing.T) {
	eachRotationStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, "alice")
		sess := mustCreateSession(t, st, u.ID, "s1", t0.Add(time.Hour))
		for round := range 5 {
			old := fmt.Sprintf("r%d", round)
			mustCreateRefreshToken(t, st, old, sess.ID, t0.Add(time.Hour))
			const n = 12
			results := make([]store.Rotation, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					next := store.RefreshToken{ID: fmt.Sprintf("%s-next%d", old, i), AccessID: "a", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
					results[i], errs[i] = st.RotateRefreshToken(ctx, old, next, t0)
				})
			}
			wg.Wait()
			winners := 0
			var winner string
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("round %d rotation %d: %v", round, i, errs[i])
				}
				if results[i].Rotated {
					winners++
					winner = results[i].Replacement.ID
				}
			}
			if winners != 1 {
				t.Fatalf("round %d: %d rotations won, want exactly 1", round, winners)
			}
			for i := range n {
				if results[i].Replacement.ID != winner {
					t.Errorf("round %d rotation %d saw replacement %q, want the winner's %q", round, i, results[i].Replacement.ID, winner)
				}
			}
		}
	})
}

func TestLiveSessionsAndRevokeUserSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		bob := mustCreateUser(t, st, "bob")
		for i, id := range []string{"old", "mid", "new"} {
			s := store.Session{ID: id, UserID: alice.ID, CreatedAt: t0.Add(time.Duration(i) * time.Minute), ExpiresAt: t0.Add(time.Hour)}
			if err := st.CreateSession(ctx, &s); err != nil {
				t.Fatal(err)
			}
		}
		mustCreateSession(t, st, alice.ID, "expired", t0.Add(-time.Minute))
		mustCreateSession(t, st, bob.ID, "bobs", t0.Add(time.Hour))
		if _, err := st.RevokeSession(ctx, "mid", t0); err != nil {
			t.Fatal(err)
		}
		live, err := st.LiveSessions(ctx, alice.ID, t0.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range live {
			ids = append(ids, s.ID)
		}
		if fmt.Sprint(ids) != "[new old]" {
			t.Errorf("live sessions = %v, want [new old] (newest first, no revoked or expired)", ids)
		}
		for _, tc := range []struct {
			id   string
			want error
		}{{"bobs", store.ErrSessionNotFound}, {"mid", store.ErrSessionNotFound}, {"expired", store.ErrSessionNotFound}, {"nope", store.ErrSessionNotFound}, {"old", nil}} {
			if err := st.RevokeUserSession(ctx, alice.ID, tc.id, t0.Add(3*time.Minute)); !errors.Is(err, tc.want) {
				t.Errorf("revoke %s = %v, want %v", tc.id, err, tc.want)
			}
		}
		if s, _ := st.SessionByID(ctx, "bobs"); s.RevokedAt != nil {
			t.Error("alice revoked bob's session")
		}
	})
}

func TestFlushExpired(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, "alice")
		mustCreateSession(t, st, u.ID, "expired", t0.Add(-time.Minute))
		mustCreateRefreshToken(t, st, "r-expired", "expired", t0.Add(-time.Minute))
		mustCreateSession(t, st, u.ID, "live", t0.Add(time.Hour))
		mustCreateSession(t, st, u.ID, "revoked-long-ago", t0.Add(time.Hour))
		mustCreateSession(t, st, u.ID, "revoked-just-now", t0.Add(time.Hour))
		if _, err := st.RevokeSession(ctx, "revoked-long-ago", t0.Add(-48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokeSession(ctx, "revoked-just-now", t0); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLoginFailure(ctx, "alice", "127.0.0.1", t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLoginFailure(ctx, "alice", "127.0.0.1", t0); err != nil {
			t.Fatal(err)
		}
		for hash, exp := range map[string]time.Time{"unanswered": t0.Add(-time.Second), "pending": t0.Add(time.Minute)} {
			c := store.MFAChallenge{IDHash: hash, UserID: u.ID, PasswordHash: "h", CreatedAt: exp.Add(-5 * time.Minute), ExpiresAt: exp}
			if err := st.CreateMFAChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.FlushExpired(ctx, t0, t0.Add(-24*time.Hour), t0.Add(-15*time.Minute))
		if err != nil || got != (store.Flushed{Sessions: 2, LoginFailures: 2, MFAChallenges: 1}) {
			t.Fatalf("flush = %+v, %v; want 2 sessions, 2 failures and 1 challenge", got, err)
		}
		if _, err := st.MFAChallengeByHash(ctx, "pending", t0); err != nil {
			t.Errorf("the pending challenge: %v, want kept", err)
		}
		for id, want := range map[string]bool{"expired": false, "revoked-long-ago": false, "live": true, "revoked-just-now": true} {
			if _, err := st.SessionByID(ctx, id); (err == nil) != want {
				t.Errorf("session %s kept = %v, want %v", id, err == nil, want)
			}
		}
		if _, err := st.RefreshTokenByID(ctx, "r-expired"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refresh token of a flushed session: %v, want gone", err)
		}
	})
}

func TestUpgradePasswordHash(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, "alice")
		if ok, err := st.UpgradePasswordHash(ctx, u.ID, "stale", "new"); err != nil || ok {
			t.Errorf("upgrade from a stale hash = %v, %v; want false", ok, err)
		}
		if ok, err := st.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, "new"); err != nil || !ok {
			t.Fatalf("upgrade = %v, %v; want true", ok, err)
		}
		if got := mustUser(t, st, u.ID); got.PasswordHash != "new" {
			t.Errorf("hash = %q, want new", got.PasswordHash)
		}
	})
}

// TestStartSession: a login inserts the session, its first refresh token and the user's last
// login together, and nothing of it when the user does not exist.
func TestStartSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := mustCreateUser(t, st, "alice")
		at := t0.Add(2 * time.Hour)
		sess := store.Session{UserID: alice.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour), UserAgent: "ua", IP: "192.0.2.1"}
		first := store.RefreshToken{ID: "r1", AccessID: "a1", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}
		if err := st.StartSession(ctx, &sess, first, alice.PasswordHash); err != nil {
			t.Fatalf("StartSession: %v", err)
		}
		if sess.ID == "" || !sess.LastUsedAt.Equal(stored(at)) {
			t.Errorf("session = %+v, want an id and last use at the login", sess)
		}
		if got, err := st.SessionByID(ctx, sess.ID); err != nil || !equalSession(got, sess) {
			t.Errorf("stored session = %+v, %v; want %+v", got, err, sess)
		}
		if rt, err := st.RefreshTokenByID(ctx, "r1"); err != nil || rt.SessionID != sess.ID || rt.AccessID != "a1" {
			t.Errorf("first refresh token = %+v, %v; want it in session %s", rt, err, sess.ID)
		}
		if got := mustUser(t, st, alice.ID); got.LastLogin == nil || !got.LastLogin.Equal(stored(at)) {
			t.Errorf("LastLogin = %v, want %v", got.LastLogin, at)
		}

		ghost := store.Session{UserID: 9999, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		if err := st.StartSession(ctx, &ghost, store.RefreshToken{ID: "r2", AccessID: "a2", IssuedAt: at, ExpiresAt: at}, alice.PasswordHash); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("StartSession(user 9999) = %v, want ErrUserNotFound", err)
		}
		if _, err := st.RefreshTokenByID(ctx, "r2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed login left its refresh token: %v", err)
		}
	})
}

// benchUserAndSession opens a store on backend with one user and one session of theirs.
func benchUserAndSession(b *testing.B, backend string) (*store.Store, store.User, store.Session) {
	ctx := context.Background()
	st := storetest.Open(b, backend)
	u := store.User{Username: "alice", PasswordHash: "x", IsActive: true, DateJoined: t0}
	if err := st.CreateUser(ctx, &u); err != nil {
		b.Fatal(err)
	}
	sess := store.Session{ID: "s1", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := st.CreateSession(ctx, &sess); err != nil {
		b.Fatal(err)
	}
	return st, u, sess
}

// benchRefreshToken records the refresh token r0 of sess.
func benchRefreshToken(b *testing.B, st *store.Store, sess store.Session) store.RefreshToken {
	rt := store.RefreshToken{ID: "r0", SessionID: sess.ID, AccessID: "a0", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := st.CreateRefreshToken(context.Background(), rt); err != nil {
		b.Fatal(err)
	}
	return rt
}

// BenchmarkRotateRefreshToken measures one rotation, the write that every refresh with
// rotation makes: on SQLite it holds the one writer connection, so its length bounds how
// many refreshes a second an instance can serve.
func BenchmarkRotateRefreshToken(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st, _, sess := benchUserAndSession(b, backend)
			prev := benchRefreshToken(b, st, sess)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				next := store.RefreshToken{ID: fmt.Sprintf("r%d", i+1), AccessID: fmt.Sprintf("a%d", i+1), IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
				rot, err := st.RotateRefreshToken(ctx, prev.ID, next, t0)
				if err != nil || !rot.Rotated {
					b.Fatalf("rotate %s = %+v, %v", prev.ID, rot, err)
				}
				prev = next
			}
		})
	}
}

// BenchmarkUserSession is the read every refresh and every uncached request makes, and with
// the refresh token the read of a verify (or an introspection) of one.
func BenchmarkUserSession(b *testing.B) {
	for _, backend := range storetest.Backends {
		ctx := context.Background()
		st, u, sess := benchUserAndSession(b, backend)
		rt := benchRefreshToken(b, st, sess)
		for _, read := range []struct {
			name string
			do   func() error
		}{
			{"session", func() error { _, _, err := st.UserSession(ctx, u.ID, sess.ID); return err }},
			{"refresh", func() error { _, _, _, err := st.UserSessionRefresh(ctx, u.ID, sess.ID, rt.ID); return err }},
		} {
			b.Run(backend+"/"+read.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := read.do(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// TestUserSessionRefresh: the user, the session and the session's refresh token in one read,
// with the user's and the session's errors before the token's.
func TestUserSessionRefresh(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, "alice")
		mustCreateSession(t, st, u.ID, "s1", t0.Add(time.Hour))
		mustCreateSession(t, st, u.ID, "s2", t0.Add(time.Hour))
		mustCreateRefreshToken(t, st, "r1", "s1", t0.Add(time.Hour))
		mustCreateRefreshToken(t, st, "r2", "s2", t0.Add(time.Hour))

		user, sess, rt, err := st.UserSessionRefresh(ctx, u.ID, "s1", "r1")
		if err != nil || user.ID != u.ID || sess.ID != "s1" || rt.ID != "r1" || rt.SessionID != "s1" || rt.UsedAt != nil {
			t.Fatalf("UserSessionRefresh = %+v, %+v, %+v, %v", user, sess, rt, err)
		}
		if _, sess, _, err := st.UserSessionRefresh(ctx, u.ID, "s1", "r2"); !errors.Is(err, store.ErrRefreshTokenNotFound) || sess.ID != "s1" {
			t.Errorf("another session's token: session %+v, %v; want the session and ErrRefreshTokenNotFound", sess, err)
		}
		if _, _, _, err := st.UserSessionRefresh(ctx, u.ID, "s1", "unknown"); !errors.Is(err, store.ErrRefreshTokenNotFound) {
			t.Errorf("unknown token: %v, want ErrRefreshTokenNotFound", err)
		}
		if _, _, _, err := st.UserSessionRefresh(ctx, u.ID, "s3", "r1"); !errors.Is(err, store.ErrSessionNotFound) {
			t.Errorf("unknown session: %v, want ErrSessionNotFound", err)
		}
		if _, _, _, err := st.UserSessionRefresh(ctx, u.ID+100, "s1", "r1"); !errors.Is(err, store.ErrUserNotFound) {
			t.Errorf("unknown user: %v, want ErrUserNotFound", err)
		}
		at := t0.Add(time.Minute)
		if _, err := st.RotateRefreshToken(ctx, "r1", store.RefreshToken{ID: "r3", AccessID: "a3", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}, at); err != nil {
			t.Fatal(err)
		}
		if _, _, rt, err := st.UserSessionRefresh(ctx, u.ID, "s1", "r1"); err != nil || rt.UsedAt == nil || !rt.UsedAt.Equal(stored(at)) {
			t.Errorf("retired token: %+v, %v; want its use time", rt, err)
		}
	})
}
