package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// While every hashing slot is taken, each operation that hashes answers 503 busy with a
// Retry-After, changes nothing and counts no failed login; once a slot is free they work.
// The test holds the hasher's only slot itself, so nothing depends on timing.
func TestHashingBusy(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			slots := semaphore.NewWeighted(1)
			e := newTestEnv(t, backend, withHasher(password.NewHasher(password.FastParams(),
				password.Limit{Slots: slots, Wait: time.Millisecond})))
			e.mustUser(t, "root", superRole)
			alice := e.mustUser(t, "alice", regular)
			root := bearer(e.mustLogin(t, "root").Access)
			aliceSession := e.mustLogin(t, "alice")
			aliceOther := e.mustLogin(t, "alice")

			if err := slots.Acquire(ctx, 1); err != nil {
				t.Fatal(err)
			}
			wantBusy := func(what string, status int, header http.Header, body []byte) {
				t.Helper()
				wantError(t, what, status, body, http.StatusServiceUnavailable, "busy")
				if got := header.Get("Retry-After"); got != "1" {
					t.Errorf("%s: Retry-After %q, want \"1\" (the 1ms wait rounded up to a second)", what, got)
				}
			}
			// More than the per-account limit (5), so counted failures would lock alice out.
			for i, c := range []client.TokenObtainRequest{
				{Username: "alice", Password: demoPassword},
				{Username: "alice", Password: "wrong password"},
				{Username: "nobody", Password: demoPassword}, // the dummy verify waits too
				{Username: "alice", Password: "wrong password"},
				{Username: "alice", Password: "wrong password"},
				{Username: "alice", Password: "wrong password"},
				{Username: "alice", Password: "wrong password"},
			} {
				r, err := e.client.ObtainTokenWithResponse(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				wantBusy(fmt.Sprintf("login %d (%s)", i, c.Username), r.StatusCode(), r.HTTPResponse.Header, r.Body)
			}
			c, err := e.client.CreateUserWithResponse(ctx, newUserBody("bob"), root)
			if err != nil {
				t.Fatal(err)
			}
			wantBusy("create user", c.StatusCode(), c.HTTPResponse.Header, c.Body)
			if _, err := e.store.UserByUsername(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("bob after a busy create: %v, want ErrNotFound", err)
			}
			const newPassword = "a fresh password 42"
			p, err := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, client.UserPatch{Password: ptr(newPassword), FirstName: ptr("Changed")}, root)
			if err != nil {
				t.Fatal(err)
			}
			wantBusy("PATCH password", p.StatusCode(), p.HTTPResponse.Header, p.Body)
			u, err := e.client.UpdateUserWithResponse(ctx, alice.ID, client.UserUpdate{
				Username: "alice", FirstName: "Changed", LastName: "Seed", Email: "alice@example.com", Password: ptr(newPassword)}, root)
			if err != nil {
				t.Fatal(err)
			}
			wantBusy("PUT password", u.StatusCode(), u.HTTPResponse.Header, u.Body)
			if got, err := e.store.UserByID(ctx, alice.ID); err != nil || got.FirstName != alice.FirstName || got.PasswordHash != alice.PasswordHash {
				t.Errorf("alice after busy updates: first name %q, hash changed %v, err %v; want unchanged", got.FirstName, got.PasswordHash != alice.PasswordHash, err)
			}
			pc, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: newPassword}, bearer(aliceSession.Access))
			if err != nil {
				t.Fatal(err)
			}
			wantBusy("change own password", pc.StatusCode(), pc.HTTPResponse.Header, pc.Body)
			if got := getAccount(t, e, aliceOther.Access); got != http.StatusOK {
				t.Errorf("alice's other session after a busy password change: %d, want 200", got)
			}
			// An update that hashes nothing does not wait for a slot.
			lastName, err := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, client.UserPatch{LastName: ptr("Other")}, root)
			if err != nil {
				t.Fatal(err)
			}
			if lastName.StatusCode() != http.StatusOK {
				t.Errorf("PATCH last_name while busy: status %d, body %s; want 200", lastName.StatusCode(), lastName.Body)
			}

			slots.Release(1)
			e.mustLogin(t, "alice") // no busy answer was counted as a failure
			nobody, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "nobody", Password: demoPassword})
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, "unknown user once free", nobody.StatusCode(), nobody.Body, http.StatusUnauthorized, "authentication_failed")
			created, err := e.client.CreateUserWithResponse(ctx, newUserBody("bob"), root)
			if err != nil {
				t.Fatal(err)
			}
			if created.StatusCode() != http.StatusCreated {
				t.Errorf("create user once free: status %d, body %s; want 201", created.StatusCode(), created.Body)
			}
			changed, err := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, client.UserPatch{Password: ptr(newPassword)}, root)
			if err != nil {
				t.Fatal(err)
			}
			if changed.StatusCode() != http.StatusOK {
				t.Fatalf("PATCH password once free: status %d, body %s; want 200", changed.StatusCode(), changed.Body)
			}
			login, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: newPassword})
			if err != nil {
				t.Fatal(err)
			}
			if login.JSON200 == nil {
				t.Errorf("login with the new password: status %d, body %s; want 200", login.StatusCode(), login.Body)
			}
		})
	}
}
