package server_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/totp"
)

// mfaUser makes a user with an active TOTP factor and returns its secret and recovery codes.
// The clock moves a step on, so that the activation's step is behind.
func (e *testEnv) mfaUser(t *testing.T, username string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	e.mustUser(t, username, regular)
	access := bearer(e.mustLogin(t, username).Access)
	enrol, err := e.client.EnrolTotpWithResponse(ctx, access)
	if err != nil || enrol.JSON201 == nil {
		t.Fatalf("enrol: %v, %d %s", err, enrol.StatusCode(), enrol.Body)
	}
	secret := enrol.JSON201.Secret
	if !strings.HasPrefix(enrol.JSON201.OtpauthUri, "otpauth://totp/") || !strings.HasPrefix(enrol.JSON201.QrSvg, "<svg") {
		t.Fatalf("enrolment %+v", enrol.JSON201)
	}
	act, err := e.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: e.code(t, secret)}, access)
	if err != nil || act.JSON200 == nil || len(act.JSON200.Codes) != 10 {
		t.Fatalf("activate: %v, %d %s", err, act.StatusCode(), act.Body)
	}
	e.clock.Add(totp.Period * time.Second)
	return secret, act.JSON200.Codes
}

// code is secret's TOTP code at the test clock's time.
func (e *testEnv) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.Code(secret, totp.Step(e.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCodes are n well-formed codes that secret has for no step accepted at the test clock's
// time. A fixed guess such as "000000" is right about 3 times in a million: a code of the
// step before, at or after now.
func (e *testEnv) wrongCodes(t *testing.T, secret string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; len(out) < n; i++ {
		g := fmt.Sprintf("%06d", i)
		if _, ok := totp.Check(secret, g, e.clock.Now()); !ok {
			out = append(out, g)
		}
	}
	return out
}

// challenge logs username in and returns the challenge of the mfa_required answer.
func (e *testEnv) challenge(t *testing.T, username string) string {
	t.Helper()
	r := e.login(t, username, demoPassword)
	if r.StatusCode() != http.StatusUnauthorized || r.JSON401 == nil || r.JSON401.Code != client.ErrorCodeMfaRequired || r.JSON401.Mfa == nil {
		t.Fatalf("login with a factor: %d %s", r.StatusCode(), r.Body)
	}
	if !r.JSON401.Mfa.ExpiresAt.Equal(e.clock.Now().Add(5 * time.Minute)) {
		t.Errorf("challenge expires %v, want in 5 minutes", r.JSON401.Mfa.ExpiresAt)
	}
	return r.JSON401.Mfa.Challenge
}

func (e *testEnv) answer(t *testing.T, challenge string, method client.MfaMethod, code string) *client.AnswerMfaChallengeResponse {
	t.Helper()
	r, err := e.client.AnswerMfaChallengeWithResponse(context.Background(), client.MfaChallengeAnswer{Challenge: challenge, Method: method, Code: &code})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantRefused(t *testing.T, what string, r *client.AnswerMfaChallengeResponse, status int, code client.ErrorCode) {
	t.Helper()
	wantError(t, what, r.StatusCode(), r.Body, status, string(code))
}

func wantClaims(t *testing.T, what, access string, amr []any, acr string) {
	t.Helper()
	c := claimsOf(t, access)
	if !reflect.DeepEqual(c["amr"], amr) || c["acr"] != acr {
		t.Errorf("%s: amr %v acr %v, want %v %s", what, c["amr"], c["acr"], amr, acr)
	}
}

// TestTOTPLogin: without a factor a login is as before (aal1); with one the password yields a
// challenge, answered once, before it expires, with a code used once, or a recovery code.
func TestTOTPLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "bob", regular)
		wantClaims(t, "no factor", e.mustLogin(t, "bob").Access, []any{"pwd"}, "aal1")

		secret, codes := e.mfaUser(t, "alice")
		c := e.challenge(t, "alice")
		wantRefused(t, "wrong code", e.answer(t, c, client.MfaMethodTotp, e.wrongCodes(t, secret, 1)[0]), 401, client.ErrorCodeInvalidMfaCode)
		wantRefused(t, "malformed code", e.answer(t, c, client.MfaMethodTotp, "12ab"), 401, client.ErrorCodeInvalidMfaCode)
		wantRefused(t, "unknown challenge", e.answer(t, "nope", client.MfaMethodTotp, e.code(t, secret)), 401, client.ErrorCodeTokenNotValid)
		code := e.code(t, secret)
		ok := e.answer(t, c, client.MfaMethodTotp, code)
		if ok.JSON200 == nil {
			t.Fatalf("right code: %d %s", ok.StatusCode(), ok.Body)
		}
		wantClaims(t, "totp", ok.JSON200.Access, []any{"pwd", "otp", "mfa"}, "aal2")
		refreshed, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: ok.JSON200.Refresh})
		if err != nil || refreshed.JSON200 == nil {
			t.Fatalf("refresh: %v %d", err, refreshed.StatusCode())
		}
		wantClaims(t, "refreshed", refreshed.JSON200.Access, []any{"pwd", "otp", "mfa"}, "aal2")

		wantRefused(t, "challenge used", e.answer(t, c, client.MfaMethodTotp, code), 401, client.ErrorCodeTokenNotValid)
		wantRefused(t, "code replayed", e.answer(t, e.challenge(t, "alice"), client.MfaMethodTotp, code), 401, client.ErrorCodeInvalidMfaCode)

		expiring := e.challenge(t, "alice")
		e.clock.Add(5*time.Minute + time.Second)
		wantRefused(t, "challenge expired", e.answer(t, expiring, client.MfaMethodTotp, e.code(t, secret)), 401, client.ErrorCodeTokenNotValid)

		rc := e.challenge(t, "alice")
		byCode := e.answer(t, rc, client.MfaMethodRecoveryCode, strings.ToLower(codes[0]))
		if byCode.JSON200 == nil {
			t.Fatalf("recovery code: %d %s", byCode.StatusCode(), byCode.Body)
		}
		wantClaims(t, "recovery code", byCode.JSON200.Access, []any{"pwd", "mfa"}, "aal2")
		wantRefused(t, "recovery code reused", e.answer(t, e.challenge(t, "alice"), client.MfaMethodRecoveryCode, codes[0]), 401, client.ErrorCodeInvalidMfaCode)

		access := bearer(byCode.JSON200.Access)
		list, err := e.client.ListMfaFactorsWithResponse(ctx, access)
		if err != nil || list.JSON200 == nil || len(list.JSON200.Factors) != 1 || !list.JSON200.Factors[0].Active || list.JSON200.RecoveryCodesLeft != 9 {
			t.Fatalf("factors: %v %d %s", err, list.StatusCode(), list.Body)
		}
		regen, err := e.client.RegenerateRecoveryCodesWithResponse(ctx, access)
		if err != nil || regen.JSON200 == nil || len(regen.JSON200.Codes) != 10 {
			t.Fatalf("regenerate: %v %d", err, regen.StatusCode())
		}
		wantRefused(t, "old set", e.answer(t, e.challenge(t, "alice"), client.MfaMethodRecoveryCode, codes[1]), 401, client.ErrorCodeInvalidMfaCode)
		if enrol, _ := e.client.EnrolTotpWithResponse(ctx, access); enrol.StatusCode() != http.StatusConflict {
			t.Errorf("enrolling over an active factor: %d", enrol.StatusCode())
		}

		wrong, err := e.client.RemoveTotpWithResponse(ctx, client.PasswordConfirmation{Password: "wrong"}, access)
		if err != nil || wrong.StatusCode() != http.StatusBadRequest {
			t.Fatalf("remove with a wrong password: %v %d", err, wrong.StatusCode())
		}
		removed, err := e.client.RemoveTotpWithResponse(ctx, client.PasswordConfirmation{Password: demoPassword}, access)
		if err != nil || removed.StatusCode() != http.StatusNoContent {
			t.Fatalf("remove: %v %d %s", err, removed.StatusCode(), removed.Body)
		}
		wantClaims(t, "factor removed", e.mustLogin(t, "alice").Access, []any{"pwd"}, "aal1")

		// Audited, and never with a secret or code.
		events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[audit.Action]bool{}
		for _, ev := range events {
			seen[audit.Action(ev.Action)] = true
			if s := fmt.Sprintf("%+v", ev); strings.Contains(s, secret) || strings.Contains(s, code) || strings.Contains(s, codes[0]) {
				t.Errorf("audit event carries a secret or code: %s", s)
			}
		}
		for _, a := range []audit.Action{audit.MFAEnrolled, audit.MFAActivated, audit.MFAFailed, audit.RecoveryCodeUsed, audit.RecoveryCodesRegenerated, audit.MFARemoved} {
			if !seen[a] {
				t.Errorf("no %s event", a)
			}
		}
	})
}

// TestTOTPCodeOnceInParallel: one code sent with many challenges at once, on two instances,
// logs in once; one challenge answered many times at once, once.
func TestTOTPCodeOnceInParallel(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newInstances(t, backend, noFactorLimits)
			secret, _ := in.a.mfaUser(t, "alice")
			in.b.clock.Set(in.a.clock.Now())
			const n = 8
			challenges := make([]string, n)
			for i := range challenges {
				challenges[i] = in.a.challenge(t, "alice")
			}
			code := in.a.code(t, secret)
			if wins := parallelAnswers(t, []*testEnv{in.a, in.b}, n, func(i int) string { return challenges[i] }, client.MfaMethodTotp, code); wins != 1 {
				t.Fatalf("one code logged in %d times, want once", wins)
			}
			in.a.clock.Add(totp.Period * time.Second)
			in.b.clock.Set(in.a.clock.Now())
			one := in.a.challenge(t, "alice")
			code = in.a.code(t, secret)
			if wins := parallelAnswers(t, []*testEnv{in.a, in.b}, n, func(int) string { return one }, client.MfaMethodTotp, code); wins != 1 {
				t.Fatalf("one challenge completed %d times, want once", wins)
			}
		})
	}
}

// TestRecoveryCodeOnceInParallel: one recovery code sent with many challenges at once logs in
// once.
func TestRecoveryCodeOnceInParallel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		_, codes := e.mfaUser(t, "alice")
		const n = 8
		challenges := make([]string, n)
		for i := range challenges {
			challenges[i] = e.challenge(t, "alice")
		}
		if wins := parallelAnswers(t, []*testEnv{e}, n, func(i int) string { return challenges[i] }, client.MfaMethodRecoveryCode, codes[3]); wins != 1 {
			t.Fatalf("one recovery code logged in %d times, want once", wins)
		}
	}, noFactorLimits)
}

// noFactorLimits lifts the attempt limits, for races whose losers count as failures.
var noFactorLimits = withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = 1000, 1000 })

// parallelAnswers sends n answers at once, the i-th with challenge(i) to envs[i%len], and
// counts the logins; every other answer must be a refusal.
func parallelAnswers(t *testing.T, envs []*testEnv, n int, challenge func(i int) string, method client.MfaMethod, code string) int {
	t.Helper()
	var mu sync.Mutex
	wins := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := envs[i%len(envs)].client.AnswerMfaChallengeWithResponse(context.Background(),
				client.MfaChallengeAnswer{Challenge: challenge(i), Method: method, Code: &code})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch r.StatusCode() {
			case http.StatusOK:
				wins++
			case http.StatusUnauthorized:
			default:
				t.Errorf("answer %d: %d %s", i, r.StatusCode(), r.Body)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

// TestTOTPGuessesThrottled: wrong codes count against the account like wrong passwords; sent
// at once, no more are checked than the limit, and past it even the right code waits.
func TestTOTPGuessesThrottled(t *testing.T) {
	const limit = 3
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		secret, _ := e.mfaUser(t, "alice")
		c := e.challenge(t, "alice")
		guesses := e.wrongCodes(t, secret, 10)
		good := e.code(t, secret)
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, g := range guesses {
			wg.Go(func() {
				<-start
				r := e.answer(t, c, client.MfaMethodTotp, g)
				mu.Lock()
				statuses[r.StatusCode()]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if statuses[http.StatusUnauthorized] != limit || statuses[http.StatusTooManyRequests] != len(guesses)-limit {
			t.Fatalf("statuses %v, want %d 401 and the rest 429", statuses, limit)
		}
		r := e.answer(t, c, client.MfaMethodTotp, good)
		wantRefused(t, "right code past the limit", r, http.StatusTooManyRequests, client.ErrorCodeThrottled)
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = limit, 1000 }))
}

// TestTOTPSecretSealed: with a secret key the TOTP secret is stored sealed (and still
// verifies); without one it is stored as it is, as signing keys are.
func TestTOTPSecretSealed(t *testing.T) {
	for _, sealed := range []bool{true, false} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			var opts []envOption
			if sealed {
				opts = append(opts, withKeys(keyring.Options{Secret: []byte("0123456789abcdef0123456789abcdef")}))
			}
			e := newTestEnv(t, "sqlite", opts...)
			secret, _ := e.mfaUser(t, "alice")
			u, err := e.store.UserByUsername(context.Background(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			f, err := e.store.TOTPFactorOf(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(f.Secret), secret); got == sealed {
				t.Fatalf("stored secret %q (sealed %v)", f.Secret, sealed)
			}
			if r := e.answer(t, e.challenge(t, "alice"), client.MfaMethodTotp, e.code(t, secret)); r.JSON200 == nil {
				t.Fatalf("login: %d %s", r.StatusCode(), r.Body)
			}
		})
	}
}
