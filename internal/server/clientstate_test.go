package server_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// introspectWith asks with a client token (Bearer) and returns the status.
func (e *testEnv) introspectStatus(t *testing.T, clientToken, raw string) int {
	t.Helper()
	resp, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {raw}}, "Authorization", "Bearer "+clientToken)
	return resp.StatusCode
}

// TestClientChangesApplyAtOnceOnEveryInstance: disabling, narrowing the scopes of and
// deleting a client stops its tokens at the very next request, on this instance and on
// another one over the same database.
func TestClientChangesApplyAtOnceOnEveryInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *testEnv) {
		b := newTestEnv(t, a.backend, withDSN(a.dsn), withHasher(a.hasher))
		admin := a.mustAdmin(t)
		rs := a.mustClient(t, admin, "rs", client.ScopeIntrospect)
		tok := a.mustClientToken(t, rs, "")
		for _, e := range []*testEnv{a, b} {
			if got := e.introspectStatus(t, tok, "x"); got != 200 {
				t.Fatalf("before: %d", got)
			}
		}
		set := func(u client.APIClientUpdate) {
			t.Helper()
			if r, err := a.client.UpdateClientWithResponse(t.Context(), rs.id, u, bearer(admin)); err != nil || r.JSON200 == nil {
				t.Fatalf("update: %v %v", err, r.StatusCode())
			}
		}
		yes, no := true, false
		set(client.APIClientUpdate{Disabled: &yes})
		for i, e := range []*testEnv{a, b} {
			if got := e.introspectStatus(t, tok, "x"); got != http.StatusUnauthorized {
				t.Errorf("instance %d, disabled: %d, want 401", i, got)
			}
		}
		set(client.APIClientUpdate{Disabled: &no})
		for i, e := range []*testEnv{a, b} {
			if got := e.introspectStatus(t, tok, "x"); got != 200 {
				t.Errorf("instance %d, enabled again: %d, want 200", i, got)
			}
		}
		set(client.APIClientUpdate{Scopes: &[]client.ClientScope{client.ScopeRevoke}})
		for i, e := range []*testEnv{a, b} {
			if got := e.introspectStatus(t, tok, "x"); got != http.StatusForbidden {
				t.Errorf("instance %d, scope taken away: %d, want 403", i, got)
			}
		}
		if r, err := a.client.DeleteClientWithResponse(t.Context(), rs.id, bearer(admin)); err != nil || r.StatusCode() != 204 {
			t.Fatalf("delete: %v", err)
		}
		for i, e := range []*testEnv{a, b} {
			if got := e.introspectStatus(t, tok, "x"); got != http.StatusUnauthorized {
				t.Errorf("instance %d, deleted: %d, want 401", i, got)
			}
		}
	})
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
