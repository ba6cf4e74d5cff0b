package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// BenchmarkAuthChange measures one auth-changing write (a password hash upgrade): its
// transaction, the change-log row and the notification of the watchers.
func BenchmarkAuthChange(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st, u, _ := benchUserAndSession(b, backend)
			st.OnAuthChange(func(int64) {})
			hash := u.PasswordHash
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				next := fmt.Sprintf("h%d", i)
				ok, err := st.UpgradePasswordHash(ctx, u.ID, hash, next)
				if err != nil || !ok {
					b.Fatalf("upgrade %s = %v, %v", hash, ok, err)
				}
				hash = next
			}
		})
	}
}

// BenchmarkRotateLiveRefreshToken measures the one-statement rotation a refresh makes on
// PostgreSQL (on SQLite it does nothing and the refresh rotates as RotateRefreshToken).
func BenchmarkRotateLiveRefreshToken(b *testing.B) {
	ctx := context.Background()
	st, u, sess := benchUserAndSession(b, "postgres")
	prev := store.RefreshToken{ID: "r0", SessionID: sess.ID, AccessID: "a0", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := st.CreateRefreshToken(ctx, prev); err != nil {
		b.Fatal(err)
	}
	live := store.LiveSession{UserID: u.ID, SessionID: sess.ID, RefreshLifetime: time.Minute, MaxLifetime: 24 * time.Hour}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		next := store.RefreshToken{ID: fmt.Sprintf("r%d", i+1), AccessID: fmt.Sprintf("a%d", i+1), IssuedAt: t0}
		rot, ok, err := st.RotateLiveRefreshToken(ctx, prev.ID, next, t0, live)
		if err != nil || !ok || !rot.Rotated {
			b.Fatalf("rotate %s = %+v, %v, %v", prev.ID, rot, ok, err)
		}
		prev = next
	}
}
