package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/passkey/passkeytest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store/storetest"
)

// testOrigin is the origin of test servers' WebAuthn ceremonies: the issuer's (the default).
const testOrigin = testIssuer

// register adds a credential of key to the account of access, named name (a passkey with
// asPasskey), and returns it as listed.
func (e *testEnv) register(t *testing.T, access string, key *passkeytest.Authenticator, name string, asPasskey bool) client.MfaFactor {
	t.Helper()
	r := e.tryRegister(t, access, key, name, asPasskey)
	if r.JSON201 == nil {
		t.Fatalf("register %s: %d %s", name, r.StatusCode(), r.Body)
	}
	f := r.JSON201
	return client.MfaFactor{Type: client.MfaFactorType(f.Type), Active: f.Active, CreatedAt: f.CreatedAt,
		Id: f.Id, Name: f.Name, Passkey: f.Passkey, Synced: f.Synced, LastUsedAt: f.LastUsedAt}
}

func (e *testEnv) tryRegister(t *testing.T, access string, key *passkeytest.Authenticator, name string, asPasskey bool) *client.FinishWebauthnRegistrationResponse {
	t.Helper()
	ctx := context.Background()
	begin, err := e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{Passkey: &asPasskey}, bearer(access))
	if err != nil || begin.JSON200 == nil {
		t.Fatalf("begin registration: %v %d %s", err, begin.StatusCode(), begin.Body)
	}
	cred, err := key.Create(begin.JSON200.Options)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.client.FinishWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationFinish{
		Ceremony: begin.JSON200.Ceremony, Name: name, Credential: cred}, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// webauthnChallenge logs username in and returns the challenge with its WebAuthn options.
func (e *testEnv) webauthnChallenge(t *testing.T, username string) (string, map[string]any) {
	t.Helper()
	r := e.login(t, username, demoPassword)
	if r.JSON401 == nil || r.JSON401.Mfa == nil || r.JSON401.Mfa.Webauthn == nil {
		t.Fatalf("login with a security key: %d %s", r.StatusCode(), r.Body)
	}
	return r.JSON401.Mfa.Challenge, *r.JSON401.Mfa.Webauthn
}

func (e *testEnv) answerWebAuthn(t *testing.T, challenge string, cred map[string]any) *client.AnswerMfaChallengeResponse {
	t.Helper()
	r, err := e.client.AnswerMfaChallengeWithResponse(context.Background(), client.MfaChallengeAnswer{
		Challenge: challenge, Method: client.MfaMethodWebauthn, Credential: &cred})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// beginPasskey starts a passkey login and returns its ceremony and options.
func (e *testEnv) beginPasskey(t *testing.T) (string, map[string]any) {
	t.Helper()
	r, err := e.client.BeginPasskeyLoginWithResponse(context.Background())
	if err != nil || r.JSON200 == nil {
		t.Fatalf("begin passkey login: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return r.JSON200.Ceremony, r.JSON200.Options
}

func (e *testEnv) finishPasskey(t *testing.T, ceremony string, cred map[string]any) *client.FinishPasskeyLoginResponse {
	t.Helper()
	r, err := e.client.FinishPasskeyLoginWithResponse(context.Background(), client.WebauthnAssertion{Ceremony: ceremony, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustGet(t *testing.T, key *passkeytest.Authenticator, opts map[string]any) map[string]any {
	t.Helper()
	cred, err := key.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// TestWebAuthnSecondFactor: a registered security key is listed, named and renamed; the
// password then yields a challenge offering webauthn with options, which its assertion answers
// once (aal2, hwk); a replay is refused; removing the key ends the need for it.
func TestWebAuthnSecondFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		access := e.mustLogin(t, "alice").Access
		key := passkeytest.New(testOrigin)
		key.UserVerified = false // a plain security key: presence only
		f := e.register(t, access, key, "YubiKey", false)
		if f.Type != client.MfaFactorTypeWebauthn || *f.Name != "YubiKey" || *f.Passkey || f.Id == nil {
			t.Fatalf("registered %+v", f)
		}
		list, err := e.client.ListMfaFactorsWithResponse(ctx, bearer(access))
		if err != nil || list.JSON200 == nil || len(list.JSON200.Factors) != 1 || *list.JSON200.Factors[0].Name != "YubiKey" {
			t.Fatalf("factors: %v %s", err, list.Body)
		}
		renamed, err := e.client.RenameWebauthnCredentialWithResponse(ctx, *f.Id, client.WebauthnRename{Name: " Work key "}, bearer(access))
		if err != nil || renamed.JSON200 == nil || *renamed.JSON200.Name != "Work key" {
			t.Fatalf("rename: %v %d %s", err, renamed.StatusCode(), renamed.Body)
		}

		c, opts := e.webauthnChallenge(t, "alice")
		cred := mustGet(t, key, opts)
		ok := e.answerWebAuthn(t, c, cred)
		if ok.JSON200 == nil {
			t.Fatalf("assertion: %d %s", ok.StatusCode(), ok.Body)
		}
		wantClaims(t, "security key", ok.JSON200.Access, []any{"pwd", "hwk", "user", "mfa"}, "aal2")
		wantRefused(t, "challenge used", e.answerWebAuthn(t, c, cred), 401, client.ErrorCodeTokenNotValid)
		c2, _ := e.webauthnChallenge(t, "alice")
		wantRefused(t, "assertion replayed on a new challenge", e.answerWebAuthn(t, c2, cred), 401, client.ErrorCodeInvalidMfaCode)
		wantRefused(t, "totp on a webauthn-only account", e.answer(t, c2, client.MfaMethodTotp, "123456"), 401, client.ErrorCodeInvalidMfaCode)

		list, _ = e.client.ListMfaFactorsWithResponse(ctx, bearer(access))
		if list.JSON200.Factors[0].LastUsedAt == nil {
			t.Errorf("last used not recorded: %s", list.Body)
		}
		del, err := e.client.RemoveWebauthnCredentialWithResponse(ctx, *f.Id, bearer(ok.JSON200.Access))
		if err != nil || del.StatusCode() != http.StatusNoContent {
			t.Fatalf("remove: %v %d %s", err, del.StatusCode(), del.Body)
		}
		wantClaims(t, "after removal", e.mustLogin(t, "alice").Access, []any{"pwd"}, "aal1")
	})
}

// TestPasskeyLogin: a passkey signs in alone (aal2; swk when synced); its assertion works once;
// a passkey without user verification, and a security key, cannot.
func TestPasskeyLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		access := e.mustLogin(t, "alice").Access
		key := passkeytest.New(testOrigin)
		if f := e.register(t, access, key, "Laptop", true); !*f.Passkey || *f.Synced {
			t.Fatalf("registered %+v", f)
		}
		ceremony, opts := e.beginPasskey(t)
		cred := mustGet(t, key, opts)
		ok := e.finishPasskey(t, ceremony, cred)
		if ok.JSON200 == nil {
			t.Fatalf("passkey login: %d %s", ok.StatusCode(), ok.Body)
		}
		wantClaims(t, "passkey", ok.JSON200.Access, []any{"hwk", "mfa"}, "aal2")
		r := e.finishPasskey(t, ceremony, cred)
		wantError(t, "replayed", r.StatusCode(), r.Body, 401, string(client.ErrorCodeTokenNotValid))

		ceremony, opts = e.beginPasskey(t)
		key.UserVerified = false
		r = e.finishPasskey(t, ceremony, mustGet(t, key, opts))
		wantError(t, "no user verification", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		key.UserVerified = true
		if ok := e.finishPasskey(t, ceremony, mustGet(t, key, opts)); ok.JSON200 == nil {
			t.Fatalf("the ceremony stays after a failure: %d %s", ok.StatusCode(), ok.Body)
		}

		synced := passkeytest.New(testOrigin)
		synced.BackupEligible = true
		e.mustUser(t, "bob", regular)
		e.register(t, e.mustLogin(t, "bob").Access, synced, "Phone", true)
		ceremony, opts = e.beginPasskey(t)
		if ok := e.finishPasskey(t, ceremony, mustGet(t, synced, opts)); ok.JSON200 == nil {
			t.Fatalf("synced passkey: %d %s", ok.StatusCode(), ok.Body)
		} else {
			wantClaims(t, "synced passkey", ok.JSON200.Access, []any{"swk", "mfa"}, "aal2")
		}

		unverified := passkeytest.New(testOrigin)
		unverified.UserVerified = false
		r2 := e.tryRegister(t, ok.JSON200.Access, unverified, "No PIN", true)
		wantError(t, "passkey without user verification", r2.StatusCode(), r2.Body, 400, string(client.ErrorCodeInvalid))
	})
}

// TestSecurityKeyCannotSignInAlone: a security key registered as a second factor (not
// discoverable), even one that verifies the user, is refused by a passkey login when a client
// names it and adds the user handle to its assertion.
func TestSecurityKeyCannotSignInAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "carol", regular)
		key := passkeytest.New(testOrigin) // verifies the user (a PIN)
		e.register(t, e.mustLogin(t, "carol").Access, key, "YubiKey", false)
		creds, err := e.store.WebAuthnCredentialsOf(context.Background(), e.mustUserID(t, "carol"))
		if err != nil || len(creds) != 1 {
			t.Fatalf("credentials: %v %d", err, len(creds))
		}
		ceremony, opts := e.beginPasskey(t)
		if _, err := key.Get(opts); err == nil {
			t.Fatal("a security key answered a passkey login unasked")
		}
		pk := map[string]any{}
		for k, v := range opts["publicKey"].(map[string]any) {
			pk[k] = v
		}
		pk["allowCredentials"] = []any{map[string]any{"type": "public-key", "id": creds[0].CredentialID}}
		cred := mustGet(t, key, map[string]any{"publicKey": pk})
		cred["response"].(map[string]any)["userHandle"] = creds[0].UserHandle
		r := e.finishPasskey(t, ceremony, cred)
		wantError(t, "security key as a passkey", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
	})
}

// TestWebAuthnBadAnswers: answers for another origin or relying party, a counter that went
// backwards, an expired or used ceremony, another user's ceremony are refused.
func TestWebAuthnBadAnswers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "bob", regular)
		access := e.mustLogin(t, "alice").Access

		for _, bad := range []struct{ what, origin, rpID string }{
			{"wrong origin", "https://evil.example", ""},
			{"wrong rp id", testOrigin, "evil.example"},
		} {
			k := passkeytest.New(bad.origin)
			k.RPID = bad.rpID
			r := e.tryRegister(t, access, k, "Evil", true)
			wantError(t, "registration: "+bad.what, r.StatusCode(), r.Body, 400, string(client.ErrorCodeInvalid))
		}

		key := passkeytest.New(testOrigin)
		e.register(t, access, key, "Key", true)
		for _, bad := range []struct{ what, origin, rpID string }{
			{"wrong origin", "https://evil.example", ""},
			{"wrong rp id", testOrigin, "evil.example"},
		} {
			key.Origin, key.RPID = bad.origin, bad.rpID
			c, opts := e.webauthnChallenge(t, "alice")
			wantRefused(t, "second factor: "+bad.what, e.answerWebAuthn(t, c, mustGet(t, key, opts)), 401, client.ErrorCodeInvalidMfaCode)
			ceremony, popts := e.beginPasskey(t)
			r := e.finishPasskey(t, ceremony, mustGet(t, key, popts))
			wantError(t, "passkey: "+bad.what, r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		}
		key.Origin, key.RPID = testOrigin, ""

		ceremony, opts := e.beginPasskey(t)
		if ok := e.finishPasskey(t, ceremony, mustGet(t, key, opts)); ok.JSON200 == nil {
			t.Fatalf("passkey: %d %s", ok.StatusCode(), ok.Body)
		}
		// Every Get advanced the counter, the refused ones too: the one stored is 5.
		key.SetCounter(0) // a clone, behind the original
		ceremony, opts = e.beginPasskey(t)
		r := e.finishPasskey(t, ceremony, mustGet(t, key, opts))
		wantError(t, "counter went backwards", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		c, copts := e.webauthnChallenge(t, "alice")
		key.SetCounter(4)
		wantRefused(t, "second factor: counter did not advance", e.answerWebAuthn(t, c, mustGet(t, key, copts)), 401, client.ErrorCodeInvalidMfaCode)
		key.SetCounter(5)
		if ok := e.answerWebAuthn(t, c, mustGet(t, key, copts)); ok.JSON200 == nil {
			t.Fatalf("counter forward again: %d %s", ok.StatusCode(), ok.Body)
		}

		ceremony, opts = e.beginPasskey(t)
		e.clock.Add(5*time.Minute + time.Second)
		r = e.finishPasskey(t, ceremony, mustGet(t, key, opts))
		wantError(t, "expired passkey ceremony", r.StatusCode(), r.Body, 401, string(client.ErrorCodeTokenNotValid))

		key.SetCounter(10)
		access = e.mustLoginPasskey(t, key) // aal2: adding a second factor needs it
		begin, err := e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{}, bearer(access))
		if err != nil || begin.JSON200 == nil {
			t.Fatalf("begin: %v %d %s", err, begin.StatusCode(), begin.Body)
		}
		other := passkeytest.New(testOrigin)
		cred, err := other.Create(begin.JSON200.Options)
		if err != nil {
			t.Fatal(err)
		}
		bobs, err := e.client.FinishWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationFinish{
			Ceremony: begin.JSON200.Ceremony, Name: "x", Credential: cred}, bearer(e.mustLogin(t, "bob").Access))
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "another user's ceremony", bobs.StatusCode(), bobs.Body, 401, string(client.ErrorCodeTokenNotValid))
		// Bob's token is good: the 401 refuses the ceremony, and says nothing of the token, so
		// that a client does not refresh and send the ceremony again.
		if h := bobs.HTTPResponse.Header.Get("WWW-Authenticate"); h != `Bearer realm="api"` {
			t.Errorf("ceremony refused: WWW-Authenticate = %q, want no invalid_token", h)
		}
		e.clock.Add(5*time.Minute + time.Second)
		late, err := e.client.FinishWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationFinish{
			Ceremony: begin.JSON200.Ceremony, Name: "x", Credential: cred}, bearer(access))
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "expired registration", late.StatusCode(), late.Body, 401, string(client.ErrorCodeTokenNotValid))

		access = e.mustLoginPasskey(t, key)
		begin, _ = e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{}, bearer(access))
		cred, _ = other.Create(begin.JSON200.Options)
		body := client.WebauthnRegistrationFinish{Ceremony: begin.JSON200.Ceremony, Name: "Second", Credential: cred}
		if first, _ := e.client.FinishWebauthnRegistrationWithResponse(ctx, body, bearer(access)); first.JSON201 == nil {
			t.Fatalf("register: %d %s", first.StatusCode(), first.Body)
		}
		again, _ := e.client.FinishWebauthnRegistrationWithResponse(ctx, body, bearer(access))
		wantError(t, "used registration", again.StatusCode(), again.Body, 401, string(client.ErrorCodeTokenNotValid))
		if _, err := other.Create(begin.JSON200.Options); err != nil {
			t.Fatal(err)
		}
		begin, _ = e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{}, bearer(access))
		if _, err := other.Create(begin.JSON200.Options); err != passkeytest.ErrExcluded {
			t.Errorf("registered credentials are not excluded: %v", err)
		}
	})
}

// mustLoginPasskey logs in with key's passkey at the current time and returns the access token.
func (e *testEnv) mustLoginPasskey(t *testing.T, key *passkeytest.Authenticator) string {
	t.Helper()
	ceremony, opts := e.beginPasskey(t)
	ok := e.finishPasskey(t, ceremony, mustGet(t, key, opts))
	if ok.JSON200 == nil {
		t.Fatalf("passkey login: %d %s", ok.StatusCode(), ok.Body)
	}
	return ok.JSON200.Access
}

// TestWebAuthnAssertionOnceInParallel: one assertion sent many times at once, to two
// instances, logs in once: a passkey login, and a second factor.
func TestWebAuthnAssertionOnceInParallel(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newInstances(t, backend, noFactorLimits)
			in.a.mustUser(t, "alice", regular)
			key := passkeytest.New(testOrigin)
			in.a.register(t, in.a.mustLogin(t, "alice").Access, key, "Key", true)
			in.b.clock.Set(in.a.clock.Now())
			const n = 8
			ceremony, opts := in.a.beginPasskey(t)
			cred := mustGet(t, key, opts)
			wins := parallel(t, n, func(i int) int {
				return []*testEnv{in.a, in.b}[i%2].finishPasskey(t, ceremony, cred).StatusCode()
			})
			if wins != 1 {
				t.Fatalf("one passkey assertion logged in %d times, want once", wins)
			}
			c, copts := in.b.webauthnChallenge(t, "alice")
			cred = mustGet(t, key, copts)
			wins = parallel(t, n, func(i int) int {
				return []*testEnv{in.a, in.b}[i%2].answerWebAuthn(t, c, cred).StatusCode()
			})
			if wins != 1 {
				t.Fatalf("one second-factor assertion logged in %d times, want once", wins)
			}
		})
	}
}

// parallel runs n calls of do at once and counts the 200s; every other answer must be a 401.
func parallel(t *testing.T, n int, do func(i int) int) int {
	t.Helper()
	var mu sync.Mutex
	wins := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			status := do(i)
			mu.Lock()
			defer mu.Unlock()
			switch status {
			case http.StatusOK:
				wins++
			case http.StatusUnauthorized:
			default:
				t.Errorf("answer %d: %d", i, status)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

// TestWebAuthnGuessesThrottled: wrong assertions of a passkey count against its account;
// sent at once, no more are checked than the limit, and past it even a right one waits.
func TestWebAuthnGuessesThrottled(t *testing.T) {
	const limit = 3
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		key := passkeytest.New(testOrigin)
		e.register(t, e.mustLogin(t, "alice").Access, key, "Key", true)
		ceremony, opts := e.beginPasskey(t)
		key.Origin = "https://evil.example"
		const n = 10
		bad := make([]map[string]any, n)
		for i := range bad {
			bad[i] = mustGet(t, key, opts)
		}
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				r := e.finishPasskey(t, ceremony, bad[i])
				mu.Lock()
				statuses[r.StatusCode()]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if statuses[http.StatusUnauthorized] != limit || statuses[http.StatusTooManyRequests] != n-limit {
			t.Fatalf("statuses %v, want %d 401 and the rest 429", statuses, limit)
		}
		key.Origin = testOrigin
		r := e.finishPasskey(t, ceremony, mustGet(t, key, opts))
		wantError(t, "right assertion past the limit", r.StatusCode(), r.Body, http.StatusTooManyRequests, string(client.ErrorCodeThrottled))
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = limit, 1000 }))
}

// TestWebAuthnPermissions: the account operations need a token, and touch only the caller's
// credentials.
func TestWebAuthnPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "bob", superRole)
		f := e.register(t, e.mustLogin(t, "alice").Access, passkeytest.New(testOrigin), "Key", false)
		bob := bearer(e.mustLogin(t, "bob").Access)
		none := func(context.Context, *http.Request) error { return nil }
		for _, who := range []struct {
			what   string
			edit   client.RequestEditorFn
			status int
		}{{"anonymous", none, 401}, {"another user (a superuser)", bob, 404}} {
			rn, _ := e.client.RenameWebauthnCredentialWithResponse(ctx, *f.Id, client.WebauthnRename{Name: "x"}, who.edit)
			del, _ := e.client.RemoveWebauthnCredentialWithResponse(ctx, *f.Id, who.edit)
			if rn.StatusCode() != who.status || del.StatusCode() != who.status {
				t.Errorf("%s: rename %d, remove %d, want %d", who.what, rn.StatusCode(), del.StatusCode(), who.status)
			}
		}
		for _, op := range []func() int{
			func() int {
				r, _ := e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{}, none)
				return r.StatusCode()
			},
			func() int {
				r, _ := e.client.FinishWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationFinish{Ceremony: "x", Name: "x", Credential: map[string]any{}}, none)
				return r.StatusCode()
			},
		} {
			if got := op(); got != 401 {
				t.Errorf("anonymous registration: %d, want 401", got)
			}
		}
		r, _ := e.client.FinishPasskeyLoginWithResponse(ctx, client.WebauthnAssertion{Ceremony: "x", Credential: map[string]any{"id": "x"}})
		wantError(t, "unknown ceremony", r.StatusCode(), r.Body, 401, string(client.ErrorCodeTokenNotValid))
		ceremony, _ := e.beginPasskey(t)
		r, _ = e.client.FinishPasskeyLoginWithResponse(ctx, client.WebauthnAssertion{Ceremony: ceremony, Credential: map[string]any{"id": "x"}})
		wantError(t, "garbage assertion", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
	})
}
