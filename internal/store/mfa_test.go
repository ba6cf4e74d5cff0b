package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func mustChallenge(t *testing.T, st *store.Store, userID int64, hash string, expires time.Time) {
	t.Helper()
	c := store.MFAChallenge{IDHash: hash, UserID: userID, PasswordHash: "h", CreatedAt: t0, ExpiresAt: expires}
	if err := st.CreateMFAChallenge(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// race runs fn n times at once, alternating instances, and returns how many returned nil.
func race(t *testing.T, instances []*store.Store, n int, fn func(i int, st *store.Store) error) int {
	t.Helper()
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := fn(i, instances[i%len(instances)])
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrMFAChallengeNotFound), errors.Is(err, store.ErrFactorRejected):
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(wins.Load())
}

func TestMFAChallengeOnce(t *testing.T) {
	ctx := context.Background()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			instances := twoInstances(t, backend)
			st := instances[0]
			u := mustCreateUser(t, st, "alice")
			f := mustActiveTOTP(t, st, u.ID) // last step 100
			mustChallenge(t, st, u.ID, "c1", t0.Add(5*time.Minute))

			if _, err := st.MFAChallengeByHash(ctx, "c1", t0.Add(5*time.Minute)); !errors.Is(err, store.ErrMFAChallengeNotFound) {
				t.Fatalf("expired challenge found: %v", err)
			}
			if err := st.CompleteMFAChallenge(ctx, "c1", t0.Add(5*time.Minute), store.MFAProof{TOTPFactorID: f.ID, Step: 101}); !errors.Is(err, store.ErrMFAChallengeNotFound) {
				t.Fatalf("completing an expired challenge: %v", err)
			}
			// A used step is refused and leaves the challenge for another try.
			if err := st.CompleteMFAChallenge(ctx, "c1", t0, store.MFAProof{TOTPFactorID: f.ID, Step: 100}); !errors.Is(err, store.ErrFactorRejected) {
				t.Fatalf("completing with a used step: %v", err)
			}
			if got, err := st.MFAChallengeByHash(ctx, "c1", t0); err != nil || got.UserID != u.ID {
				t.Fatalf("challenge after a refused step: %+v, %v", got, err)
			}
			// One challenge, many answers with distinct fresh steps: one wins.
			if n := race(t, instances, 8, func(i int, st *store.Store) error {
				return st.CompleteMFAChallenge(ctx, "c1", t0, store.MFAProof{TOTPFactorID: f.ID, Step: 200 + int64(i)})
			}); n != 1 {
				t.Fatalf("challenge completed %d times, want once", n)
			}
			// Many challenges, one step: one wins, the other challenges stay.
			for i := range 8 {
				mustChallenge(t, st, u.ID, fmt.Sprintf("d%d", i), t0.Add(time.Minute))
			}
			if n := race(t, instances, 8, func(i int, st *store.Store) error {
				return st.CompleteMFAChallenge(ctx, fmt.Sprintf("d%d", i), t0, store.MFAProof{TOTPFactorID: f.ID, Step: 300})
			}); n != 1 {
				t.Fatalf("step used %d times, want once", n)
			}
		})
	}
}

func TestRecoveryCodesOnce(t *testing.T) {
	ctx := context.Background()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			instances := twoInstances(t, backend)
			st := instances[0]
			u := mustCreateUser(t, st, "alice")
			if err := st.ReplaceRecoveryCodes(ctx, u.ID, []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
			for i := range 8 {
				mustChallenge(t, st, u.ID, fmt.Sprintf("c%d", i), t0.Add(time.Minute))
			}
			if n := race(t, instances, 8, func(i int, st *store.Store) error {
				return st.CompleteMFAChallenge(ctx, fmt.Sprintf("c%d", i), t0, store.MFAProof{RecoveryCodeHash: "a"})
			}); n != 1 {
				t.Fatalf("recovery code used %d times, want once", n)
			}
			if left, err := st.RecoveryCodesLeft(ctx, u.ID); err != nil || left != 1 {
				t.Fatalf("left %d, %v; want 1", left, err)
			}
			// Another user's code is not this user's.
			bob := mustCreateUser(t, st, "bob")
			mustChallenge(t, st, bob.ID, "bob", t0.Add(time.Minute))
			if err := st.CompleteMFAChallenge(ctx, "bob", t0, store.MFAProof{RecoveryCodeHash: "b"}); !errors.Is(err, store.ErrFactorRejected) {
				t.Fatalf("bob used alice's code: %v", err)
			}
			// Regeneration kills the old set.
			if err := st.ReplaceRecoveryCodes(ctx, u.ID, []string{"x"}); err != nil {
				t.Fatal(err)
			}
			if err := st.CompleteMFAChallenge(ctx, "c7", t0, store.MFAProof{RecoveryCodeHash: "b"}); !errors.Is(err, store.ErrFactorRejected) && !errors.Is(err, store.ErrMFAChallengeNotFound) {
				t.Fatalf("old code after regeneration: %v", err)
			}
			mustChallenge(t, st, u.ID, "new", t0.Add(time.Minute))
			if err := st.CompleteMFAChallenge(ctx, "new", t0, store.MFAProof{RecoveryCodeHash: "b"}); !errors.Is(err, store.ErrFactorRejected) {
				t.Fatalf("old code after regeneration: %v", err)
			}
			if err := st.CompleteMFAChallenge(ctx, "new", t0, store.MFAProof{RecoveryCodeHash: "x"}); err != nil {
				t.Fatalf("new code: %v", err)
			}
		})
	}
}

// TestSessionAMR: a session keeps how its user authenticated, through every read a token's
// check or refresh makes (UserSession, and the live rotation on PostgreSQL).
func TestSessionAMR(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "alice")
		later := time.Now().Add(time.Hour)
		for _, tc := range []struct {
			id   string
			amr  []string
			want string
		}{{"s-pwd", nil, "pwd"}, {"s-mfa", []string{"pwd", "otp", "mfa"}, "pwd otp mfa"}} {
			sess := store.Session{ID: tc.id, UserID: u.ID, ExpiresAt: later, AMR: tc.amr}
			if err := st.StartSession(ctx, &sess, store.RefreshToken{ID: "r-" + tc.id, ExpiresAt: later}, u.PasswordHash); err != nil {
				t.Fatal(err)
			}
			_, got, err := st.UserSession(ctx, u.ID, tc.id)
			if err != nil || strings.Join(got.AMR, " ") != tc.want {
				t.Fatalf("%s: amr %v, %v; want %q", tc.id, got.AMR, err, tc.want)
			}
			next := store.RefreshToken{ID: "n-" + tc.id, AccessID: "a-" + tc.id, IssuedAt: time.Now()}
			rot, ok, err := st.RotateLiveRefreshToken(ctx, "r-"+tc.id, next, time.Now(), store.LiveSession{
				UserID: u.ID, SessionID: tc.id, RefreshLifetime: time.Hour, MaxLifetime: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if ok && strings.Join(rot.SessionAMR, " ") != tc.want {
				t.Fatalf("%s: rotation amr %v; want %q", tc.id, rot.SessionAMR, tc.want)
			}
		}
	})
}
