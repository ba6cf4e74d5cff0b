package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestSessionRulesMatchSQL pins the SQL forms of the session rules to their Go forms, on each
// database, just under, at and over each limit: liveness (Session.Live, and the condition of
// LiveSessions and the revocations) and, for a refresh, liveness with an active user and the
// replacement's expiry (RefreshExpiry, and the one-statement RotateLiveRefreshToken on
// PostgreSQL; on SQLite that reports false and the rotation runs on the Go rule alone).
func TestSessionRulesMatchSQL(t *testing.T) {
	const (
		µs      = time.Microsecond
		refresh = time.Hour
		max     = 3 * time.Hour
	)
	c := stored(t0).UTC() // the sessions' creation
	fresh := c.Add(time.Minute)
	type tc struct {
		name          string
		now, expires  time.Time
		revokedAt     time.Time // zero: not revoked
		inactive      bool
		rl, ml        time.Duration // zero: refresh, max
		live, refresh bool          // what the Go rules say, as a check of the table
	}
	cases := []tc{
		{name: "fresh", now: fresh, expires: fresh.Add(time.Hour), live: true, refresh: true},
		{name: "max lifetime just under", now: c.Add(max - µs), expires: c.Add(max + time.Hour), live: true, refresh: true},
		{name: "max lifetime at", now: c.Add(max), expires: c.Add(max + time.Hour), live: true},
		{name: "max lifetime over", now: c.Add(max + µs), expires: c.Add(max + time.Hour), live: true},
		{name: "refresh lifetime under the cap", now: c.Add(max - refresh - µs), expires: c.Add(max), live: true, refresh: true},
		{name: "refresh lifetime at the cap", now: c.Add(max - refresh), expires: c.Add(max), live: true, refresh: true},
		{name: "refresh lifetime over the cap", now: c.Add(max - refresh + µs), expires: c.Add(max), live: true, refresh: true},
		{name: "max lifetime shorter than refresh", now: fresh, expires: fresh.Add(time.Hour), ml: 2 * time.Minute, live: true, refresh: true},
		{name: "max lifetime reached, refresh longer", now: fresh, expires: fresh.Add(time.Hour), ml: time.Minute, live: true},
		{name: "expiry just under", now: fresh, expires: fresh.Add(µs), live: true, refresh: true},
		{name: "expiry at", now: fresh, expires: fresh},
		{name: "expiry over", now: fresh, expires: fresh.Add(-µs)},
		{name: "revoked before now", now: fresh, expires: fresh.Add(time.Hour), revokedAt: fresh.Add(-µs)},
		{name: "revoked at now", now: fresh, expires: fresh.Add(time.Hour), revokedAt: fresh},
		{name: "revoked after now", now: fresh, expires: fresh.Add(time.Hour), revokedAt: fresh.Add(µs)},
		{name: "user inactive", now: fresh, expires: fresh.Add(time.Hour), inactive: true, live: true},
	}
	eachRotationStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		for i, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				rl, ml := refresh, max
				if tt.rl != 0 {
					rl = tt.rl
				}
				if tt.ml != 0 {
					ml = tt.ml
				}
				var opts []userOpt
				if tt.inactive {
					opts = append(opts, inactive)
				}
				u := mustCreateUser(t, st, fmt.Sprintf("user%d", i), opts...)
				sid, rid := fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
				sess := store.Session{ID: sid, UserID: u.ID, CreatedAt: c, ExpiresAt: tt.expires}
				if err := st.CreateSession(ctx, &sess); err != nil {
					t.Fatal(err)
				}
				mustCreateRefreshToken(t, st, rid, sid, tt.expires)
				if !tt.revokedAt.IsZero() {
					if _, err := st.RevokeSession(ctx, sid, tt.revokedAt); err != nil {
						t.Fatal(err)
					}
				}
				sess, err := st.SessionByID(ctx, sid)
				if err != nil {
					t.Fatal(err)
				}

				// The Go rules, on the session as stored.
				live := sess.Live(tt.now)
				expires := store.RefreshExpiry(sess.CreatedAt, tt.now, rl, ml)
				refreshes := !tt.inactive && live && expires.After(tt.now)
				if live != tt.live || refreshes != tt.refresh {
					t.Fatalf("Go rules: live %v, refresh %v (expiry %v); the table says %v, %v", live, refreshes, expires, tt.live, tt.refresh)
				}

				// Liveness in SQL.
				listed, err := st.LiveSessions(ctx, u.ID, tt.now)
				if err != nil {
					t.Fatal(err)
				}
				if sqlLive := len(listed) == 1 && listed[0].ID == sid; sqlLive != live || len(listed) > 1 {
					t.Errorf("LiveSessions at %v = %+v; Session.Live says %v", tt.now, listed, live)
				}

				// Liveness, the user and the expiry, in the one-statement rotation.
				next := store.RefreshToken{ID: rid + "-next", AccessID: "a-" + rid + "-next", IssuedAt: tt.now}
				rot, ok, err := st.RotateLiveRefreshToken(ctx, rid, next, tt.now,
					store.LiveSession{UserID: u.ID, SessionID: sid, RefreshLifetime: rl, MaxLifetime: ml})
				if err != nil {
					t.Fatal(err)
				}
				if st.Dialect() == "sqlite" {
					if ok {
						t.Fatalf("rotated on SQLite: %+v", rot)
					}
					return
				}
				if ok != refreshes {
					t.Fatalf("RotateLiveRefreshToken rotated %v; the Go rules say %v", ok, refreshes)
				}
				if ok && !rot.Replacement.ExpiresAt.Equal(expires) {
					t.Errorf("replacement expires at %v; RefreshExpiry says %v", rot.Replacement.ExpiresAt, expires)
				}
			})
		}
	})
}
