package server_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/mail/mailtest"
	"github.com/authapi/authapi/internal/passkey/passkeytest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
)

// withAddressFlows turns sign-up (requiring a verified address) and new-device notices on.
func withAddressFlows(fns ...func(*server.Config)) envOption {
	return withConfig(append([]func(*server.Config){func(c *server.Config) {
		c.Verification.SignUp, c.Verification.NewDeviceNotice, c.RequireVerifiedEmail = true, true, true
	}}, fns...)...)
}

// mailOut claims every message the outbox holds that is due, as the outbox's delivery would,
// so that each is returned once.
func (e *testEnv) mailOut(t *testing.T) []store.MailMessage {
	t.Helper()
	now := e.clock.Now()
	msgs, err := e.store.ClaimMail(context.Background(), now, now.Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// mailOfKind returns the messages of kind to to among msgs.
func mailOfKind(msgs []store.MailMessage, kind, to string) []store.MailMessage {
	var out []store.MailMessage
	for _, m := range msgs {
		if m.Kind == kind && m.To == to {
			out = append(out, m)
		}
	}
	return out
}

var linkToken = regexp.MustCompile(`/verify-email#token=([^\s"<]+)`)

// mustLinkToken returns the token of the one message of kind to to among msgs.
func mustLinkToken(t *testing.T, msgs []store.MailMessage, kind, to string) string {
	t.Helper()
	got := mailOfKind(msgs, kind, to)
	if len(got) != 1 {
		t.Fatalf("%d %s messages to %s, want 1 (all: %v)", len(got), kind, to, kinds(msgs))
	}
	m := linkToken.FindStringSubmatch(got[0].Text)
	if m == nil {
		t.Fatalf("no link in %q", got[0].Text)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kinds(msgs []store.MailMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Kind+"->"+m.To)
	}
	return out
}

// confirm posts token to the confirm operation.
func (e *testEnv) confirm(t *testing.T, token string) *client.ConfirmEmailResponse {
	t.Helper()
	resp, err := e.client.ConfirmEmailWithResponse(context.Background(), client.EmailConfirm{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (e *testEnv) account(t *testing.T, access string) client.Account {
	t.Helper()
	resp, err := e.client.GetAccountWithResponse(context.Background(), bearer(access))
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("account: %v %d %s", err, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON200
}

// TestEmailVerification: a user a superuser creates gets a verification link through SMTP;
// the link confirms the address once, a tampered or reused one is refused; a superuser's
// change of the address unverifies it, sends the new address a link and tells the old one;
// a link past its lifetime is refused.
func TestEmailVerification(t *testing.T) {
	forEachSink(t, nil, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		admin := e.mustLogin(t, "root").Access
		created, err := e.client.CreateUserWithResponse(ctx, client.UserCreate{Username: "alice", FirstName: "Alice", LastName: "L",
			Email: "alice@example.com", Password: "correct horse battery staple"}, bearer(admin))
		if err != nil || created.JSON201 == nil {
			t.Fatalf("create: %v %s", err, created.Body)
		}
		if created.JSON201.EmailVerified || created.JSON201.EmailVerifiedAt != nil {
			t.Fatalf("a new user is verified: %+v", created.JSON201)
		}
		e.mustRound(t)
		tok := sinkLinkToken(t, sink.To("alice@example.com"), 1)

		tampered := e.confirm(t, altered(tok))
		wantError(t, "tampered", tampered.StatusCode(), tampered.Body, http.StatusBadRequest, "email_token_invalid")
		ok := e.confirm(t, tok)
		if ok.JSON200 == nil || ok.JSON200.Email != "alice@example.com" || ok.JSON200.Changed {
			t.Fatalf("confirm: %d %s", ok.StatusCode(), ok.Body)
		}
		again := e.confirm(t, tok)
		wantError(t, "reused", again.StatusCode(), again.Body, http.StatusBadRequest, "email_token_invalid")
		u, err := e.store.UserByUsername(ctx, "alice")
		if err != nil || !u.EmailVerified || u.EmailVerifiedAt == nil || !u.EmailVerifiedAt.Equal(e.clock.Now()) {
			t.Fatalf("after confirm: %+v, %v", u, err)
		}
		got, err := e.client.GetUserWithResponse(ctx, u.ID, bearer(admin))
		if err != nil || got.JSON200 == nil || !got.JSON200.EmailVerified {
			t.Fatalf("user page: %v %s", err, got.Body)
		}
		alice := e.mustLoginAs(t, "alice", "correct horse battery staple")
		resend, _ := e.client.ResendEmailVerificationWithResponse(ctx, bearer(alice))
		wantError(t, "resend verified", resend.StatusCode(), resend.Body, http.StatusBadRequest, "invalid")

		patch, err := e.client.PartialUpdateUserWithResponse(ctx, u.ID, client.UserPatch{Email: ptr("alice2@example.com")}, bearer(admin))
		if err != nil || patch.JSON200 == nil || patch.JSON200.EmailVerified {
			t.Fatalf("superuser's change: %v %s", err, patch.Body)
		}
		e.mustRound(t)
		tok2 := sinkLinkToken(t, sink.To("alice2@example.com"), 1)
		if told := sink.To("alice@example.com"); len(told) != 2 || !strings.Contains(told[1].Text, "alice2@example.com") {
			t.Fatalf("the old address was not told: %d messages", len(told))
		}
		e.clock.Add(24*time.Hour + time.Second)
		expired := e.confirm(t, tok2)
		wantError(t, "expired", expired.StatusCode(), expired.Body, http.StatusBadRequest, "email_token_invalid")
	})
}

// sinkLinkToken returns the token of the link of the last of msgs, which must number n.
func sinkLinkToken(t *testing.T, msgs []mailtest.Message, n int) string {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	m := linkToken.FindStringSubmatch(msgs[n-1].Text)
	if m == nil {
		t.Fatalf("no link in %q", msgs[n-1].Text)
	}
	if !strings.Contains(msgs[n-1].HTML, "#token="+m[1]) {
		t.Errorf("the HTML part lacks the link's token:\n%s", msgs[n-1].HTML)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *testEnv) mustLoginAs(t *testing.T, username, password string) string {
	t.Helper()
	resp, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username, Password: password})
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("login %s: %v %d %s", username, err, resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.Access
}

func TestParallelConfirmsOneWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		u := e.mustUser(t, "bob", regular)
		access := e.mustLogin(t, "bob").Access
		if r, _ := e.client.ResendEmailVerificationWithResponse(context.Background(), bearer(access)); r.StatusCode() != http.StatusAccepted {
			t.Fatalf("resend: %d %s", r.StatusCode(), r.Body)
		}
		tok := mustLinkToken(t, e.mailOut(t), "verify_email", u.Email)
		const n = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes []int
		)
		for range n {
			wg.Go(func() {
				r := e.confirm(t, tok)
				mu.Lock()
				codes = append(codes, r.StatusCode())
				mu.Unlock()
			})
		}
		wg.Wait()
		if won := slices.Index(codes, http.StatusOK); won < 0 || len(slices.DeleteFunc(slices.Clone(codes), func(c int) bool { return c != http.StatusOK })) != 1 {
			t.Fatalf("statuses %v: want exactly one 200", codes)
		}
		for _, c := range codes {
			if c != http.StatusOK && c != http.StatusBadRequest {
				t.Fatalf("statuses %v: want 200 or 400", codes)
			}
		}
	})
}

func TestEmailChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		admin := e.mustLogin(t, "root").Access
		u := e.mustUser(t, "carol", regular)
		access := e.mustLogin(t, "carol").Access

		wrong, _ := e.client.ChangeEmailWithResponse(ctx, client.EmailChange{Email: "new@example.org", Password: "nope"}, bearer(access))
		wantError(t, "wrong password", wrong.StatusCode(), wrong.Body, http.StatusBadRequest, "invalid")
		if len(e.mailOut(t)) != 0 {
			t.Fatal("a refused change sent mail")
		}
		req, _ := e.client.ChangeEmailWithResponse(ctx, client.EmailChange{Email: "new@example.org", Password: demoPassword}, bearer(access))
		if req.JSON202 == nil || req.JSON202.Email != u.Email || req.JSON202.PendingEmail == nil || *req.JSON202.PendingEmail != "new@example.org" {
			t.Fatalf("change: %d %s", req.StatusCode(), req.Body)
		}
		if a := e.account(t, access); a.PendingEmail == nil || *a.PendingEmail != "new@example.org" || a.Email != u.Email {
			t.Fatalf("account while pending: %+v", a)
		}
		tok := mustLinkToken(t, e.mailOut(t), "change_email", "new@example.org")

		// Another edit that leaves the address leaves the change; confirming makes it.
		if r, _ := e.client.PartialUpdateUserWithResponse(ctx, u.ID, client.UserPatch{FirstName: ptr("Caroline")}, bearer(admin)); r.JSON200 == nil {
			t.Fatalf("patch: %s", r.Body)
		}
		ok := e.confirm(t, tok)
		if ok.JSON200 == nil || !ok.JSON200.Changed || ok.JSON200.Email != "new@example.org" {
			t.Fatalf("confirm: %d %s", ok.StatusCode(), ok.Body)
		}
		a := e.account(t, access)
		if a.Email != "new@example.org" || !a.EmailVerified || a.PendingEmail != nil || a.FirstName != "Caroline" {
			t.Fatalf("account after: %+v", a)
		}
		if told := mailOfKind(e.mailOut(t), "email_changed", u.Email); len(told) != 1 || !strings.Contains(told[0].Text, "new@example.org") {
			t.Fatalf("the old address was not told: %v", told)
		}

		// A superuser's change of the address racing a pending change voids it.
		req, _ = e.client.ChangeEmailWithResponse(ctx, client.EmailChange{Email: "third@example.org", Password: demoPassword}, bearer(access))
		if req.StatusCode() != http.StatusAccepted {
			t.Fatalf("change: %d %s", req.StatusCode(), req.Body)
		}
		tok = mustLinkToken(t, e.mailOut(t), "change_email", "third@example.org")
		if r, _ := e.client.PartialUpdateUserWithResponse(ctx, u.ID, client.UserPatch{Email: ptr("admin-set@example.org")}, bearer(admin)); r.JSON200 == nil {
			t.Fatalf("patch: %s", r.Body)
		}
		late := e.confirm(t, tok)
		wantError(t, "change voided by an edit", late.StatusCode(), late.Body, http.StatusBadRequest, "email_token_invalid")
		if a := e.account(t, access); a.Email != "admin-set@example.org" || a.EmailVerified || a.PendingEmail != nil {
			t.Fatalf("account after the superuser's change: %+v", a)
		}
	})
}

func TestSignUp(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, e *testEnv) {
			r, _ := e.client.SignUpWithResponse(context.Background(), client.SignUp{Username: "x", Email: "x@example.com", Password: "correct horse battery staple"})
			wantError(t, "sign-up off", r.StatusCode(), r.Body, http.StatusForbidden, "signup_disabled")
			s, _ := e.client.GetSignUpSettingsWithResponse(context.Background())
			if s.JSON200 == nil || s.JSON200.Enabled {
				t.Fatalf("settings: %s", s.Body)
			}
		})
	})
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		const pw = "correct horse battery staple"
		r, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "dave", Email: "dave@example.com", Password: pw})
		if r.JSON202 == nil {
			t.Fatalf("sign-up: %d %s", r.StatusCode(), r.Body)
		}
		tok := mustLinkToken(t, e.mailOut(t), "verify_email", "dave@example.com")
		// Refused until verified, and only after the right password.
		bad, _ := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "dave", Password: "wrong password"})
		wantError(t, "wrong password", bad.StatusCode(), bad.Body, http.StatusUnauthorized, "authentication_failed")
		unverified, _ := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "dave", Password: pw})
		wantError(t, "unverified", unverified.StatusCode(), unverified.Body, http.StatusForbidden, "email_not_verified")
		if c := e.confirm(t, tok); c.JSON200 == nil {
			t.Fatalf("confirm: %s", c.Body)
		}
		e.mustLoginAs(t, "dave", pw)

		// Policy and a taken username are told; an address in use is not.
		weak, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "erin", Email: "erin@example.com", Password: "password"})
		wantError(t, "weak password", weak.StatusCode(), weak.Body, http.StatusBadRequest, "invalid_password")
		// A taken username is refused alike whether the address is fresh or in use: the order of
		// the checks must not tell an address's use.
		taken, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "DAVE", Email: "other@example.com", Password: pw})
		wantError(t, "taken username", taken.StatusCode(), taken.Body, http.StatusBadRequest, "invalid")
		takenInUse, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "DAVE", Email: "dave@EXAMPLE.com", Password: pw})
		wantError(t, "taken username, address in use", takenInUse.StatusCode(), takenInUse.Body, http.StatusBadRequest, "invalid")
		if string(taken.Body) != string(takenInUse.Body) {
			t.Fatalf("taken username answers differ: %s / %s", taken.Body, takenInUse.Body)
		}
		if h1, h2 := headerNames(taken.HTTPResponse.Header), headerNames(takenInUse.HTTPResponse.Header); !slices.Equal(h1, h2) {
			t.Fatalf("taken username headers differ: %v / %v", h1, h2)
		}
		if msgs := e.mailOut(t); len(msgs) != 0 {
			t.Fatalf("refused sign-ups mailed: %v", kinds(msgs))
		}

		fresh, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "frank", Email: "frank@example.com", Password: pw})
		existing, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "frank2", Email: "DAVE@example.com", Password: pw})
		if fresh.StatusCode() != existing.StatusCode() || string(fresh.Body) != string(existing.Body) {
			t.Fatalf("answers differ: %d %s / %d %s", fresh.StatusCode(), fresh.Body, existing.StatusCode(), existing.Body)
		}
		if h1, h2 := headerNames(fresh.HTTPResponse.Header), headerNames(existing.HTTPResponse.Header); !slices.Equal(h1, h2) {
			t.Fatalf("headers differ: %v / %v", h1, h2)
		}
		if _, err := e.store.UserByUsername(ctx, "frank2"); err == nil {
			t.Fatal("a sign-up with an address in use made an account")
		}
		msgs := e.mailOut(t)
		if len(mailOfKind(msgs, "signup_existing", "dave@example.com")) != 1 || len(mailOfKind(msgs, "verify_email", "frank@example.com")) != 1 {
			t.Fatalf("mail: %v", kinds(msgs))
		}
	}, withAddressFlows())
}

// TestUnverifiedSignUpRefusedEverySignIn: an account made by sign-up whose address is no
// longer verified (an administrator changed it) is refused by every way in, once the sign-in
// is proven: its passkey, and its password with the second factor; each refusal audited.
func TestUnverifiedSignUpRefusedEverySignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		const pw = "correct horse battery staple"
		if r, _ := e.client.SignUpWithResponse(ctx, client.SignUp{Username: "dave", Email: "dave@example.com", Password: pw}); r.JSON202 == nil {
			t.Fatalf("sign-up: %d %s", r.StatusCode(), r.Body)
		}
		if c := e.confirm(t, mustLinkToken(t, e.mailOut(t), "verify_email", "dave@example.com")); c.JSON200 == nil {
			t.Fatalf("confirm: %s", c.Body)
		}
		key := passkeytest.New(testOrigin)
		e.register(t, e.mustLoginAs(t, "dave", pw), key, "Laptop", true)
		u, err := e.store.UpdateUser(ctx, e.mustUserID(t, "dave"), func(u *store.User) error { u.Email = "dave@example.org"; return nil }, false, e.clock.Now())
		if err != nil || u.EmailVerified {
			t.Fatalf("change of address: %v verified %v", err, u.EmailVerified)
		}

		ceremony, opts := e.beginPasskey(t)
		r := e.finishPasskey(t, ceremony, mustGet(t, key, opts))
		wantError(t, "passkey login", r.StatusCode(), r.Body, http.StatusForbidden, "email_not_verified")
		login := e.login(t, "dave", pw)
		if login.JSON401 == nil || login.JSON401.Mfa == nil || login.JSON401.Mfa.Webauthn == nil {
			t.Fatalf("password login: %d %s, want a challenge", login.StatusCode(), login.Body)
		}
		a := e.answerWebAuthn(t, login.JSON401.Mfa.Challenge, mustGet(t, key, *login.JSON401.Mfa.Webauthn))
		wantError(t, "password and key", a.StatusCode(), a.Body, http.StatusForbidden, "email_not_verified")

		events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{})
		mustNoErr(t, err)
		refused := 0
		for _, ev := range events {
			if ev.Action == string(audit.LoginEmailUnverified) && ev.TargetID == u.ID {
				refused++
			}
		}
		if refused != 2 {
			t.Errorf("%d login.email_unverified events, want 2", refused)
		}
	}, withAddressFlows())
}

// headerNames are the names of h, but those whose value differs per answer by nature.
func headerNames(h http.Header) []string {
	var out []string
	for k := range h {
		if k != "Date" && k != "X-Request-Id" {
			out = append(out, k+"="+strings.Join(h[k], ","))
		}
	}
	slices.Sort(out)
	return out
}

func TestAddressMailLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		const pw = "correct horse battery staple"
		signUp := func(name string) *client.SignUpResponse {
			r, err := e.client.SignUpWithResponse(ctx, client.SignUp{Username: name, Email: name + "@example.com", Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		for _, name := range []string{"u1", "u2", "u3"} {
			if r := signUp(name); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("sign-up %s: %d %s", name, r.StatusCode(), r.Body)
			}
		}
		r := signUp("u4")
		er := wantError(t, "per IP", r.StatusCode(), r.Body, http.StatusTooManyRequests, "mail_rate_limited")
		if er.Reason == nil || *er.Reason != client.ErrorReasonIP || r.HTTPResponse.Header.Get("Retry-After") != "3600" {
			t.Fatalf("reason %v, Retry-After %q", er.Reason, r.HTTPResponse.Header.Get("Retry-After"))
		}
		if want := "Too many requests for mail from this IP address. Try again in 3600 seconds."; er.Detail != want {
			t.Fatalf("detail %q, want %q", er.Detail, want)
		}
		if _, err := e.store.UserByUsername(ctx, "u4"); err == nil {
			t.Fatal("a refused sign-up made an account")
		}
		e.clock.Add(time.Hour) // the window moves on
		if r := signUp("u4"); r.StatusCode() != http.StatusAccepted {
			t.Fatalf("after the window: %d %s", r.StatusCode(), r.Body)
		}

		// Per account: a verification link asked for again and again.
		e.clock.Add(time.Hour)
		e.mustUser(t, "gina", regular)
		access := e.mustLogin(t, "gina").Access
		for range 2 {
			if r, _ := e.client.ResendEmailVerificationWithResponse(ctx, bearer(access)); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("resend: %d %s", r.StatusCode(), r.Body)
			}
		}
		r2, _ := e.client.ResendEmailVerificationWithResponse(ctx, bearer(access))
		er = wantError(t, "per account", r2.StatusCode(), r2.Body, http.StatusTooManyRequests, "mail_rate_limited")
		if er.Reason == nil || *er.Reason != client.ErrorReasonAccount {
			t.Fatalf("reason %v", er.Reason)
		}
		// Only the last link works: each voids the ones before.
		msgs := mailOfKind(e.mailOut(t), "verify_email", "gina@example.com")
		if len(msgs) != 2 {
			t.Fatalf("%d links", len(msgs))
		}
		first := mustLinkToken(t, msgs[:1], "verify_email", "gina@example.com")
		last := mustLinkToken(t, msgs[1:], "verify_email", "gina@example.com")
		if c := e.confirm(t, first); c.StatusCode() != http.StatusBadRequest {
			t.Fatalf("an earlier link: %d %s", c.StatusCode(), c.Body)
		}
		if c := e.confirm(t, last); c.StatusCode() != http.StatusOK {
			t.Fatalf("the last link: %d %s", c.StatusCode(), c.Body)
		}
	}, withAddressFlows(func(c *server.Config) {
		c.Verification.PerIP, c.Verification.PerAccount, c.Verification.PerDomain = 3, 2, 100
	}))
}

// TestSignUpNoticeBounded: sign-ups with one account's address, again and again, mail its
// owner no more notices in the window than the per-account limit, silently (every answer the
// same 202), and leave the owner's own allowance whole.
func TestSignUpNoticeBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ida := e.mustUser(t, "ida", regular)
		var first []byte
		signUp := func(name string) {
			t.Helper()
			r, err := e.client.SignUpWithResponse(ctx, client.SignUp{Username: name, Email: "IDA@example.com", Password: "correct horse battery staple"})
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = r.Body
			}
			if r.StatusCode() != http.StatusAccepted || string(r.Body) != string(first) {
				t.Fatalf("sign-up %s: %d %s, want 202 %s", name, r.StatusCode(), r.Body, first)
			}
		}
		notices := func() int { return len(mailOfKind(e.mailOut(t), "signup_existing", ida.Email)) }
		for _, name := range []string{"x1", "x2", "x3", "x4"} {
			signUp(name)
		}
		if n := notices(); n != 2 {
			t.Fatalf("%d notices to the owner, want 2 (the per-account limit)", n)
		}
		access := e.mustLogin(t, "ida").Access
		for range 2 {
			if r, _ := e.client.ResendEmailVerificationWithResponse(ctx, bearer(access)); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("the owner's own resend: %d %s", r.StatusCode(), r.Body)
			}
		}
		e.clock.Add(time.Hour) // the window moves on
		signUp("x5")
		if n := notices(); n != 1 {
			t.Fatalf("%d notices after the window, want 1", n)
		}
	}, withAddressFlows(func(c *server.Config) {
		c.Verification.PerIP, c.Verification.PerAccount, c.Verification.PerDomain = 100, 2, 100
	}))
}

func TestNewDeviceNotice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		u := e.mustUser(t, "hana", regular)
		login := func(ua string) int {
			r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "hana", Password: demoPassword},
				func(_ context.Context, req *http.Request) error { req.Header.Set("User-Agent", ua); return nil })
			if err != nil {
				t.Error(err)
				return 0
			}
			return r.StatusCode()
		}
		notices := func() []store.MailMessage { return mailOfKind(e.mailOut(t), "new_device_login", u.Email) }
		login("Browser/1") // the first device: recorded, nothing sent
		login("Browser/1")
		if n := notices(); len(n) != 0 {
			t.Fatalf("%d notices for the first device", len(n))
		}
		// Eight logins at once from one new device: one notice.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if c := login("Browser/2"); c != http.StatusOK {
					t.Errorf("login: %d", c)
				}
			})
		}
		wg.Wait()
		n := notices()
		if len(n) != 1 {
			t.Fatalf("%d notices for one new device, want 1", len(n))
		}
		for _, want := range []string{"Browser/2", "127.0.0.1", e.clock.Now().Format("2006-01-02 15:04:05")} {
			if !strings.Contains(n[0].Text, want) {
				t.Fatalf("the notice lacks %q: %s", want, n[0].Text)
			}
		}
		login("Browser/2")
		if n := notices(); len(n) != 0 {
			t.Fatalf("%d notices for a known device", len(n))
		}
	}, withAddressFlows(func(c *server.Config) { c.LoginFailuresPerAccount = 100 }))
}
