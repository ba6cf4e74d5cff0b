package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/passkey/passkeytest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/totp"
)

// stepUpOps are the operations wave 1 marks for step-up, by operationId; the spec must mark
// exactly these (TestStepUpOperations checks both ways).
var stepUpOps = []string{
	"changePassword", "enrolTotp", "activateTotp", "removeTotp", "regenerateRecoveryCodes",
	"createClient", "rotateClientSecret", "rotateSigningKey",
	"createUser", "updateUser", "partialUpdateUser", "deleteUser", "resetUserMfa",
	"beginWebauthnRegistration", "finishWebauthnRegistration", "removeWebauthnCredential",
	"changeEmail",
}

// specMarked returns the operationIds whose operation carries the extension name.
func specMarked(t *testing.T, name string) []string {
	t.Helper()
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Extensions[name] == true {
				out = append(out, op.OperationID)
			}
		}
	}
	sort.Strings(out)
	return out
}

// mfaLogin logs username (with an active factor) in with a TOTP code: an aal2 pair.
func (e *testEnv) mfaLogin(t *testing.T, username, secret string) client.TokenPair {
	t.Helper()
	r := e.answer(t, e.challenge(t, username), client.MfaMethodTotp, e.code(t, secret))
	if r.JSON200 == nil {
		t.Fatalf("mfa login %s: %d %s", username, r.StatusCode(), r.Body)
	}
	return *r.JSON200
}

// reauth re-authenticates with body and returns the response.
func (e *testEnv) reauth(t *testing.T, access string, body client.Reauthentication) *client.ReauthenticateResponse {
	t.Helper()
	r, err := e.client.ReauthenticateWithResponse(context.Background(), body, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *testEnv) mustReauth(t *testing.T, access string, body client.Reauthentication) string {
	t.Helper()
	r := e.reauth(t, access, body)
	if r.JSON200 == nil {
		t.Fatalf("reauthenticate: %d %s", r.StatusCode(), r.Body)
	}
	return r.JSON200.Access
}

// wantStepUp checks a step-up refusal: 401 insufficient_user_authentication with RFC 9470's
// WWW-Authenticate.
func wantStepUp(t *testing.T, what string, status int, header http.Header, body []byte, maxAge time.Duration) {
	t.Helper()
	wantError(t, what, status, body, http.StatusUnauthorized, string(client.ErrorCodeInsufficientUserAuthentication))
	h := header.Get("WWW-Authenticate")
	for _, want := range []string{`Bearer `, `error="insufficient_user_authentication"`, `error_description="`, `acr_values="aal2"`,
		"max_age=" + strconv.Itoa(int(maxAge.Seconds()))} {
		if !strings.Contains(h, want) {
			t.Errorf("%s: WWW-Authenticate %q lacks %s", what, h, want)
		}
	}
}

// stepUpCall is one operation marked for step-up, called with an access token: its status,
// headers and body.
type stepUpCall struct {
	op   string
	want int // the status once stepped up (the operation's answer to the fixture)
	// code is the error code of want when it is an error: a status alone could be any
	// refusal (a 401 the step-up's own).
	code client.ErrorCode
	call func(t *testing.T, e *testEnv, f *stepUpFixture, access string) (int, http.Header, []byte)
}

// stepUpFixture is what the calls work on: a user to change, a client to rotate.
type stepUpFixture struct {
	target   store.User
	clientID string
}

func raw(r interface {
	StatusCode() int
}, hr *http.Response, body []byte) (int, http.Header, []byte) {
	return r.StatusCode(), hr.Header, body
}

var stepUpCalls = []stepUpCall{
	{"changeEmail", http.StatusAccepted, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.ChangeEmailWithResponse(context.Background(), client.EmailChange{Email: "moved@example.com", Password: demoPassword}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"beginWebauthnRegistration", http.StatusOK, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.BeginWebauthnRegistrationWithResponse(context.Background(), client.WebauthnRegistrationStart{}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"finishWebauthnRegistration", http.StatusUnauthorized, client.ErrorCodeTokenNotValid, func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.FinishWebauthnRegistrationWithResponse(context.Background(), client.WebauthnRegistrationFinish{
			Ceremony: "unknown", Name: "Key", Credential: map[string]any{"id": "x"}}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"removeWebauthnCredential", http.StatusNotFound, client.ErrorCodeNotFound, func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.RemoveWebauthnCredentialWithResponse(context.Background(), 999999, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"enrolTotp", http.StatusConflict, client.ErrorCodeConflict, func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.EnrolTotpWithResponse(context.Background(), bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"activateTotp", http.StatusNotFound, client.ErrorCodeNotFound, func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.ActivateTotpWithResponse(context.Background(), client.TotpActivation{Code: "000000"}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"regenerateRecoveryCodes", http.StatusOK, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.RegenerateRecoveryCodesWithResponse(context.Background(), bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"createClient", http.StatusCreated, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.CreateClientWithResponse(context.Background(), client.APIClientCreate{Name: "rs"}, bearer(a))
		mustNoErr(t, err)
		if r.JSON201 != nil {
			f.clientID = r.JSON201.Client.ClientId
		}
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"rotateClientSecret", http.StatusOK, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.RotateClientSecretWithResponse(context.Background(), f.clientID, client.APIClientRotateRequest{}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"rotateSigningKey", http.StatusCreated, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.RotateSigningKeyWithResponse(context.Background(), client.KeyRotateRequest{}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"createUser", http.StatusCreated, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.CreateUserWithResponse(context.Background(), newUserBody("carol"+f.target.Username), bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"updateUser", http.StatusOK, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.UpdateUserWithResponse(context.Background(), f.target.ID, client.UserUpdate{
			Username: f.target.Username, FirstName: "T", LastName: "Arget", Email: "target@example.com"}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"partialUpdateUser", http.StatusOK, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.PartialUpdateUserWithResponse(context.Background(), f.target.ID, client.UserPatch{FirstName: ptr("Tee")}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"resetUserMfa", http.StatusNoContent, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.ResetUserMfaWithResponse(context.Background(), f.target.ID, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"deleteUser", http.StatusNoContent, "", func(t *testing.T, e *testEnv, f *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.DeleteUserWithResponse(context.Background(), f.target.ID, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"changePassword", http.StatusOK, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.ChangePasswordWithResponse(context.Background(), client.PasswordChange{
			OldPassword: demoPassword, NewPassword: "another-Pass-42"}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
	{"removeTotp", http.StatusNoContent, "", func(t *testing.T, e *testEnv, _ *stepUpFixture, a string) (int, http.Header, []byte) {
		r, err := e.client.RemoveTotpWithResponse(context.Background(), client.PasswordConfirmation{Password: demoPassword}, bearer(a))
		mustNoErr(t, err)
		return raw(r, r.HTTPResponse, r.Body)
	}},
}

// TestStepUpOperations: the spec marks exactly wave 1's operations; each refuses a superuser
// with a second factor whose token is aal1 (issued before the factor) or older than the
// step-up window, with RFC 9470's 401, and serves them once they re-authenticate; a superuser
// without a factor is never asked.
func TestStepUpOperations(t *testing.T) {
	want := slices.Clone(stepUpOps)
	sort.Strings(want)
	if got := specMarked(t, "x-step-up"); !slices.Equal(got, want) {
		t.Fatalf("x-step-up on %v, want %v", got, want)
	}
	var called []string
	for _, c := range stepUpCalls {
		called = append(called, c.op)
	}
	sort.Strings(called)
	if !slices.Equal(called, want) {
		t.Fatalf("the table calls %v, want every step-up operation %v", called, want)
	}
	const maxAge = 10 * time.Minute
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", superRole)
		before := e.mustLogin(t, "alice").Access // aal1, from before the factor
		secret := e.activate(t, before)
		f := &stepUpFixture{target: e.mustUser(t, "target", regular)}
		for _, c := range stepUpCalls {
			status, h, body := c.call(t, e, f, before)
			wantStepUp(t, c.op+" with an aal1 token", status, h, body, maxAge)
		}
		for _, c := range stepUpCalls {
			e.clock.Add(totp.Period * time.Second)
			pair := e.mfaLogin(t, "alice", secret)
			e.clock.Add(maxAge + time.Second)
			status, h, body := c.call(t, e, f, pair.Access)
			wantStepUp(t, c.op+" past the window", status, h, body, maxAge)

			access := e.mustReauth(t, pair.Access, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr(e.code(t, secret))})
			if status, _, body = c.call(t, e, f, access); status != c.want {
				t.Fatalf("%s after re-authentication: %d, want %d; %s", c.op, status, c.want, body)
			}
			if c.code != "" {
				wantError(t, c.op+" after re-authentication", status, body, c.want, string(c.code))
			}
			switch c.op {
			case "resetUserMfa", "deleteUser":
				f.target = e.mustUser(t, "target"+strconv.Itoa(len(c.op)), regular)
			case "changePassword": // back to the password the next logins use
				e.setPassword(t, alice.ID, demoPassword)
			}
		}

		// Without a factor: an aal1 token past the window does everything but add a factor
		// (TestAddFactorNeedsRecentSignIn).
		e.mustUser(t, "bob", superRole)
		plain := e.mustLogin(t, "bob").Access
		e.clock.Add(maxAge + time.Second)
		f = &stepUpFixture{target: e.mustUser(t, "target2", regular)}
		for _, c := range stepUpCalls {
			if c.op == "changePassword" || c.op == "removeTotp" || slices.Contains(addsFactorOps, c.op) {
				continue
			}
			want, code := c.want, c.code
			if c.op == "regenerateRecoveryCodes" {
				want, code = http.StatusNotFound, client.ErrorCodeNotFound // no factor, no codes
			}
			status, _, body := c.call(t, e, f, plain)
			if status != want {
				t.Fatalf("%s without a factor: %d, want %d; %s", c.op, status, want, body)
			}
			if code != "" {
				wantError(t, c.op+" without a factor", status, body, want, string(code))
			}
			if c.op == "resetUserMfa" || c.op == "deleteUser" {
				f.target = e.mustUser(t, "target2"+strconv.Itoa(len(c.op)), regular)
			}
		}
	})
}

// addsFactorOps are the operations that add a second factor (x-adds-factor): a caller
// without one must have authenticated within the step-up window.
var addsFactorOps = []string{"activateTotp", "beginWebauthnRegistration", "enrolTotp", "finishWebauthnRegistration"}

// TestAddFactorNeedsRecentSignIn: a user without a factor whose token's auth_time is older
// than the step-up window gets RFC 9470's 401 from every operation that adds a factor, so a
// stolen access token alone cannot add a passkey that then signs in alone; re-authenticating
// with the password lets them add it. A fresh sign-in adds one at once.
func TestAddFactorNeedsRecentSignIn(t *testing.T) {
	if got := specMarked(t, "x-adds-factor"); !slices.Equal(got, addsFactorOps) {
		t.Fatalf("x-adds-factor on %v, want %v", got, addsFactorOps)
	}
	const maxAge = 10 * time.Minute
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		// A fresh sign-in: a passkey, and an authenticator app, at once.
		e.mustUser(t, "fresh", regular)
		e.register(t, e.mustLogin(t, "fresh").Access, passkeytest.New(testOrigin), "Laptop", true)
		e.mustUser(t, "fresh2", regular)
		e.activate(t, e.mustLogin(t, "fresh2").Access)

		// Past the window: each operation that adds a factor asks, with a pending app too.
		e.mustUser(t, "bob", regular)
		stale := e.mustLogin(t, "bob").Access
		enrol, err := e.client.EnrolTotpWithResponse(ctx, bearer(stale))
		if err != nil || enrol.JSON201 == nil {
			t.Fatalf("enrol at sign-in: %v %d %s", err, enrol.StatusCode(), enrol.Body)
		}
		secret := enrol.JSON201.Secret
		e.clock.Add(maxAge + time.Second)
		f := &stepUpFixture{}
		for _, c := range stepUpCalls {
			if slices.Contains(addsFactorOps, c.op) {
				status, h, body := c.call(t, e, f, stale)
				wantStepUp(t, c.op+" without a factor past the window", status, h, body, maxAge)
			}
		}
		act, err := e.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: e.code(t, secret)}, bearer(stale))
		mustNoErr(t, err)
		wantStepUp(t, "activate the pending app past the window", act.StatusCode(), act.HTTPResponse.Header, act.Body, maxAge)
		key := passkeytest.New(testOrigin)
		begin, err := e.client.BeginWebauthnRegistrationWithResponse(ctx, client.WebauthnRegistrationStart{Passkey: ptr(true)}, bearer(stale))
		mustNoErr(t, err)
		wantStepUp(t, "begin a passkey past the window", begin.StatusCode(), begin.HTTPResponse.Header, begin.Body, maxAge)

		// The password raises the session: the passkey is added, the first factor.
		raised := e.mustReauth(t, stale, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)})
		if r := e.tryRegister(t, raised, key, "Phone", true); r.JSON201 == nil || r.JSON201.RecoveryCodes == nil || len(*r.JSON201.RecoveryCodes) != auth.RecoveryCodes {
			t.Fatalf("register after re-authentication: %d %s", r.StatusCode(), r.Body)
		}
		ceremony, opts := e.beginPasskey(t)
		if ok := e.finishPasskey(t, ceremony, mustGet(t, key, opts)); ok.JSON200 == nil {
			t.Fatalf("passkey login: %d %s", ok.StatusCode(), ok.Body)
		}

		// The app, by another user: enrol and activate after the password.
		e.mustUser(t, "carol", regular)
		old := e.mustLogin(t, "carol").Access
		e.clock.Add(maxAge + time.Second)
		r, err := e.client.EnrolTotpWithResponse(ctx, bearer(old))
		mustNoErr(t, err)
		wantStepUp(t, "enrol the app past the window", r.StatusCode(), r.HTTPResponse.Header, r.Body, maxAge)
		e.activate(t, e.mustReauth(t, old, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)}))
	})
}

// setPassword sets the user's password in the store (their sessions stay).
func (e *testEnv) setPassword(t *testing.T, userID int64, password string) {
	t.Helper()
	hash, err := e.hasher.Hash(context.Background(), password)
	mustNoErr(t, err)
	_, err = e.store.UpdateUser(context.Background(), userID, func(u *store.User) error { u.PasswordHash = hash; return nil }, false, e.clock.Now())
	mustNoErr(t, err)
}

// activate enrols and activates a TOTP factor with the access token and returns its secret;
// the clock moves a step on.
func (e *testEnv) activate(t *testing.T, access string) string {
	t.Helper()
	ctx := context.Background()
	enrol, err := e.client.EnrolTotpWithResponse(ctx, bearer(access))
	if err != nil || enrol.JSON201 == nil {
		t.Fatalf("enrol: %v %d %s", err, enrol.StatusCode(), enrol.Body)
	}
	act, err := e.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: e.code(t, enrol.JSON201.Secret)}, bearer(access))
	if err != nil || act.JSON200 == nil {
		t.Fatalf("activate: %v %d %s", err, act.StatusCode(), act.Body)
	}
	e.clock.Add(totp.Period * time.Second)
	return enrol.JSON201.Secret
}

// TestReauthenticate: each method raises the current session (same sid) and later refreshes,
// rotating or not, carry the new amr and auth_time; wrong, replayed or unusable answers are
// refused and audited; a user without a factor answers with the password.
func TestReauthenticate(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		t.Run(fmt.Sprint("rotate=", rotate), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, e *testEnv) {
				ctx := context.Background()
				secret, codes := e.mfaUser(t, "alice")
				pair := e.mfaLogin(t, "alice", secret)
				sid := claimsOf(t, pair.Access)["sid"]
				e.clock.Add(time.Hour - 5*time.Minute)
				// A refresh first (within the refresh lifetime): the session is old.
				refreshed, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
				if err != nil || refreshed.JSON200 == nil {
					t.Fatalf("refresh: %v %d", err, refreshed.StatusCode())
				}
				access, refresh := refreshed.JSON200.Access, pair.Refresh
				if refreshed.JSON200.Refresh != nil {
					refresh = *refreshed.JSON200.Refresh
				}

				code := e.code(t, secret)
				r := e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)})
				wantError(t, "password with a factor", r.StatusCode(), r.Body, 400, string(client.ErrorCodeInvalid))
				r = e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodTotp})
				wantError(t, "no code", r.StatusCode(), r.Body, 400, string(client.ErrorCodeInvalid))
				r = e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr(e.wrongCodes(t, secret, 1)[0])})
				wantError(t, "wrong code", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))

				raised := e.mustReauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr(code)})
				c := claimsOf(t, raised)
				if c["sid"] != sid || authTime(t, raised) != e.clock.Now().Unix() {
					t.Errorf("raised token sid %v auth_time %v, want %v %d", c["sid"], c["auth_time"], sid, e.clock.Now().Unix())
				}
				wantClaims(t, "raised", raised, []any{"pwd", "otp", "mfa"}, "aal2")
				r = e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr(code)})
				wantError(t, "code replayed", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))

				// Later refreshes carry it.
				e.clock.Add(time.Minute)
				again, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: refresh})
				if err != nil || again.JSON200 == nil {
					t.Fatalf("refresh after: %v %d %s", err, again.StatusCode(), again.Body)
				}
				if got := claimsOf(t, again.JSON200.Access)["auth_time"]; got != c["auth_time"] {
					t.Errorf("refreshed auth_time %v, want the re-authentication's %v", got, c["auth_time"])
				}
				if rotate {
					// The grace window's answer, signed again, carries it too.
					grace, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: refresh})
					if err != nil || grace.JSON200 == nil || claimsOf(t, grace.JSON200.Access)["auth_time"] != c["auth_time"] {
						t.Errorf("grace refresh: %v %d %s", err, grace.StatusCode(), grace.Body)
					}
				}

				// A recovery code: the session's methods kept (it names none of its own), the
				// code used up.
				byCode := e.mustReauth(t, raised, client.Reauthentication{Method: client.ReauthenticationMethodRecoveryCode, Code: ptr(codes[0])})
				wantClaims(t, "recovery code", byCode, []any{"pwd", "otp", "mfa"}, "aal2")
				r = e.reauth(t, raised, client.Reauthentication{Method: client.ReauthenticationMethodRecoveryCode, Code: ptr(codes[0])})
				wantError(t, "recovery code reused", r.StatusCode(), r.Body, 401, string(client.ErrorCodeInvalidMfaCode))
				if sessions, err := e.client.ListSessionsWithResponse(ctx, bearer(byCode)); err != nil || sessions.JSON200 == nil ||
					len(*sessions.JSON200) != 2 || !slices.ContainsFunc(*sessions.JSON200, func(s client.Session) bool { return s.Id == sid && s.Current }) {
					t.Fatalf("sessions after re-authentication: %v %s; want the activation's and this one, current", err, sessions.Body)
				}

				// Without a factor: the password, aal1, auth_time now.
				e.mustUser(t, "bob", regular)
				plain := e.mustLogin(t, "bob").Access
				e.clock.Add(2 * time.Minute)
				r = e.reauth(t, plain, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr("123456")})
				wantError(t, "code without a factor", r.StatusCode(), r.Body, 400, string(client.ErrorCodeInvalid))
				r = e.reauth(t, plain, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr("wrong")})
				wantError(t, "wrong password", r.StatusCode(), r.Body, 401, string(client.ErrorCodeAuthenticationFailed))
				byPassword := e.mustReauth(t, plain, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)})
				wantClaims(t, "password", byPassword, []any{"pwd"}, "aal1")
				if got := authTime(t, byPassword); got != e.clock.Now().Unix() {
					t.Errorf("password re-authentication auth_time %v, want now", got)
				}

				events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{})
				mustNoErr(t, err)
				count := map[audit.Action]int{}
				for _, ev := range events {
					count[audit.Action(ev.Action)]++
					if s := fmt.Sprintf("%+v", ev); strings.Contains(s, code) || strings.Contains(s, codes[0]) || strings.Contains(s, demoPassword) {
						t.Errorf("audit event carries a code or password: %s", s)
					}
				}
				if count[audit.ReauthSucceeded] != 3 || count[audit.ReauthFailed] < 4 {
					t.Errorf("audit counts %v: want 3 reauth.succeeded and at least 4 reauth.failed", count)
				}
			}, withConfig(func(c *server.Config) { c.RotateRefreshTokens = rotate; c.LoginFailuresPerAccount = 100 }))
		})
	}
}

// TestReauthGuessesThrottled: wrong codes at once: no more are checked than the limit, and
// past it even the right code waits; the same for passwords.
func TestReauthGuessesThrottled(t *testing.T) {
	const limit = 3
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		secret, _ := e.mfaUser(t, "alice")
		access := e.mfaLogin(t, "alice", secret).Access
		e.mustUser(t, "bob", regular)
		plain := e.mustLogin(t, "bob").Access
		good := e.code(t, secret)
		wrong := e.wrongCodes(t, secret, 10)
		for _, tc := range []struct {
			what   string
			access string
			body   func(i int) client.Reauthentication
			right  client.Reauthentication
		}{
			{"codes", access, func(i int) client.Reauthentication {
				return client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: &wrong[i]}
			}, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: &good}},
			{"passwords", plain, func(i int) client.Reauthentication {
				return client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(fmt.Sprint("wrong", i))}
			}, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)}},
		} {
			statuses := map[int]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 10 {
				wg.Go(func() {
					<-start
					r := e.reauth(t, tc.access, tc.body(i))
					mu.Lock()
					statuses[r.StatusCode()]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			if statuses[http.StatusUnauthorized] != limit || statuses[http.StatusTooManyRequests] != 10-limit {
				t.Fatalf("%s: statuses %v, want %d 401 and the rest 429", tc.what, statuses, limit)
			}
			r := e.reauth(t, tc.access, tc.right)
			wantError(t, tc.what+": right answer past the limit", r.StatusCode(), r.Body, http.StatusTooManyRequests, string(client.ErrorCodeThrottled))
			if r.HTTPResponse.Header.Get("Retry-After") == "" {
				t.Errorf("%s: no Retry-After", tc.what)
			}
		}
	}, withConfig(func(c *server.Config) { c.LoginFailuresPerAccount, c.LoginFailuresPerIP = limit, 1000 }))
}

// TestStepUpAcrossInstances: a re-authentication on one instance is honoured on the other at
// once (the new token carries it); a factor activated on one instance makes the other ask for
// step-up with the tokens it has cached (the cache holds no stale "no factor").
func TestStepUpAcrossInstances(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newInstances(t, backend)
			in.a.mustUser(t, "alice", superRole)
			old := in.a.mustLogin(t, "alice").Access
			keys := func(t *testing.T, e *testEnv, access string) int {
				r, err := e.client.RotateSigningKeyWithResponse(context.Background(), client.KeyRotateRequest{}, bearer(access))
				mustNoErr(t, err)
				return r.StatusCode()
			}
			list := func(t *testing.T, e *testEnv, access string) int {
				r, err := e.client.ListSigningKeysWithResponse(context.Background(), bearer(access))
				mustNoErr(t, err)
				return r.StatusCode()
			}
			ctx := context.Background()
			enrol, err := in.a.client.EnrolTotpWithResponse(ctx, bearer(old))
			if err != nil || enrol.JSON201 == nil {
				t.Fatalf("enrol: %v %d", err, enrol.StatusCode())
			}
			secret := enrol.JSON201.Secret
			// Cached on b once the pending factor exists: the activation alone must reach b.
			waitStatus(t, "list keys on b", in.b, old, list, http.StatusOK)
			act, err := in.a.client.ActivateTotpWithResponse(ctx, client.TotpActivation{Code: in.a.code(t, secret)}, bearer(old))
			if err != nil || act.JSON200 == nil {
				t.Fatalf("activate: %v %d", err, act.StatusCode())
			}
			in.a.clock.Add(totp.Period * time.Second)
			in.b.clock.Set(in.a.clock.Now())
			waitStatus(t, "b asks for step-up once a factor is active", in.b, old, keys, http.StatusUnauthorized)

			pair := in.a.mfaLogin(t, "alice", secret)
			in.a.clock.Add(11 * time.Minute)
			in.b.clock.Set(in.a.clock.Now())
			if got := keys(t, in.b, pair.Access); got != http.StatusUnauthorized {
				t.Fatalf("stale on b: %d", got)
			}
			raised := in.a.mustReauth(t, pair.Access, client.Reauthentication{Method: client.ReauthenticationMethodTotp, Code: ptr(in.a.code(t, secret))})
			if got := keys(t, in.b, raised); got != http.StatusCreated {
				t.Fatalf("raised token on b: %d", got)
			}
			if got := keys(t, in.b, pair.Access); got != http.StatusUnauthorized {
				t.Errorf("the old token of the raised session on b: %d, want 401 (step-up is the token's)", got)
			}
			// b's refresh of the session carries the raised auth_time.
			r, err := in.b.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: pair.Refresh})
			if err != nil || r.JSON200 == nil {
				t.Fatalf("refresh on b: %v %d", err, r.StatusCode())
			}
			if got := keys(t, in.b, r.JSON200.Access); got != http.StatusCreated {
				t.Fatalf("refreshed on b after the re-authentication on a: %d", got)
			}
		})
	}
}

// TestPasswordChangeKeepsAMR: the new session of a password change keeps the caller's amr and
// acr, with auth_time now.
func TestPasswordChangeKeepsAMR(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		secret, _ := e.mfaUser(t, "alice")
		pair := e.mfaLogin(t, "alice", secret)
		e.clock.Add(time.Minute)
		r, err := e.client.ChangePasswordWithResponse(context.Background(), client.PasswordChange{OldPassword: demoPassword, NewPassword: "another-Pass-42"}, bearer(pair.Access))
		if err != nil || r.JSON200 == nil {
			t.Fatalf("change: %v %d %s", err, r.StatusCode(), r.Body)
		}
		wantClaims(t, "after the change", r.JSON200.Access, []any{"pwd", "otp", "mfa"}, "aal2")
		if got := authTime(t, r.JSON200.Access); got != e.clock.Now().Unix() {
			t.Errorf("auth_time %v, want now %d", got, e.clock.Now().Unix())
		}
	})
}

// TestMFAPolicy: under --require-mfa staff, staff and superusers without a factor get an
// enrolment-only session: every operation of a user's token but the enrolment ones answers
// 403 mfa_enrolment_required; activating a factor ends that and raises the session.
// Regular users, and staff under --require-mfa superusers, are unaffected.
func TestMFAPolicy(t *testing.T) {
	allowed := []string{"activateTotp", "beginWebauthnRegistration", "enrolTotp", "finishWebauthnRegistration", "getAccount", "listMfaFactors", "logout", "logoutAll", "logoutAllPost", "reauthenticate"}
	if got := specMarked(t, "x-mfa-enrolment"); !slices.Equal(got, allowed) {
		t.Fatalf("x-mfa-enrolment on %v, want %v", got, allowed)
	}
	spec, err := gen.GetSpec()
	mustNoErr(t, err)
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "staffer", staffRole)
		e.mustUser(t, "root", superRole)
		e.mustUser(t, "bob", regular)
		for _, name := range []string{"staffer", "root"} {
			pair := e.mustLogin(t, name)
			access := pair.Access
			// Every operation with a user's token but the allowed ones: refused before anything.
			for path, item := range spec.Paths.Map() {
				for method, op := range item.Operations() {
					if op.Extensions["x-mfa-enrolment"] == true || (op.Security != nil && !hasBearer(*op.Security)) {
						continue
					}
					p := strings.NewReplacer("{id}", "1", "{sid}", "AAAA", "{client_id}", "x", "{stream_id}", "x").Replace(path)
					resp, body := e.do(t, method, p, "application/json", "{}", "Authorization", "Bearer "+access)
					wantError(t, name+" "+method+" "+path, resp.StatusCode, body, http.StatusForbidden, string(client.ErrorCodeMfaEnrolmentRequired))
				}
			}
			// The allowed ones work.
			acc, err := e.client.GetAccountWithResponse(ctx, bearer(access))
			if err != nil || acc.JSON200 == nil {
				t.Fatalf("%s account: %v %d", name, err, acc.StatusCode())
			}
			list, err := e.client.ListMfaFactorsWithResponse(ctx, bearer(access))
			if err != nil || list.JSON200 == nil || !list.JSON200.EnrolmentRequired {
				t.Fatalf("%s factors: %v %s", name, err, list.Body)
			}
			if r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh}); err != nil || r.JSON200 == nil {
				t.Fatalf("%s refresh: %v %d", name, err, r.StatusCode())
			}
			if r := e.reauth(t, access, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)}); r.JSON200 == nil {
				t.Fatalf("%s reauthenticate: %d %s", name, r.StatusCode(), r.Body)
			}
			e.activate(t, access)
			if got := listUsers(t, e, access); got != http.StatusOK {
				t.Fatalf("%s after activation: %d", name, got)
			}
			// The session is raised: its refresh is aal2 (pair.Refresh was rotated above; log in
			// again would need the factor, so the raised session is read from the store).
			u, err := e.store.UserByUsername(ctx, name)
			mustNoErr(t, err)
			sessions, err := e.store.LiveSessions(ctx, u.ID, e.clock.Now())
			mustNoErr(t, err)
			if len(sessions) != 1 || !slices.Equal(sessions[0].AMR, []string{"pwd", "otp", "mfa"}) {
				t.Errorf("%s session after activation: %+v", name, sessions)
			}
		}
		if got := listSessionsStatus(t, e, e.mustLogin(t, "bob").Access); got != http.StatusOK {
			t.Errorf("regular user: %d", got)
		}
	}, withConfig(func(c *server.Config) { c.RequireMFA = auth.RequireMFAStaff }))

	e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) { c.RequireMFA = auth.RequireMFASuperusers }))
	e.mustUser(t, "staffer", staffRole)
	e.mustUser(t, "root", superRole)
	if got := listUsers(t, e, e.mustLogin(t, "staffer").Access); got != http.StatusOK {
		t.Errorf("staff under superusers: %d", got)
	}
	resp, body := e.do(t, http.MethodGet, "/api/v1/account/management/", "", "", "Authorization", "Bearer "+e.mustLogin(t, "root").Access)
	wantError(t, "superuser under superusers", resp.StatusCode, body, http.StatusForbidden, string(client.ErrorCodeMfaEnrolmentRequired))
}

// authTime is the access token's auth_time.
func authTime(t *testing.T, access string) int64 {
	t.Helper()
	n, err := claimsOf(t, access)["auth_time"].(json.Number).Int64()
	mustNoErr(t, err)
	return n
}

func hasBearer(reqs openapi3.SecurityRequirements) bool {
	for _, r := range reqs {
		if _, ok := r["bearerAuth"]; ok {
			return true
		}
	}
	return false
}

func listSessionsStatus(t *testing.T, e *testEnv, access string) int {
	t.Helper()
	r, err := e.client.ListSessionsWithResponse(context.Background(), bearer(access))
	mustNoErr(t, err)
	return r.StatusCode()
}

// TestMFAReset: a superuser's reset removes the user's factors and codes, ends their sessions
// on every instance, is audited and sent to Shared Signals streams as a credential change;
// the user logs in with the password alone again.
func TestMFAReset(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newInstances(t, backend)
			ctx := context.Background()
			admin := in.a.mustAdmin(t)
			rs := in.a.mustSSFClient(t, admin, "rs", client.ScopeSSFManage, client.ScopeSSFRead)
			st := in.a.mustCreateStream(t, rs.token, `{"delivery":{"method":"urn:ietf:rfc:8936"},"format":"complex","events_requested":["`+ssf.TypeCredentialChange+`","`+ssf.TypeSessionRevoked+`"]}`)
			secret, _ := in.a.mfaUser(t, "alice")
			in.b.clock.Set(in.a.clock.Now())
			alice := in.b.mfaLogin(t, "alice", secret)
			if got := getAccount(t, in.b, alice.Access); got != http.StatusOK { // cached on b
				t.Fatalf("alice on b: %d", got)
			}
			u, err := in.a.store.UserByUsername(ctx, "alice")
			mustNoErr(t, err)
			before, err := in.a.client.GetUserMfaWithResponse(ctx, u.ID, bearer(admin))
			if err != nil || before.JSON200 == nil || len(before.JSON200.Factors) != 1 || before.JSON200.RecoveryCodesLeft != 10 {
				t.Fatalf("factors before: %v %s", err, before.Body)
			}
			in.a.drainSETs(t, rs.token, st.StreamId)

			r, err := in.a.client.ResetUserMfaWithResponse(ctx, u.ID, bearer(admin))
			if err != nil || r.StatusCode() != http.StatusNoContent {
				t.Fatalf("reset: %v %d %s", err, r.StatusCode(), r.Body)
			}
			waitStatus(t, "alice's token on b", in.b, alice.Access, getAccount, http.StatusUnauthorized)
			if rr, _ := in.b.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: alice.Refresh}); rr.StatusCode() != http.StatusUnauthorized {
				t.Errorf("alice's refresh after the reset: %d", rr.StatusCode())
			}
			after, err := in.a.client.GetUserMfaWithResponse(ctx, u.ID, bearer(admin))
			if err != nil || after.JSON200 == nil || len(after.JSON200.Factors) != 0 || after.JSON200.RecoveryCodesLeft != 0 {
				t.Fatalf("factors after: %v %s", err, after.Body)
			}
			wantClaims(t, "login after the reset", in.a.mustLogin(t, "alice").Access, []any{"pwd"}, "aal1")

			sets := in.a.drainSETs(t, rs.token, st.StreamId)
			var change map[string]any
			revoked := 0
			for _, s := range sets {
				switch eventType(s) {
				case ssf.TypeCredentialChange:
					change = s["events"].(map[string]any)[ssf.TypeCredentialChange].(map[string]any)
				case ssf.TypeSessionRevoked:
					revoked++
				}
			}
			if change == nil || change["change_type"] != "revoke" || change["credential_type"] != "app" || revoked != 2 {
				t.Errorf("SETs %v: want a credential-change (revoke, app) and two session-revoked (alice's sessions)", sets)
			}
			events, _, err := in.a.store.AuditEvents(ctx, store.AuditFilter{})
			mustNoErr(t, err)
			found := false
			for _, ev := range events {
				if ev.Action == string(audit.MFAReset) && ev.TargetID == u.ID && ev.ActorID != 0 {
					found = true
				}
			}
			if !found {
				t.Error("no mfa.reset event naming the user and the superuser")
			}
			if r, _ := in.a.client.ResetUserMfaWithResponse(ctx, 99999, bearer(admin)); r.StatusCode() != http.StatusNotFound {
				t.Errorf("reset of an unknown user: %d", r.StatusCode())
			}
		})
	}
}

// TestMFAOperationsPermissions: who may call the new operations.
func TestMFAOperationsPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		target := e.mustUser(t, "target", regular)
		tokens := map[string]string{}
		for name, r := range map[string]role{"regular": regular, "staff": staffRole, "super": superRole} {
			e.mustUser(t, name, r)
			tokens[name] = e.mustLogin(t, name).Access
		}
		tokens["none"] = ""
		for _, tc := range []struct {
			op, who string
			want    int
		}{
			{"get", "none", 401}, {"get", "regular", 403}, {"get", "staff", 200}, {"get", "super", 200},
			{"reset", "none", 401}, {"reset", "regular", 403}, {"reset", "staff", 403}, {"reset", "super", 204},
			{"reauth", "none", 401}, {"reauth", "regular", 200},
		} {
			var editors []client.RequestEditorFn
			if tokens[tc.who] != "" {
				editors = append(editors, bearer(tokens[tc.who]))
			}
			var status int
			switch tc.op {
			case "get":
				r, err := e.client.GetUserMfaWithResponse(ctx, target.ID, editors...)
				mustNoErr(t, err)
				status = r.StatusCode()
			case "reset":
				r, err := e.client.ResetUserMfaWithResponse(ctx, target.ID, editors...)
				mustNoErr(t, err)
				status = r.StatusCode()
			case "reauth":
				r, err := e.client.ReauthenticateWithResponse(ctx, client.Reauthentication{Method: client.ReauthenticationMethodPassword, Password: ptr(demoPassword)}, editors...)
				mustNoErr(t, err)
				status = r.StatusCode()
			}
			if status != tc.want {
				t.Errorf("%s by %s: %d, want %d", tc.op, tc.who, status, tc.want)
			}
		}
		if r, _ := e.client.GetUserMfaWithResponse(ctx, 99999, bearer(tokens["staff"])); r.StatusCode() != http.StatusNotFound {
			t.Errorf("factors of an unknown user: %d", r.StatusCode())
		}
		resp, body := e.do(t, http.MethodPost, "/api/v1/auth/reauthenticate/", "application/json", `{"method":"sms"}`, "Authorization", "Bearer "+tokens["regular"])
		wantError(t, "unknown method", resp.StatusCode, body, 400, string(client.ErrorCodeInvalid))
	})
}

// TestIntrospectionACR: introspection answers the access token's acr, amr and auth_time.
func TestIntrospectionACR(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		secret, _ := e.mfaUser(t, "alice")
		access := e.mfaLogin(t, "alice", secret).Access
		got := e.introspect(t, rs, access)
		if got["acr"] != "aal2" || got["auth_time"] != float64(e.clock.Now().Unix()) || fmt.Sprint(got["amr"]) != "[pwd otp mfa]" {
			t.Errorf("introspection %v: want acr aal2, amr, auth_time now", got)
		}
	})
}
