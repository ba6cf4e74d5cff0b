package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func mustActiveTOTP(t *testing.T, st *store.Store, userID int64) store.TOTPFactor {
	t.Helper()
	ctx := context.Background()
	f, err := st.CreateTOTPFactor(ctx, userID, []byte("sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := st.ActivateTOTPFactor(ctx, userID, f.ID, 100, store.FirstFactorCodes{}); err != nil || !ok {
		t.Fatalf("activate: %v, %v", ok, err)
	}
	return f
}

func TestTOTPFactorLifecycle(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "alice")
		if _, err := st.TOTPFactorOf(ctx, u.ID); !errors.Is(err, store.ErrTOTPFactorNotFound) {
			t.Fatalf("no factor yet: %v", err)
		}
		if _, err := st.CreateTOTPFactor(ctx, 999999, []byte("x")); !errors.Is(err, store.ErrUserNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		first, err := st.CreateTOTPFactor(ctx, u.ID, []byte("one"))
		if err != nil {
			t.Fatal(err)
		}
		// A second enrolment replaces the pending factor.
		second, err := st.CreateTOTPFactor(ctx, u.ID, []byte("two"))
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := st.ActivateTOTPFactor(ctx, u.ID, first.ID, 5, store.FirstFactorCodes{}); err != nil || ok {
			t.Fatalf("activating the replaced factor: %v, %v", ok, err)
		}
		if ok, err := st.AcceptTOTPStep(ctx, second.ID, 5); err != nil || ok {
			t.Fatalf("a pending factor accepted a step: %v, %v", ok, err)
		}
		if ok, _, err := st.ActivateTOTPFactor(ctx, u.ID, second.ID, 5, store.FirstFactorCodes{}); err != nil || !ok {
			t.Fatalf("activate: %v, %v", ok, err)
		}
		got, err := st.TOTPFactorOf(ctx, u.ID)
		if err != nil || !got.Active || got.LastStep != 5 || string(got.Secret) != "two" {
			t.Fatalf("factor %+v, %v", got, err)
		}
		if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("three")); !errors.Is(err, store.ErrTOTPFactorActive) {
			t.Fatalf("enrolling over an active factor: %v", err)
		}
		if err := st.DeleteTOTPFactor(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteTOTPFactor(ctx, u.ID); !errors.Is(err, store.ErrTOTPFactorNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
	})
}

// TestAcceptTOTPStepOnce is the replay protection: a step, or an earlier one, is accepted
// once, sequentially and when many requests with it race on two instances.
func TestAcceptTOTPStepOnce(t *testing.T) {
	ctx := context.Background()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			instances := twoInstances(t, backend)
			u := mustCreateUser(t, instances[0], "alice")
			f := mustActiveTOTP(t, instances[0], u.ID)
			for _, step := range []int64{100, 99} { // the activation's step, and an earlier one
				if ok, err := instances[0].AcceptTOTPStep(ctx, f.ID, step); err != nil || ok {
					t.Fatalf("step %d after 100: %v, %v", step, ok, err)
				}
			}
			for _, step := range []int64{101, 102, 103} {
				var wins atomic.Int32
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range 8 {
					wg.Go(func() {
						<-start
						ok, err := instances[i%2].AcceptTOTPStep(ctx, f.ID, step)
						if err != nil {
							t.Error(err)
						}
						if ok {
							wins.Add(1)
						}
					})
				}
				close(start)
				wg.Wait()
				if n := wins.Load(); n != 1 {
					t.Fatalf("step %d accepted %d times, want once", step, n)
				}
				if ok, _ := instances[1].AcceptTOTPStep(ctx, f.ID, step); ok {
					t.Fatalf("step %d accepted again after the race", step)
				}
			}
		})
	}
}

func TestPlaintextTOTPSecrets(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		for i, secret := range []string{"JBSWY3DP", "enc:v1:abc", "enc:v1:def"} {
			u := mustCreateUser(t, st, fmt.Sprint("u", i))
			if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte(secret)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := st.PlaintextTOTPSecrets(ctx, "enc:v1:"); err != nil || n != 1 {
			t.Fatalf("plaintext %d, %v; want 1", n, err)
		}
	})
}
