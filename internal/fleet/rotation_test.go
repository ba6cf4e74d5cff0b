package fleet_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// caller is a client that keeps logging in on every instance and using each new access token
// on every instance, recording every refusal.
type caller struct {
	stop, done chan struct{}
	rounds     atomic.Int64
	calls      atomic.Int64

	mu       sync.Mutex
	refused  []refusal
	signedBy map[string]int // tokens issued, by kid
}

// refusal is a call the caller saw refused.
type refusal struct {
	kid      string // of the refused token
	from, to int    // the instances that issued and refused it
	detail   string
}

func (r refusal) String() string {
	return fmt.Sprintf("token of kid %s from instance %d refused by instance %d: %s", r.kid, r.from, r.to, r.detail)
}

// refusals returns the refusals, as text.
func (c *caller) refusals() []string {
	out := make([]string, len(c.refused))
	for i, r := range c.refused {
		out[i] = r.String()
	}
	return out
}

func (f *fleet) startCaller(t *testing.T, username string) *caller {
	c := &caller{stop: make(chan struct{}), done: make(chan struct{}), signedBy: map[string]int{}}
	go func() {
		defer close(c.done)
		for {
			for _, from := range f.inst {
				select {
				case <-c.stop:
					return
				default:
				}
				resp, err := from.client.ObtainTokenWithResponse(t.Context(), client.TokenObtainRequest{Username: username, Password: userPassword})
				if code := status(resp, err); code != http.StatusOK {
					t.Errorf("caller: login on instance %d: status %d (err %v)", from.n, code, err)
					return
				}
				tok := resp.JSON200.Access
				k := kid(t, tok)
				c.mu.Lock()
				c.signedBy[k]++
				c.mu.Unlock()
				for _, to := range f.inst {
					w, err := to.client.WelcomeWithResponse(t.Context(), bearer(tok))
					c.calls.Add(1)
					if code := status(w, err); code != http.StatusOK {
						detail := fmt.Sprint(err)
						if err == nil {
							detail = fmt.Sprintf("status %d: %s", code, w.Body)
						}
						c.mu.Lock()
						c.refused = append(c.refused, refusal{kid: k, from: from.n, to: to.n, detail: detail})
						c.mu.Unlock()
					}
				}
			}
			c.rounds.Add(1)
		}
	}()
	t.Cleanup(c.finish)
	return c
}

// waitRounds returns once the caller has gone round every instance n more times.
func (c *caller) waitRounds(t *testing.T, n int64) {
	t.Helper()
	target := c.rounds.Load() + n
	deadline := time.Now().Add(time.Minute)
	for c.rounds.Load() < target {
		select {
		case <-c.done:
			t.Fatalf("the caller stopped")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the caller did not make %d rounds within a minute", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *caller) finish() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// waitAll polls until ok holds for every instance and returns how long each took from since.
func (f *fleet) waitAll(t *testing.T, since time.Time, what string, ok func(in *instance) bool) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(f.inst))
	deadline := since.Add(30 * keyReload)
	for i, in := range f.inst {
		for !ok(in) {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: %s not seen within %v", in.n, what, 30*keyReload)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took[i] = time.Since(since)
	}
	return took
}

// testRotation: a rotation made by the CLI reaches every instance within the reload interval,
// and no token is refused meanwhile: during a normal rotation the new key does not sign yet;
// after "rotate --now" the instances that reloaded sign with it, and the others load it at its
// first token.
func (f *fleet) testRotation(t *testing.T) {
	f.createUser(t, f.inst[0], "rotator", false)
	oldKid := kid(t, f.login(t, f.inst[0], "rotator", userPassword).Access)

	t.Run("normal", func(t *testing.T) {
		c := f.startCaller(t, "rotator")
		c.waitRounds(t, 2)
		out := f.cli(t, "keys", "rotate")
		rotated := time.Now()
		newKid, _, _ := strings.Cut(strings.TrimSpace(out), " ")
		took := f.waitAll(t, rotated, "new key "+newKid+" in the JWKS", func(in *instance) bool {
			return slices.Contains(jwks(t, in), newKid)
		})
		t.Logf("key %s published by instances 1, 2, 3 within %v, %v, %v of the rotation (reload interval %v)",
			newKid, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), took[2].Round(time.Millisecond), keyReload)
		c.waitRounds(t, 3)
		c.finish()
		c.mu.Lock()
		defer c.mu.Unlock()
		if refused := c.refusals(); len(refused) > 0 {
			t.Errorf("%d of %d calls refused during a normal rotation:\n%s", len(refused), c.calls.Load(), strings.Join(refused, "\n"))
		}
		if c.signedBy[newKid] > 0 {
			t.Errorf("%d tokens signed with the new key before its publish-ahead wait ended", c.signedBy[newKid])
		}
		t.Logf("%d calls across the instances during the rotation, %d refused; tokens by kid: %v", c.calls.Load(), len(c.refused), c.signedBy)
	})

	t.Run("now", func(t *testing.T) {
		c := f.startCaller(t, "rotator")
		c.waitRounds(t, 1)
		out := f.cli(t, "keys", "rotate", "--now")
		rotated := time.Now()
		newKid, _, _ := strings.Cut(strings.TrimSpace(out), " ")
		took := f.waitAll(t, rotated, "tokens signed by "+newKid, func(in *instance) bool {
			resp, err := in.client.ObtainTokenWithResponse(t.Context(), client.TokenObtainRequest{Username: "rotator", Password: userPassword})
			return status(resp, err) == http.StatusOK && kid(t, resp.JSON200.Access) == newKid && slices.Contains(jwks(t, in), newKid)
		})
		t.Logf("instances 1, 2, 3 signed with %s (rotate --now) within %v, %v, %v (reload interval %v)",
			newKid, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), took[2].Round(time.Millisecond), keyReload)
		c.waitRounds(t, 2)
		c.finish()
		c.mu.Lock()
		defer c.mu.Unlock()
		// An instance that has not reloaded yet loads the new key at its first token, and
		// tokens of the old key keep working: nobody is refused, nobody logged out.
		if refused := c.refusals(); len(refused) > 0 {
			t.Errorf("%d of %d calls refused during rotate --now:\n%s", len(refused), c.calls.Load(), strings.Join(refused, "\n"))
		}
		if c.signedBy[newKid] == 0 {
			t.Errorf("the caller saw no token of the new key %s: it measured nothing", newKid)
		}
		t.Logf("%d calls across the instances during rotate --now, %d refused; tokens by kid: %v", c.calls.Load(), len(c.refused), c.signedBy)
		if c.signedBy[oldKid] == 0 {
			t.Errorf("the caller saw no token of the old key %s: it measured nothing", oldKid)
		}
	})
}
