package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// race runs every fn at once, as parallel requests, and waits for them all.
func race(fns ...func()) {
	var start, done sync.WaitGroup
	start.Add(1)
	for _, fn := range fns {
		done.Go(func() { start.Wait(); fn() })
	}
	start.Done()
	done.Wait()
}

// status is a response's status code, or 0 after reporting err; for use off the test's
// goroutine, where t.Fatal must not be called.
func status(t *testing.T, r interface{ StatusCode() int }, err error) int {
	t.Helper()
	if err != nil {
		t.Error(err)
		return 0
	}
	return r.StatusCode()
}

// TestPasswordResetRacesEdits: an admin's password reset racing edits of the user's other
// details is never undone by them. Before the fix the edits wrote back every column from
// the row they had read before the reset, old password hash included.
func TestPasswordResetRacesEdits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		root := bearer(e.mustLogin(t, "root").Access)
		const trials, edits = 10, 12
		for trial := range trials {
			// A user per trial: each trial's refused old password is one failure for its account.
			name := fmt.Sprintf("bob%d", trial)
			bob := e.mustUser(t, name, regular)
			old := e.mustLogin(t, name)
			newPassword := fmt.Sprintf("fresh-Horse-battery-%d", trial)

			statuses := make([]int, edits+1)
			firstNames := []string{}
			fns := []func(){func() {
				r, err := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{Password: &newPassword}, root)
				statuses[edits] = status(t, r, err)
			}}
			for i := range edits {
				var patch client.UserPatch
				switch i % 3 {
				case 0:
					patch.FirstName = ptr(fmt.Sprintf("First%d", i))
					firstNames = append(firstNames, *patch.FirstName)
				case 1:
					patch.LastName = ptr(fmt.Sprintf("Last%d", i))
				case 2:
					patch.Email = ptr(fmt.Sprintf("bob%d.%d@example.com", trial, i))
				}
				fns = append(fns, func() {
					r, err := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, patch, root)
					statuses[i] = status(t, r, err)
				})
			}
			race(fns...)

			for i, s := range statuses {
				if s != http.StatusOK {
					t.Errorf("trial %d: request %d answered %d, want 200", trial, i, s)
				}
			}
			good, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: name, Password: newPassword})
			mustNoErr(t, err)
			if good.StatusCode() != http.StatusOK {
				t.Errorf("trial %d: the new password does not log in: %d %s", trial, good.StatusCode(), good.Body)
			}
			bad, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: name, Password: demoPassword})
			mustNoErr(t, err)
			if bad.StatusCode() != http.StatusUnauthorized {
				t.Errorf("trial %d: the old password still logs in: %d", trial, bad.StatusCode())
			}
			if w, _ := e.client.WelcomeWithResponse(ctx, bearer(old.Access)); w.StatusCode() != http.StatusUnauthorized {
				t.Errorf("trial %d: a session from before the reset still works: %d", trial, w.StatusCode())
			}
			got, err := e.store.UserByID(ctx, bob.ID)
			mustNoErr(t, err)
			if !slices.Contains(firstNames, got.FirstName) {
				t.Errorf("trial %d: first_name %q, want one of %v", trial, got.FirstName, firstNames)
			}
		}
	})
}

// TestDeactivationRacesEdits: a deactivation racing edits of the user's name sticks, and the
// user's sessions end.
func TestDeactivationRacesEdits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		root := bearer(e.mustLogin(t, "root").Access)
		const trials, edits = 10, 8
		for trial := range trials {
			name := fmt.Sprintf("carol%d", trial)
			carol := e.mustUser(t, name, regular)
			pair := e.mustLogin(t, name)

			statuses := make([]int, edits+1)
			fns := []func(){func() {
				r, err := e.client.PartialUpdateUserWithResponse(ctx, carol.ID, client.UserPatch{IsActive: ptr(false)}, root)
				statuses[edits] = status(t, r, err)
			}}
			for i := range edits {
				fns = append(fns, func() {
					r, err := e.client.PartialUpdateUserWithResponse(ctx, carol.ID, client.UserPatch{FirstName: ptr(fmt.Sprintf("C%d", i))}, root)
					statuses[i] = status(t, r, err)
				})
			}
			race(fns...)

			for i, s := range statuses {
				if s != http.StatusOK {
					t.Errorf("trial %d: request %d answered %d, want 200", trial, i, s)
				}
			}
			got, err := e.store.UserByID(ctx, carol.ID)
			mustNoErr(t, err)
			if got.IsActive {
				t.Errorf("trial %d: the user is active again after a concurrent edit", trial)
			}
			live, err := e.store.LiveSessions(ctx, carol.ID, e.clock.Now())
			mustNoErr(t, err)
			if len(live) != 0 {
				t.Errorf("trial %d: %d live sessions after deactivation, want 0", trial, len(live))
			}
			if r := refresh(t, e, pair.Refresh); r.StatusCode() != http.StatusUnauthorized {
				t.Errorf("trial %d: the deactivated user refreshed: %d", trial, r.StatusCode())
			}
		}
	})
}

// TestLastSuperusersRemoveThemselves: the last two superusers each remove an administrator at
// the same time, themselves by demotion or deletion, or the other by deactivation (nobody may
// deactivate themselves): never a 500 from a deadlock, and exactly one administrator is left.
// A removal refused gets 400 with the last-superuser message, 401 when the other's
// deactivation ended its caller first, or 404 when the other deleted its target first; both
// succeed only when both removed the same one.
func TestLastSuperusersRemoveThemselves(t *testing.T) {
	type removal struct {
		name  string
		other bool // removes the other superuser, not the caller
		do    func(ctx context.Context, e *testEnv, id int64, auth client.RequestEditorFn) (int, []byte)
	}
	removals := []removal{
		{"demote", false, func(ctx context.Context, e *testEnv, id int64, auth client.RequestEditorFn) (int, []byte) {
			r, err := e.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{IsStaff: ptr(false)}, auth)
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			return r.StatusCode(), r.Body
		}},
		{"deactivate the other", true, func(ctx context.Context, e *testEnv, id int64, auth client.RequestEditorFn) (int, []byte) {
			r, err := e.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{IsActive: ptr(false)}, auth)
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			return r.StatusCode(), r.Body
		}},
		{"delete", false, func(ctx context.Context, e *testEnv, id int64, auth client.RequestEditorFn) (int, []byte) {
			r, err := e.client.DeleteUserWithResponse(ctx, id, auth)
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			return r.StatusCode(), r.Body
		}},
	}
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		// survivor and a new superuser per round are the only administrators.
		survivor := e.mustUser(t, "root", superRole).ID
		tokens := map[int64]client.RequestEditorFn{survivor: bearer(e.mustLogin(t, "root").Access)}
		round := 0
		for _, ra := range removals {
			for _, rb := range removals {
				for range 2 {
					round++
					name := fmt.Sprintf("root%d", round)
					other := e.mustUser(t, name, superRole).ID
					tokens[other] = bearer(e.mustLogin(t, name).Access)
					ids := []int64{survivor, other}
					rs := []removal{ra, rb}
					targets := make([]int64, 2)
					for i, r := range rs {
						targets[i] = ids[i]
						if r.other {
							targets[i] = ids[1-i]
						}
					}
					statuses := make([]int, 2)
					bodies := make([][]byte, 2)
					race(func() {
						statuses[0], bodies[0] = rs[0].do(ctx, e, targets[0], tokens[ids[0]])
					}, func() {
						statuses[1], bodies[1] = rs[1].do(ctx, e, targets[1], tokens[ids[1]])
					})

					what := fmt.Sprintf("round %d (the survivor: %s, the new one: %s)", round, ra.name, rb.name)
					var won []int
					for i, s := range statuses {
						switch {
						case s == http.StatusOK || s == http.StatusNoContent:
							won = append(won, i)
						case s == http.StatusUnauthorized && rs[1-i].other: // its caller was deactivated first
						case s == http.StatusNotFound && targets[0] == targets[1]: // the other deleted its target first
						default:
							got := wantError(t, what, s, bodies[i], http.StatusBadRequest, "invalid")
							if got.Detail != "The last active superuser cannot be deleted, deactivated or demoted." {
								t.Errorf("%s: detail %q", what, got.Detail)
							}
						}
					}
					switch {
					case len(won) == 0:
						t.Fatalf("%s: both removals refused", what)
					case len(won) == 2 && targets[0] != targets[1]:
						t.Fatalf("%s: both removals succeeded", what)
					}
					removed := targets[won[0]]
					survivor = ids[0]
					if removed == ids[0] {
						survivor = ids[1]
					}
					var admins int
					for _, id := range ids {
						if u, err := e.store.UserByID(ctx, id); err == nil && u.IsActive && u.IsStaff && u.IsSuperuser {
							admins++
						}
					}
					if admins != 1 {
						t.Fatalf("%s: %d administrators left, want 1", what, admins)
					}
					if w, _ := e.client.WelcomeWithResponse(ctx, tokens[survivor]); w.StatusCode() != http.StatusOK {
						t.Fatalf("%s: the survivor lost access: %d", what, w.StatusCode())
					}
				}
			}
		}
	})
}
