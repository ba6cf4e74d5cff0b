package server_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/authcache"
)

// introspectWith asks with a client token (Bearer) and returns the status.
func (e *testEnv) introspectStatus(t *testing.T, clientToken, raw string) int {
	t.Helper()
	resp, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {raw}}, "Authorization", "Bearer "+clientToken)
	return resp.StatusCode
}

// introspectBasicStatus asks with client_secret_basic and returns the status.
func (e *testEnv) introspectBasicStatus(t *testing.T, c apiClient, raw string) int {
	t.Helper()
	resp, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {raw}}, "Authorization", basicAuth(c.id, c.secret))
	return resp.StatusCode
}

// waitCaughtUp waits until e's auth cache has read every change committed so far.
func waitCaughtUp(t *testing.T, e *testEnv) {
	t.Helper()
	now := time.Now()
	deadline := now.Add(settle)
	for !e.cache.CaughtUp(now) {
		if time.Now().After(deadline) {
			t.Fatalf("the cache did not read the change log within %v", settle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientChangesApplyAtOnceOnEveryInstance: disabling, narrowing the scopes of, rotating
// the secret of and deleting a client stops its tokens and secrets at the very next request
// on the instance that made the change, and on another instance over the same database as
// soon as its auth cache has read the change log, though both caches held the client; each
// answer is checked by parallel requests. The first instance reads the log once an hour, so
// that only its own changes' invalidation can keep it current.
func TestClientChangesApplyAtOnceOnEveryInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *testEnv) {
		b := newTestEnv(t, a.backend, withDSN(a.dsn), withHasher(a.hasher))
		admin := a.mustAdmin(t)
		rs := a.mustClient(t, admin, "rs", client.ScopeIntrospect)
		tok := a.mustClientToken(t, rs, "")
		// every asks each instance, 8 requests at once by token and 4 by secret, and wants
		// want of all; the other instance first reads the log.
		every := func(what string, want, wantBasic int) {
			t.Helper()
			waitCaughtUp(t, b)
			for i, e := range []*testEnv{a, b} {
				var wg sync.WaitGroup
				for n := range 8 {
					wg.Go(func() {
						if got := e.introspectStatus(t, tok, "x"); got != want {
							t.Errorf("instance %d, %s, by token: %d, want %d", i, what, got, want)
						}
					})
					if n < 4 { // refused secrets count towards the failure limit (20)
						wg.Go(func() {
							if got := e.introspectBasicStatus(t, rs, "x"); got != wantBasic {
								t.Errorf("instance %d, %s, by secret: %d, want %d", i, what, got, wantBasic)
							}
						})
					}
				}
				wg.Wait()
				if _, cached := e.cache.Client(rs.id); want == 200 && !cached {
					t.Fatalf("instance %d, %s: the client is not cached, so the next change proves nothing", i, what)
				}
			}
		}
		every("before", 200, 200)
		set := func(u client.APIClientUpdate) {
			t.Helper()
			if r, err := a.client.UpdateClientWithResponse(t.Context(), rs.id, u, bearer(admin)); err != nil || r.JSON200 == nil {
				t.Fatalf("update: %v %v", err, r.StatusCode())
			}
		}
		yes, no := true, false
		set(client.APIClientUpdate{Disabled: &yes})
		every("disabled", http.StatusUnauthorized, http.StatusUnauthorized)
		set(client.APIClientUpdate{Disabled: &no})
		every("enabled again", 200, 200)
		set(client.APIClientUpdate{Scopes: &[]client.ClientScope{client.ScopeRevoke}})
		every("scope taken away", http.StatusForbidden, http.StatusForbidden)
		set(client.APIClientUpdate{Scopes: &[]client.ClientScope{client.ScopeIntrospect}})
		every("scope given back", 200, 200)
		zero := int64(0)
		r, err := a.client.RotateClientSecretWithResponse(t.Context(), rs.id, client.APIClientRotateRequest{OverlapSeconds: &zero}, bearer(admin))
		if err != nil || r.JSON200 == nil {
			t.Fatalf("rotate: %v", err)
		}
		every("secret rotated with no overlap", http.StatusUnauthorized, http.StatusUnauthorized)
		rs.secret = r.JSON200.ClientSecret
		tok = a.mustClientToken(t, rs, "")
		every("the new secret", 200, 200)
		if r, err := a.client.DeleteClientWithResponse(t.Context(), rs.id, bearer(admin)); err != nil || r.StatusCode() != 204 {
			t.Fatalf("delete: %v", err)
		}
		every("deleted", http.StatusUnauthorized, http.StatusUnauthorized)
	}, withCache(authcache.Config{PollInterval: time.Hour, StaleAfter: 2 * time.Hour}))
}

// TestRotationOverlapBoundary: after a rotation the old secret, and tokens issued before,
// work until the overlap ends and not a second longer; the new secret works at once; a second
// rotation forgets the first secret at once.
func TestRotationOverlapBoundary(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		old := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		before := e.mustClientToken(t, old, "")
		e.clock.Add(time.Second)
		overlap := int64(600)
		r, err := e.client.RotateClientSecretWithResponse(t.Context(), old.id, client.APIClientRotateRequest{OverlapSeconds: &overlap}, bearer(admin))
		if err != nil || r.JSON200 == nil {
			t.Fatalf("rotate: %v %v", err, r.StatusCode())
		}
		if r.JSON200.Client.PreviousSecretExpires == nil {
			t.Error("no previous_secret_expires after a rotation")
		}
		cur := apiClient{id: old.id, secret: r.JSON200.ClientSecret}
		byOld := e.mustClientToken(t, old, "") // issued with the old secret during the overlap
		e.mustClientToken(t, cur, "")

		e.clock.Add(time.Duration(overlap)*time.Second - 1) // the overlap's last instant
		for name, tok := range map[string]string{"token from before": before, "token by the old secret": byOld} {
			if got := e.introspectStatus(t, tok, "x"); got != 200 {
				t.Errorf("%s, last instant of the overlap: %d, want 200", name, got)
			}
		}
		e.mustClientToken(t, old, "")

		e.clock.Add(1) // the overlap's end
		for name, tok := range map[string]string{"token from before": before, "token by the old secret": byOld} {
			if got := e.introspectStatus(t, tok, "x"); got != http.StatusUnauthorized {
				t.Errorf("%s, overlap over: %d, want 401", name, got)
			}
		}
		resp, body := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(old.id, old.secret))
		wantOAuthError(t, "old secret after the overlap", resp, body, 401, "invalid_client")
		newTok := e.mustClientToken(t, cur, "")
		if got := e.introspectStatus(t, newTok, "x"); got != 200 {
			t.Errorf("new secret's token: %d", got)
		}

		// A rotation with no overlap stops the current secret and its tokens at once.
		e.clock.Add(time.Second)
		zero := int64(0)
		r, err = e.client.RotateClientSecretWithResponse(t.Context(), old.id, client.APIClientRotateRequest{OverlapSeconds: &zero}, bearer(admin))
		if err != nil || r.JSON200 == nil {
			t.Fatalf("rotate: %v", err)
		}
		if got := e.introspectStatus(t, newTok, "x"); got != http.StatusUnauthorized {
			t.Errorf("token of a secret rotated with no overlap: %d, want 401", got)
		}
		resp, body = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(cur.id, cur.secret))
		wantOAuthError(t, "secret rotated with no overlap", resp, body, 401, "invalid_client")

		// Mid-second, with no overlap: a token of the new secret works at once (iat has whole
		// seconds; a token names its secret, not a time).
		e.clock.Add(500 * time.Millisecond)
		r, err = e.client.RotateClientSecretWithResponse(t.Context(), old.id, client.APIClientRotateRequest{OverlapSeconds: &zero}, bearer(admin))
		if err != nil || r.JSON200 == nil {
			t.Fatalf("rotate: %v", err)
		}
		if got := e.introspectStatus(t, e.mustClientToken(t, apiClient{old.id, r.JSON200.ClientSecret}, ""), "x"); got != 200 {
			t.Errorf("token of the new secret in the rotation's second: %d, want 200", got)
		}
	})
}

// TestClientSecretGuessingThrottled: parallel wrong secrets for one client are refused after
// the limit with 429, however they are interleaved, and the right secret is refused too
// while the limit holds (it counts per client id and per IP).
func TestClientSecretGuessingThrottled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		const guesses = 60
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[int]int{}
		for range guesses {
			wg.Go(func() {
				resp, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(rs.id, "guess"))
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts[401] != 20 || counts[429] != guesses-20 {
			t.Errorf("answers %v, want 20 x 401 (the limit) and the rest 429", counts)
		}
		resp, body := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(rs.id, rs.secret))
		wantOAuthError(t, "right secret while throttled", resp, body, 429, "invalid_client")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		// Each wrong secret judged is audited, naming the client; refusals by the limit are not
		// (a flood cannot fill the log).
		events, err := e.client.ListAuditEventsWithResponse(t.Context(), &client.ListAuditEventsParams{Action: &[]client.AuditAction{client.ClientAuthFailed}}, bearer(admin))
		if err != nil || events.JSON200 == nil {
			t.Fatal(err)
		}
		if n := len(*events.JSON200); n != 20 || (*events.JSON200)[0].ClientId == nil || *(*events.JSON200)[0].ClientId != rs.id {
			t.Errorf("%d client.auth_failed events (first %+v), want 20 naming the client", n, (*events.JSON200)[0])
		}
		e.clock.Add(16 * time.Minute)
		e.mustClientToken(t, rs, "")
	})
}

// TestClientParallelSuccessesNotThrottled: the failure limit counts failures, not requests in
// flight: a resource server that introspects with its secret from many connections at once
// is never refused, however many of its requests overlap, and neither is one that mixes in
// a few failures below the limit.
func TestClientParallelSuccessesNotThrottled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		const parallel = 120 // six times the limit of 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[int]int{}
		for i := range parallel {
			wg.Go(func() {
				secret := rs.secret
				if i%20 == 0 {
					secret = "wrong" // 6 failures, within the limit
				}
				resp, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {"x"}}, "Authorization", basicAuth(rs.id, secret))
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if counts[200] != parallel-6 || counts[401] != 6 {
			t.Errorf("answers %v, want %d x 200 and 6 x 401", counts, parallel-6)
		}
	})
}

// TestClientLastUsedOncePerMinute: a client that authenticates with its secret on every
// request, from the cache, has its last use recorded once a minute: not at each request, and
// not never (the cached copy learns of the write it asked for).
func TestClientLastUsedOncePerMinute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		lastUsed := func() time.Time {
			t.Helper()
			r, err := e.client.GetClientWithResponse(t.Context(), rs.id, bearer(admin))
			if err != nil || r.JSON200 == nil || r.JSON200.LastUsed == nil {
				t.Fatalf("get: %v", err)
			}
			return *r.JSON200.LastUsed
		}
		use := func() {
			t.Helper()
			if got := e.introspectBasicStatus(t, rs, "x"); got != 200 {
				t.Fatalf("introspect: %d", got)
			}
		}
		waitCaughtUp(t, e)
		first := e.clock.Now()
		use()
		if _, cached := e.cache.Client(rs.id); !cached {
			t.Fatal("the client is not cached")
		}
		for _, step := range []time.Duration{30 * time.Second, 29 * time.Second} {
			e.clock.Add(step)
			use()
			if got := lastUsed(); !got.Equal(first) {
				t.Fatalf("%v after the first use: last used %v, want %v", e.clock.Now().Sub(first), got, first)
			}
		}
		for range 2 {
			e.clock.Add(time.Minute)
			use()
			if got := lastUsed(); !got.Equal(e.clock.Now()) {
				t.Fatalf("a minute on: last used %v, want %v", got, e.clock.Now())
			}
			// The cached copy knows, so that the next requests of the minute write nothing.
			if c, ok := e.cache.Client(rs.id); !ok || c.LastUsedAt == nil || !c.LastUsedAt.Equal(e.clock.Now()) {
				t.Fatalf("a minute on: the cached client was last used %v, want %v", c.LastUsedAt, e.clock.Now())
			}
		}
	})
}
