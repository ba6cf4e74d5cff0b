package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestRotateLiveRefreshToken: the one-statement rotation happens only when every check a
// refresh makes passes, with the expiry it would compute, and otherwise changes nothing.
func TestRotateLiveRefreshToken(t *testing.T) {
	at := t0.Add(time.Minute)
	live := func(st *store.Store, u store.User) store.LiveSession {
		return store.LiveSession{UserID: u.ID, SessionID: "s1", RefreshLifetime: time.Hour, MaxLifetime: 30 * 24 * time.Hour}
	}
	tests := []struct {
		name        string
		prepare     func(t *testing.T, st *store.Store, u store.User, want *store.LiveSession, now *time.Time)
		wantExpires time.Time // zero: not rotated
	}{
		{"live", nil, at.Add(time.Hour)},
		{"capped by the session's age", func(_ *testing.T, _ *store.Store, _ store.User, want *store.LiveSession, _ *time.Time) {
			want.MaxLifetime = 30 * time.Minute
		}, t0.Add(30 * time.Minute)},
		{"session too old", func(_ *testing.T, _ *store.Store, _ store.User, want *store.LiveSession, _ *time.Time) {
			want.MaxLifetime = 30 * time.Second
		}, time.Time{}},
		{"another user", func(_ *testing.T, _ *store.Store, _ store.User, want *store.LiveSession, _ *time.Time) {
			want.UserID++
		}, time.Time{}},
		{"another session", func(t *testing.T, st *store.Store, u store.User, want *store.LiveSession, _ *time.Time) {
			mustCreateSession(t, st, u.ID, "s2", t0.Add(time.Hour))
			want.SessionID = "s2"
		}, time.Time{}},
		{"user inactive", func(t *testing.T, st *store.Store, u store.User, _ *store.LiveSession, _ *time.Time) {
			if _, err := st.UpdateUser(context.Background(), u.ID, func(u *store.User) error { u.IsActive = false; return nil }, false, t0); err != nil {
				t.Fatal(err)
			}
		}, time.Time{}},
		{"session revoked", func(t *testing.T, st *store.Store, _ store.User, _ *store.LiveSession, _ *time.Time) {
			if _, err := st.RevokeSession(context.Background(), "s1", t0); err != nil {
				t.Fatal(err)
			}
		}, time.Time{}},
		{"session expired", func(_ *testing.T, _ *store.Store, _ store.User, _ *store.LiveSession, now *time.Time) {
			*now = t0.Add(2 * time.Hour)
		}, time.Time{}},
		{"token retired", func(t *testing.T, st *store.Store, _ store.User, _ *store.LiveSession, _ *time.Time) {
			next := store.RefreshToken{ID: "r0", AccessID: "a0", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			if _, err := st.RotateRefreshToken(context.Background(), "r1", next, t0); err != nil {
				t.Fatal(err)
			}
		}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachRotationStore(t, func(t *testing.T, st *store.Store) {
				ctx := context.Background()
				u := mustCreateUser(t, st, "alice")
				mustCreateSession(t, st, u.ID, "s1", t0.Add(time.Hour))
				mustCreateRefreshToken(t, st, "r1", "s1", t0.Add(time.Hour))
				want, now := live(st, u), at
				if tt.prepare != nil {
					tt.prepare(t, st, u, &want, &now)
				}
				beforeToken, _ := st.RefreshTokenByID(ctx, "r1")
				beforeSession, _ := st.SessionByID(ctx, "s1")
				next := store.RefreshToken{ID: "r2", AccessID: "a2", IssuedAt: now}
				rot, ok, err := st.RotateLiveRefreshToken(ctx, "r1", next, now, want)
				if err != nil {
					t.Fatal(err)
				}
				if st.Dialect() == "sqlite" || tt.wantExpires.IsZero() {
					if ok {
						t.Fatalf("rotated: %+v; want nothing done", rot)
					}
					afterToken, _ := st.RefreshTokenByID(ctx, "r1")
					afterSession, _ := st.SessionByID(ctx, "s1")
					if !reflect.DeepEqual(afterToken, beforeToken) || !reflect.DeepEqual(afterSession, beforeSession) {
						t.Errorf("changed: token %+v -> %+v, session %+v -> %+v", beforeToken, afterToken, beforeSession, afterSession)
					}
					return
				}
				wantNext := store.RefreshToken{ID: "r2", SessionID: "s1", AccessID: "a2", IssuedAt: stored(now).UTC(), ExpiresAt: stored(tt.wantExpires).UTC()}
				if !ok || !rot.Rotated || !reflect.DeepEqual(rot.Replacement, wantNext) {
					t.Fatalf("rotation = %+v, %v; want replacement %+v", rot, ok, wantNext)
				}
				if got, err := st.RefreshTokenByID(ctx, "r2"); err != nil || !reflect.DeepEqual(got, wantNext) {
					t.Errorf("replacement as stored = %+v, %v", got, err)
				}
				if got, err := st.RefreshTokenByID(ctx, "r1"); err != nil || !reflect.DeepEqual(got, rot.Old) || got.ReplacedBy != "r2" {
					t.Errorf("old as stored = %+v, %v; want %+v replaced by r2", got, err, rot.Old)
				}
				if got, err := st.SessionByID(ctx, "s1"); err != nil || !got.ExpiresAt.Equal(stored(tt.wantExpires)) || !got.LastUsedAt.Equal(stored(now)) {
					t.Errorf("session = %+v, %v; want expiry %v, last use %v", got, err, tt.wantExpires, now)
				}
			})
		})
	}
}
