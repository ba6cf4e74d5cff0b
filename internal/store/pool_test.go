package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestManyConcurrentWriters runs far more concurrent writers than connections, each a login's
// and refreshes' worth of transactions and single writes, beside readers on every
// authenticated request's query. Every write must succeed (on SQLite, none may give up on the
// database lock: writers queue for the one writer connection) and every read must see the
// writes its own goroutine made before it.
func TestManyConcurrentWriters(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const writers, rotations = 48, 5
		var (
			wg      sync.WaitGroup
			errs    = make([]error, writers)
			reads   atomic.Int64
			stop    = make(chan struct{})
			readErr atomic.Pointer[error]
		)
		seed := mustCreateUser(t, st, "seed")
		mustCreateSession(t, st, seed.ID, "seed-session", t0.Add(time.Hour))
		var readers sync.WaitGroup
		for range 4 {
			readers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := st.UserSession(ctx, seed.ID, "seed-session"); err != nil {
						readErr.CompareAndSwap(nil, &err)
						return
					}
					reads.Add(1)
				}
			})
		}
		for i := range writers {
			wg.Go(func() {
				errs[i] = func() error {
					u := store.User{Username: fmt.Sprintf("writer%02d", i), IsActive: true, DateJoined: t0}
					if err := st.CreateUser(ctx, &u); err != nil {
						return fmt.Errorf("create user: %w", err)
					}
					a := store.LoginAttempt{Account: u.Username, IP: "192.0.2.1", At: t0, Since: t0.Add(-time.Hour), AccountLimit: 5, IPLimit: -1}
					r, err := st.ReserveLoginAttempt(ctx, a)
					if err != nil || !r.Reserved {
						return fmt.Errorf("reserve login attempt: %+v, %w", r, err)
					}
					if err := st.LoginSucceeded(ctx, r, u.ID, u.PasswordHash, u.Username, a.IP, t0); err != nil {
						return fmt.Errorf("login succeeded: %w", err)
					}
					sess := store.Session{ID: fmt.Sprintf("s%02d", i), UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
					tok := store.RefreshToken{ID: sess.ID + "-0", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
					if err := st.StartSession(ctx, &sess, tok, u.PasswordHash); err != nil {
						return fmt.Errorf("start session: %w", err)
					}
					for j := 1; j <= rotations; j++ {
						next := store.RefreshToken{ID: fmt.Sprintf("%s-%d", sess.ID, j), IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
						rot, err := st.RotateRefreshToken(ctx, tok.ID, next, t0.Add(time.Duration(j)*time.Second))
						if err != nil || !rot.Rotated {
							return fmt.Errorf("rotation %d: %+v, %w", j, rot, err)
						}
						tok = next
						// A read right after the write sees it.
						got, err := st.RefreshTokenByID(ctx, tok.ID)
						if err != nil || got.SessionID != sess.ID {
							return fmt.Errorf("read rotation %d back: %+v, %w", j, got, err)
						}
					}
					if err := st.RecordLoginFailure(ctx, u.Username, "192.0.2.2", t0); err != nil {
						return fmt.Errorf("record login failure: %w", err)
					}
					if _, err := st.RevokeSession(ctx, sess.ID, t0.Add(time.Minute)); err != nil {
						return fmt.Errorf("revoke session: %w", err)
					}
					_, got, err := st.UserSession(ctx, u.ID, sess.ID)
					if err != nil || got.RevokedAt == nil {
						return fmt.Errorf("read the revocation back: %+v, %w", got, err)
					}
					return nil
				}()
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		if p := readErr.Load(); p != nil {
			t.Errorf("reader: %v", *p)
		}
		if got, err := st.CountUsers(ctx); got != writers+1 || err != nil {
			t.Errorf("CountUsers = %d, %v; want %d", got, err, writers+1)
		}
		t.Logf("%d reads beside the writers", reads.Load())
	})
}

// TestReadDuringWriteTransaction holds a write transaction open and reads meanwhile: the read
// must neither wait for the transaction (on SQLite, reads must not need the one writer
// connection it holds) nor see its uncommitted change; once it commits, reads see it.
func TestReadDuringWriteTransaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		for _, id := range []string{"k1", "k2"} {
			if err := st.CreateSigningKey(ctx, store.SigningKey{ID: id, Algorithm: "EdDSA", Private: []byte("old-" + id), CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		var during []store.SigningKey
		_, err := st.ChangeSigningKeyPrivates(ctx, func(k store.SigningKey) ([]byte, bool, error) {
			if k.ID == "k2" {
				// k1's new value is written, uncommitted. A read that needed the writer would
				// wait here forever; the deadline turns that into a failure.
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				var err error
				if during, err = st.SigningKeys(rctx); err != nil {
					return nil, false, fmt.Errorf("read during the transaction: %w", err)
				}
			}
			return []byte("new-" + k.ID), true, nil
		})
		if err != nil {
			t.Fatalf("ChangeSigningKeyPrivates: %v", err)
		}
		if len(during) != 2 || string(during[0].Private) != "old-k1" {
			t.Errorf("read during the transaction = %+v, want both keys, k1 still old", during)
		}
		after, err := st.SigningKeys(ctx)
		if err != nil || len(after) != 2 || string(after[0].Private) != "new-k1" || string(after[1].Private) != "new-k2" {
			t.Errorf("read after commit = %+v, %v; want both keys new", after, err)
		}
	})
}

// PoolStats names each pool and reports its limit: on SQLite one writer connection beside the
// readers, on PostgreSQL one pool.
func TestPoolStats(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.Store) {
		if err := st.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		stats := st.PoolStats()
		want := map[string]int{"postgres": store.DefaultOptions().MaxOpenConns}
		if _, ok := stats["postgres"]; !ok {
			want = map[string]int{"sqlite_write": 1, "sqlite_read": store.DefaultOptions().MaxOpenConns}
		}
		if len(stats) != len(want) {
			t.Fatalf("PoolStats = %v, want pools %v", stats, want)
		}
		for name, max := range want {
			s, ok := stats[name]
			if !ok || s.MaxOpenConnections != max || s.OpenConnections < 1 {
				t.Errorf("pool %q = %+v (present %v), want MaxOpenConnections %d and a connection open after Ping", name, s, ok, max)
			}
		}
	})
}
