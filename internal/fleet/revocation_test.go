package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// probe asks one instance whether it still accepts something (a token, a role).
type probe func(ctx context.Context, in *instance) (refused bool, err error)

// tokenProbe: GET /api/v1/ with tok, refused once it answers 401.
func tokenProbe(tok string) probe {
	return func(ctx context.Context, in *instance) (bool, error) {
		code, err := welcomeStatus(ctx, in, tok)
		switch {
		case err != nil:
			return false, err
		case code == http.StatusOK:
			return false, nil
		case code == http.StatusUnauthorized:
			return true, nil
		}
		return false, fmt.Errorf("GET /api/v1/: status %d, want 200 or 401", code)
	}
}

// staffProbe: listing users with tok, refused once it answers 403.
func staffProbe(tok string) probe {
	return func(ctx context.Context, in *instance) (bool, error) {
		resp, err := in.client.ListUsersWithResponse(ctx, &client.ListUsersParams{}, bearer(tok))
		switch {
		case err != nil:
			return false, err
		case resp.StatusCode() == http.StatusOK:
			return false, nil
		case resp.StatusCode() == http.StatusForbidden:
			return true, nil
		}
		return false, fmt.Errorf("list users: status %d, want 200 or 403", resp.StatusCode())
	}
}

// bothProbe is refused when both a and b are.
func bothProbe(a, b probe) probe {
	return func(ctx context.Context, in *instance) (bool, error) {
		ra, err := a(ctx, in)
		if err != nil {
			return false, err
		}
		rb, err := b(ctx, in)
		return ra && rb, err
	}
}

// measureRevocation checks that p is accepted on every instance (several times, so that each
// has it in its auth cache), runs act, which returns when its change was acknowledged, and
// polls every instance until p is refused there. It returns the longest delay from the
// acknowledgement to a refusal's answer, an upper bound that a slow machine stretches.
//
// The bound is held to what only a miss can break, as measureRefusal does for resource
// servers: a probe *sent* revocationBound or more after the acknowledgement, and still
// accepted, means that instance had not applied the change by then. A loaded machine only
// delays probes and their answers, which makes no such acceptance.
func (f *fleet) measureRevocation(t *testing.T, p probe, act func(t *testing.T)) time.Duration {
	t.Helper()
	for _, in := range f.inst {
		for range 3 {
			refused, err := p(t.Context(), in)
			if err != nil || refused {
				t.Fatalf("instance %d before the change: refused %v, err %v; want accepted", in.n, refused, err)
			}
		}
	}
	act(t)
	acked := time.Now()
	delays := make([]time.Duration, len(f.inst))
	var wg sync.WaitGroup
	for i, in := range f.inst {
		wg.Go(func() {
			for {
				sent := time.Now()
				refused, err := p(t.Context(), in)
				if err != nil {
					t.Errorf("instance %d: %v", in.n, err)
					return
				}
				if refused {
					delays[i] = time.Since(acked)
					return
				}
				if late := sent.Sub(acked); late >= revocationBound {
					t.Errorf("instance %d accepted a probe sent %v after the change was acknowledged, over the %v the product guarantees", in.n, late.Round(time.Millisecond), revocationBound)
					delays[i] = time.Since(acked)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Logf("refused on instances 1, 2, 3 after %v, %v, %v", delays[0].Round(time.Millisecond), delays[1].Round(time.Millisecond), delays[2].Round(time.Millisecond))
	return max(delays[0], delays[1], delays[2])
}

// testRevocation: each way of ending access, made on one instance, is refused on every
// instance within revocationBound. The changes are made on instances 1, 2, 3 in turn.
func (f *fleet) testRevocation(t *testing.T) {
	type event struct {
		name string
		run  func(t *testing.T, on *instance) time.Duration
	}
	events := []event{
		{"logout", func(t *testing.T, on *instance) time.Duration {
			f.createUser(t, on, "rv-logout", false)
			pair := f.login(t, f.inst[0], "rv-logout", userPassword)
			return f.measureRevocation(t, tokenProbe(pair.Access), func(t *testing.T) {
				resp, err := on.client.LogoutWithResponse(t.Context(), client.LogoutRequest{Refresh: pair.Refresh}, bearer(pair.Access))
				expect(t, "logout", resp, err, http.StatusOK)
			})
		}},
		{"logout-all", func(t *testing.T, on *instance) time.Duration {
			f.createUser(t, on, "rv-logoutall", false)
			a := f.login(t, f.inst[0], "rv-logoutall", userPassword)
			b := f.login(t, f.inst[2], "rv-logoutall", userPassword)
			return f.measureRevocation(t, bothProbe(tokenProbe(a.Access), tokenProbe(b.Access)), func(t *testing.T) {
				resp, err := on.client.LogoutAllPostWithResponse(t.Context(), bearer(a.Access))
				expect(t, "logout_all", resp, err, http.StatusResetContent)
			})
		}},
		{"session revoke", func(t *testing.T, on *instance) time.Duration {
			f.createUser(t, on, "rv-session", false)
			keep := f.login(t, f.inst[0], "rv-session", userPassword)
			lost := f.login(t, f.inst[1], "rv-session", userPassword)
			return f.measureRevocation(t, tokenProbe(lost.Access), func(t *testing.T) {
				resp, err := on.client.RevokeSessionWithResponse(t.Context(), sid(t, lost.Access), bearer(keep.Access))
				expect(t, "revoke session", resp, err, http.StatusNoContent)
			})
		}},
		{"deactivation", func(t *testing.T, on *instance) time.Duration {
			id := f.createUser(t, on, "rv-inactive", false)
			pair := f.login(t, f.inst[1], "rv-inactive", userPassword)
			inactive := false
			return f.measureRevocation(t, tokenProbe(pair.Access), func(t *testing.T) {
				f.patchUser(t, on, id, client.UserPatch{IsActive: &inactive})
			})
		}},
		{"demotion", func(t *testing.T, on *instance) time.Duration {
			id := f.createUser(t, on, "rv-staff", true)
			pair := f.login(t, f.inst[2], "rv-staff", userPassword)
			notStaff := false
			return f.measureRevocation(t, staffProbe(pair.Access), func(t *testing.T) {
				f.patchUser(t, on, id, client.UserPatch{IsStaff: &notStaff})
			})
		}},
		{"deletion", func(t *testing.T, on *instance) time.Duration {
			id := f.createUser(t, on, "rv-deleted", false)
			pair := f.login(t, f.inst[0], "rv-deleted", userPassword)
			return f.measureRevocation(t, tokenProbe(pair.Access), func(t *testing.T) {
				resp, err := on.client.DeleteUserWithResponse(t.Context(), id, bearer(f.admin))
				expect(t, "delete user", resp, err, http.StatusNoContent)
			})
		}},
		{"password change", func(t *testing.T, on *instance) time.Duration {
			id := f.createUser(t, on, "rv-password", false)
			pair := f.login(t, f.inst[1], "rv-password", userPassword)
			newPassword := "another horse battery staple"
			return f.measureRevocation(t, tokenProbe(pair.Access), func(t *testing.T) {
				f.patchUser(t, on, id, client.UserPatch{Password: &newPassword})
			})
		}},
	}
	var worst time.Duration
	worstEvent := ""
	for i, ev := range events {
		on := f.inst[i%instances]
		t.Run(ev.name, func(t *testing.T) {
			d := ev.run(t, on)
			t.Logf("%s on instance %d: refused everywhere %v after it was acknowledged", ev.name, on.n, d.Round(time.Millisecond))
			if d > worst {
				worst, worstEvent = d, ev.name
			}
		})
	}
	// Each measureRevocation held the bound; the delays to the refusals' answers only inform.
	t.Logf("worst revocation delay: %v (%s); bound %v", worst.Round(time.Millisecond), worstEvent, revocationBound)
}

// patchUser changes user id through in as the superuser.
func (f *fleet) patchUser(t *testing.T, in *instance, id int64, patch client.UserPatch) {
	t.Helper()
	resp, err := in.client.PartialUpdateUserWithResponse(t.Context(), id, patch, bearer(f.admin))
	expect(t, fmt.Sprintf("patch user %d on instance %d", id, in.n), resp, err, http.StatusOK)
}
