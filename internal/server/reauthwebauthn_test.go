package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/passkey/passkeytest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// beginReauthKey begins a re-authentication of access's session by a security key or passkey
// and returns its ceremony and options.
func (e *testEnv) beginReauthKey(t *testing.T, access string) (string, map[string]any) {
	t.Helper()
	r, err := e.client.BeginWebauthnReauthenticationWithResponse(context.Background(), bearer(access))
	if err != nil || r.JSON200 == nil {
		t.Fatalf("begin re-authentication by key: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return r.JSON200.Ceremony, r.JSON200.Options
}

func byKey(ceremony string, cred map[string]any) client.Reauthentication {
	return client.Reauthentication{Method: client.ReauthenticationMethodWebauthn, Ceremony: &ceremony, Credential: &cred}
}

// withChallenge is opts with the challenge of other: an assertion of opts' credentials
// signed over another ceremony's challenge.
func withChallenge(t *testing.T, opts, other map[string]any) map[string]any {
	t.Helper()
	inner := func(o map[string]any) map[string]any {
		if pk, ok := o["publicKey"].(map[string]any); ok {
			return pk
		}
		return o
	}
	out := map[string]any{}
	for k, v := range inner(opts) {
		out[k] = v
	}
	out["challenge"] = inner(other)["challenge"]
	return map[string]any{"publicKey": out}
}

// TestReauthenticateWebAuthn: a user whose factor is a security key re-authenticates with it:
// the options list their key, the answer raises the same session (["pwd","hwk","mfa"],
// aal2, auth_time now) and unlocks a step-up operation; the ceremony works once and only for
// the session that began it (not another session of the user, not another user); a user
// without a key gets no options; a passkey session re-authenticates without "pwd".
func TestReauthenticateWebAuthn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		key := passkeytest.New(testOrigin)
		e.register(t, e.mustLogin(t, "alice").Access, key, "YubiKey", false)
		c, opts := e.webauthnChallenge(t, "alice")
		login := e.answerWebAuthn(t, c, mustGet(t, key, opts))
		if login.JSON200 == nil {
			t.Fatalf("login: %d %s", login.StatusCode(), login.Body)
		}
		access := login.JSON200.Access
		sid := claimsOf(t, access)["sid"]
		e.clock.Add(11 * time.Minute) // past the step-up window
		regen := func(access string) int {
			r, err := e.client.RegenerateRecoveryCodesWithResponse(ctx, bearer(access))
			mustNoErr(t, err)
			return r.StatusCode()
		}
		if got := regen(access); got != http.StatusUnauthorized {
			t.Fatalf("step-up operation with an old login: %d, want 401", got)
		}

		ceremony, ropts := e.beginReauthKey(t, access)
		r := e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodWebauthn, Ceremony: &ceremony})
		wantError(t, "no credential", r.StatusCode(), r.Body, 400, string(client.ErrorCodeInvalid))
		cred := mustGet(t, key, ropts)
		raised := e.mustReauth(t, access, byKey(ceremony, cred))
		wantClaims(t, "raised by key", raised, []any{"pwd", "hwk", "mfa"}, "aal2")
		if got := claimsOf(t, raised)["sid"]; got != sid || authTime(t, raised) != e.clock.Now().Unix() {
			t.Errorf("raised token sid %v auth_time %d, want %v now", got, authTime(t, raised), sid)
		}
		if got := regen(raised); got != http.StatusOK {
			t.Errorf("step-up operation after re-authentication: %d, want 200", got)
		}
		r = e.reauth(t, access, byKey(ceremony, cred))
		wantError(t, "assertion replayed", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		r = e.reauth(t, access, byKey(ceremony, mustGet(t, key, ropts)))
		wantError(t, "ceremony used again", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))

		// Another session of alice cannot answer this session's ceremony.
		c, opts = e.webauthnChallenge(t, "alice")
		other := e.answerWebAuthn(t, c, mustGet(t, key, opts)).JSON200.Access
		ceremony, ropts = e.beginReauthKey(t, access)
		r = e.reauth(t, other, byKey(ceremony, mustGet(t, key, ropts)))
		wantError(t, "another session's ceremony", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))

		// Nor can another user, even signing its challenge with their own key.
		e.mustUser(t, "bob", regular)
		bobKey := passkeytest.New(testOrigin)
		e.register(t, e.mustLogin(t, "bob").Access, bobKey, "Bob's key", false)
		c, opts = e.webauthnChallenge(t, "bob")
		bob := e.answerWebAuthn(t, c, mustGet(t, bobKey, opts)).JSON200.Access
		bobCeremony, bobOpts := e.beginReauthKey(t, bob)
		r = e.reauth(t, access, byKey(bobCeremony, mustGet(t, key, withChallenge(t, ropts, bobOpts))))
		wantError(t, "another user's ceremony", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		r = e.reauth(t, bob, byKey(ceremony, mustGet(t, bobKey, withChallenge(t, bobOpts, ropts))))
		wantError(t, "another user's ceremony (bob)", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		// Both ceremonies still work for their own sessions.
		e.mustReauth(t, bob, byKey(bobCeremony, mustGet(t, bobKey, bobOpts)))
		e.mustReauth(t, access, byKey(ceremony, mustGet(t, key, ropts)))

		// Without a key: no options; a TOTP user answers with codes.
		secret, _ := e.mfaUser(t, "carol")
		carol := e.mfaLogin(t, "carol", secret).Access
		b, err := e.client.BeginWebauthnReauthenticationWithResponse(ctx, bearer(carol))
		mustNoErr(t, err)
		wantError(t, "no key", b.StatusCode(), b.Body, 400, string(client.ErrorCodeInvalid))
		unauth, err := e.client.BeginWebauthnReauthenticationWithResponse(ctx)
		mustNoErr(t, err)
		wantError(t, "anonymous", unauth.StatusCode(), unauth.Body, 401, string(client.ErrorCodeNotAuthenticated))

		// A passkey session: no password in its amr, nor after re-authentication by the key or
		// by a recovery code.
		e.mustUser(t, "dave", regular)
		pk := passkeytest.New(testOrigin)
		pk.BackupEligible = true
		first := e.tryRegister(t, e.mustLogin(t, "dave").Access, pk, "Phone", true)
		if first.JSON201 == nil || first.JSON201.RecoveryCodes == nil {
			t.Fatalf("register dave's passkey: %d %s", first.StatusCode(), first.Body)
		}
		dave := e.mustLoginPasskey(t, pk)
		ceremony, ropts = e.beginReauthKey(t, dave)
		wantClaims(t, "passkey session raised", e.mustReauth(t, dave, byKey(ceremony, mustGet(t, pk, ropts))), []any{"swk", "mfa"}, "aal2")
		byCode := e.mustReauth(t, dave, client.Reauthentication{Method: client.ReauthenticationMethodRecoveryCode, Code: ptr((*first.JSON201.RecoveryCodes)[0])})
		wantClaims(t, "passkey session raised by a recovery code", byCode, []any{"swk", "mfa"}, "aal2")

		events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{})
		mustNoErr(t, err)
		count := map[audit.Action]int{}
		for _, ev := range events {
			count[audit.Action(ev.Action)]++
			if s := fmt.Sprintf("%+v", ev); strings.Contains(s, ceremony) {
				t.Errorf("audit event carries a ceremony: %s", s)
			}
		}
		if count[audit.ReauthSucceeded] != 5 || count[audit.ReauthFailed] != 5 {
			t.Errorf("audit counts %v: want 5 reauth.succeeded and 5 reauth.failed", count)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 100 }))
}

// TestReauthWebAuthnThrottled: wrong assertions at re-authentication count as the factor's
// failures; past the limit even a right one is 429.
func TestReauthWebAuthnThrottled(t *testing.T) {
	const limit = 3
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		key := passkeytest.New(testOrigin)
		access := e.mustLogin(t, "alice").Access
		e.register(t, access, key, "Key", false)
		for i := range limit {
			ceremony, opts := e.beginReauthKey(t, access)
			key.Origin = "https://evil.example"
			r := e.reauth(t, access, byKey(ceremony, mustGet(t, key, opts)))
			wantError(t, fmt.Sprint("wrong origin ", i), r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
			key.Origin = testOrigin
		}
		ceremony, opts := e.beginReauthKey(t, access)
		r := e.reauth(t, access, byKey(ceremony, mustGet(t, key, opts)))
		wantError(t, "right assertion past the limit", r.StatusCode(), r.Body, http.StatusTooManyRequests, string(client.ErrorCodeThrottled))
		if r.HTTPResponse.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = limit, 1000 }))
}

// TestWebAuthnCeremonySingleUse: with an authenticator whose counter stays 0 (the counter
// check lets 0 follow 0), only the ceremony's single use stops a replayed assertion: a passkey
// login, a re-authentication and a second-factor login each work once, also when the replay
// goes to another instance.
func TestWebAuthnCeremonySingleUse(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newInstances(t, backend, noFactorLimits)
			in.a.mustUser(t, "alice", regular)
			key := passkeytest.New(testOrigin)
			key.NoCounter = true
			in.a.register(t, in.a.mustLogin(t, "alice").Access, key, "Counterless", true)
			in.b.clock.Set(in.a.clock.Now())

			ceremony, opts := in.a.beginPasskey(t)
			cred := mustGet(t, key, opts)
			first := in.a.finishPasskey(t, ceremony, cred)
			if first.JSON200 == nil {
				t.Fatalf("passkey login: %d %s", first.StatusCode(), first.Body)
			}
			for _, e := range []*testEnv{in.a, in.b} {
				r := e.finishPasskey(t, ceremony, cred)
				wantError(t, "passkey assertion replayed", r.StatusCode(), r.Body, 401, string(client.ErrorCodeTokenNotValid))
			}

			access := first.JSON200.Access
			ceremony, opts = in.a.beginReauthKey(t, access)
			cred = mustGet(t, key, opts)
			in.b.mustReauth(t, access, byKey(ceremony, cred))
			for _, e := range []*testEnv{in.a, in.b} {
				r := e.reauth(t, access, byKey(ceremony, cred))
				wantError(t, "re-authentication assertion replayed", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
			}

			c, copts := in.a.webauthnChallenge(t, "alice")
			cred = mustGet(t, key, copts)
			if r := in.b.answerWebAuthn(t, c, cred); r.JSON200 == nil {
				t.Fatalf("second factor: %d %s", r.StatusCode(), r.Body)
			}
			for _, e := range []*testEnv{in.a, in.b} {
				if r := e.answerWebAuthn(t, c, cred); r.StatusCode() != http.StatusUnauthorized {
					t.Errorf("second-factor assertion replayed: %d %s, want 401", r.StatusCode(), r.Body)
				}
			}
		})
	}
}

// TestPasskeyBeginLimitedPerIP: beginning passkey logins, which stores a ceremony each, is
// limited per client IP: past the limit 429 throttled with Retry-After; another IP is not
// held; a minute later the IP may begin again.
func TestPasskeyBeginLimitedPerIP(t *testing.T) {
	const limit = 3
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		for i := range limit {
			if r, err := e.client.BeginPasskeyLoginWithResponse(ctx, from("198.51.100.7")); err != nil || r.JSON200 == nil {
				t.Fatalf("begin %d: %v %d %s", i, err, r.StatusCode(), r.Body)
			}
		}
		r, err := e.client.BeginPasskeyLoginWithResponse(ctx, from("198.51.100.7"))
		mustNoErr(t, err)
		wantError(t, "past the limit", r.StatusCode(), r.Body, http.StatusTooManyRequests, string(client.ErrorCodeThrottled))
		if got := r.HTTPResponse.Header.Get("Retry-After"); got != "20" {
			t.Errorf("Retry-After %q, want 20 (a minute for %d)", got, limit)
		}
		if r, err := e.client.BeginPasskeyLoginWithResponse(ctx, from("203.0.113.9")); err != nil || r.JSON200 == nil {
			t.Fatalf("another IP: %v %d %s", err, r.StatusCode(), r.Body)
		}
		e.clock.Add(time.Minute)
		if r, err := e.client.BeginPasskeyLoginWithResponse(ctx, from("198.51.100.7")); err != nil || r.JSON200 == nil {
			t.Fatalf("a minute later: %v %d %s", err, r.StatusCode(), r.Body)
		}
	}, withConfig(trustLoopback, func(c *server.Config) { c.PasskeyBeginsPerIPPerMinute = limit }))
}

// TestWebAuthnFirstFactorRecoveryCodes: a security key that is the account's first factor
// comes with 10 recovery codes (shown once; each then answers a login's challenge once); a
// second key does not; regeneration works for an account whose factors are keys alone; the
// codes go with the last key.
func TestWebAuthnFirstFactorRecoveryCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "alice", regular)
		access := e.mustLogin(t, "alice").Access
		first := e.tryRegister(t, access, passkeytest.New(testOrigin), "First", false)
		if first.JSON201 == nil || first.JSON201.RecoveryCodes == nil || len(*first.JSON201.RecoveryCodes) != 10 {
			t.Fatalf("first key: %d %s, want 10 recovery codes", first.StatusCode(), first.Body)
		}
		codes := *first.JSON201.RecoveryCodes
		list, err := e.client.ListMfaFactorsWithResponse(ctx, bearer(access))
		if err != nil || list.JSON200 == nil || list.JSON200.RecoveryCodesLeft != 10 {
			t.Fatalf("factors: %v %s, want 10 codes left", err, list.Body)
		}
		r := e.answer(t, e.challenge(t, "alice"), client.MfaMethodRecoveryCode, codes[0])
		if r.JSON200 == nil {
			t.Fatalf("recovery code at login: %d %s", r.StatusCode(), r.Body)
		}
		access = r.JSON200.Access // aal2, now
		r = e.answer(t, e.challenge(t, "alice"), client.MfaMethodRecoveryCode, codes[0])
		wantError(t, "recovery code reused", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
		second := e.tryRegister(t, access, passkeytest.New(testOrigin), "Second", false)
		if second.JSON201 == nil || second.JSON201.RecoveryCodes != nil {
			t.Fatalf("second key: %d %s, want no recovery codes", second.StatusCode(), second.Body)
		}
		regen, err := e.client.RegenerateRecoveryCodesWithResponse(ctx, bearer(access))
		if err != nil || regen.JSON200 == nil || len(regen.JSON200.Codes) != 10 {
			t.Fatalf("regenerate with keys only: %v %d %s", err, regen.StatusCode(), regen.Body)
		}
		left := func() int64 {
			t.Helper()
			list, err := e.client.ListMfaFactorsWithResponse(ctx, bearer(access))
			if err != nil || list.JSON200 == nil {
				t.Fatalf("factors: %v %s", err, list.Body)
			}
			return list.JSON200.RecoveryCodesLeft
		}
		// The codes go with the last factor, not before.
		for i, id := range []int64{*first.JSON201.Id, *second.JSON201.Id} {
			del, err := e.client.RemoveWebauthnCredentialWithResponse(ctx, id, bearer(access))
			if err != nil || del.StatusCode() != http.StatusNoContent {
				t.Fatalf("remove key %d: %v %d %s", id, err, del.StatusCode(), del.Body)
			}
			if want := []int64{10, 0}[i]; left() != want {
				t.Errorf("after removing %d key(s): %d recovery codes left, want %d", i+1, left(), want)
			}
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 100 }))
}

// TestFirstFactorCodesOnce: of an authenticator app and a security key added at once as an
// account's first factors, exactly one answer carries recovery codes, and they are the
// account's (whichever commits first, or when the other is then asked to step up); an app
// activated after a key comes with none, and the key's codes stay.
func TestFirstFactorCodesOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		for i := range 4 {
			name := fmt.Sprint("user", i)
			e.mustUser(t, name, regular)
			access := e.mustLogin(t, name).Access
			enrol, err := e.client.EnrolTotpWithResponse(ctx, bearer(access))
			if err != nil || enrol.JSON201 == nil {
				t.Fatalf("enrol: %v %d %s", err, enrol.StatusCode(), enrol.Body)
			}
			begin, err := e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{}, bearer(access))
			if err != nil || begin.JSON200 == nil {
				t.Fatalf("begin registration: %v %d %s", err, begin.StatusCode(), begin.Body)
			}
			cred, err := passkeytest.New(testOrigin).Create(begin.JSON200.Options)
			mustNoErr(t, err)
			code := e.code(t, enrol.JSON201.Secret)
			var sets [][]string
			var mu sync.Mutex
			done := func(what string, status int, body []byte, codes []string) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case len(codes) > 0:
					sets = append(sets, codes)
				case status == http.StatusUnauthorized: // the other was first: step-up asked
					wantError(t, what, status, body, http.StatusUnauthorized, string(client.ErrorCodeInsufficientUserAuthentication))
				case status/100 != 2:
					t.Errorf("%s: %d %s", what, status, body)
				}
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				<-start
				r, err := e.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: code}, bearer(access))
				if err != nil {
					t.Error(err)
					return
				}
				var codes []string
				if r.JSON200 != nil {
					codes = r.JSON200.Codes
				}
				done("activate", r.StatusCode(), r.Body, codes)
			})
			wg.Go(func() {
				<-start
				r, err := e.client.FinishWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationFinish{
					Ceremony: begin.JSON200.Ceremony, Name: "Key", Credential: cred}, bearer(access))
				if err != nil {
					t.Error(err)
					return
				}
				var codes []string
				if r.JSON201 != nil && r.JSON201.RecoveryCodes != nil {
					codes = *r.JSON201.RecoveryCodes
				}
				done("register", r.StatusCode(), r.Body, codes)
			})
			close(start)
			wg.Wait()
			if len(sets) != 1 || len(sets[0]) != auth.RecoveryCodes {
				t.Fatalf("%s: %d sets of recovery codes, want exactly one of %d", name, len(sets), auth.RecoveryCodes)
			}
			if r := e.answer(t, e.challenge(t, name), client.MfaMethodRecoveryCode, sets[0][0]); r.JSON200 == nil {
				t.Fatalf("%s: the codes shown are not the account's: %d %s", name, r.StatusCode(), r.Body)
			}
		}

		// A key first, then the app: the app comes with no codes; the key's stay.
		e.mustUser(t, "later", regular)
		first := e.tryRegister(t, e.mustLogin(t, "later").Access, passkeytest.New(testOrigin), "Key", false)
		if first.JSON201 == nil || first.JSON201.RecoveryCodes == nil {
			t.Fatalf("first key: %d %s", first.StatusCode(), first.Body)
		}
		codes := *first.JSON201.RecoveryCodes
		byCode := e.answer(t, e.challenge(t, "later"), client.MfaMethodRecoveryCode, codes[0])
		if byCode.JSON200 == nil {
			t.Fatalf("recovery code: %d %s", byCode.StatusCode(), byCode.Body)
		}
		enrol, err := e.client.EnrolTotpWithResponse(ctx, bearer(byCode.JSON200.Access))
		if err != nil || enrol.JSON201 == nil {
			t.Fatalf("enrol after a key: %v %d %s", err, enrol.StatusCode(), enrol.Body)
		}
		act, err := e.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: e.code(t, enrol.JSON201.Secret)}, bearer(byCode.JSON200.Access))
		if err != nil || act.JSON200 == nil || len(act.JSON200.Codes) != 0 {
			t.Fatalf("activate after a key: %v %d %s, want no codes", err, act.StatusCode(), act.Body)
		}
		if r := e.answer(t, e.challenge(t, "later"), client.MfaMethodRecoveryCode, codes[1]); r.JSON200 == nil {
			t.Fatalf("the key's codes after the app: %d %s", r.StatusCode(), r.Body)
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount = 100 }))
}
