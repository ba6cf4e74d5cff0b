package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func TestFlushExpiredTokens(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			if r := runCLI(t, testEnv(), "", "migrate", "--db", dsn); r.code != 0 {
				t.Fatalf("migrate: %d %s", r.code, r.stderr)
			}
			ctx := context.Background()
			st := mustOpenStore(t, dsn)
			u := store.User{Username: "alice", FirstName: "A", LastName: "S", Email: "a@example.com", PasswordHash: "x", IsActive: true}
			if err := st.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for id, expires := range map[string]time.Time{"expired": now.Add(-time.Minute), "live": now.Add(time.Hour)} {
				s := store.Session{ID: id, UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: expires}
				if err := st.CreateSession(ctx, &s); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.RecordLoginFailure(ctx, "alice", "127.0.0.1", now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}

			r := runCLI(t, testEnv(), "", "flushexpiredtokens", "--db", dsn)
			if r.code != 0 || !strings.Contains(r.stdout, "Deleted 1 sessions, 2 login failures, 0 unanswered second-factor challenges and 0 unfinished WebAuthn ceremonies.") {
				t.Fatalf("flushexpiredtokens: %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if _, err := st.SessionByID(ctx, "expired"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("expired session still there: %v", err)
			}
			if _, err := st.SessionByID(ctx, "live"); err != nil {
				t.Errorf("live session flushed: %v", err)
			}
		})
	}
}
