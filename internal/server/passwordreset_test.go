package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/mail/mailtest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

const newPassword = "a brand new passphrase 7"

// withSink sends the env's mail through SMTP to sink, with the reset limits given (or the
// defaults with nil).
func withSink(sink *mailtest.Sink, fns ...func(*app.Mail)) envOption {
	return withMail(append([]func(*app.Mail){func(m *app.Mail) {
		m.SMTP = mail.SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: mail.TLSNone, Timeout: 10 * time.Second}
		m.From = "Auth <auth@example.com>"
	}}, fns...)...)
}

// mustRound runs one round of the outbox and returns what it did.
func (e *testEnv) mustRound(t *testing.T) {
	t.Helper()
	if _, err := e.outbox.Round(context.Background()); err != nil {
		t.Fatalf("outbox round: %v", err)
	}
}

// mustRequestReset asks for a reset of login and wants 202.
func (e *testEnv) mustRequestReset(t *testing.T, login string) {
	t.Helper()
	resp, err := e.client.RequestPasswordResetWithResponse(context.Background(), client.PasswordResetRequest{Login: login})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusAccepted || resp.JSON202 == nil {
		t.Fatalf("request reset of %q: status %d, body %s", login, resp.StatusCode(), resp.Body)
	}
}

// confirmReset sets password with tok and returns the response.
func (e *testEnv) confirmReset(t *testing.T, tok, password string) *client.ConfirmPasswordResetResponse {
	t.Helper()
	resp, err := e.client.ConfirmPasswordResetWithResponse(context.Background(), client.PasswordResetConfirm{Token: tok, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var resetLink = regexp.MustCompile(`(https?://\S+/reset-password)#token=([A-Za-z0-9_-]+)`)

// resetToken returns the link base and the token of a reset message.
func resetToken(t *testing.T, m mailtest.Message) (link, tok string) {
	t.Helper()
	got := resetLink.FindStringSubmatch(m.Text)
	if got == nil {
		t.Fatalf("no reset link in the message:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, "#token="+got[2]) {
		t.Errorf("the HTML part lacks the link's token:\n%s", m.HTML)
	}
	return got[1], got[2]
}

// TestPasswordResetEndToEnd: a request by username and one by email address each bring one
// link through SMTP; the link sets a new password once, ends every session, forgets the known
// IPs, notifies the user and is audited; the old password and the used link stop working.
func TestPasswordResetEndToEnd(t *testing.T) {
	forEachSink(t, nil, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		alice := e.mustUser(t, "alice", staffRole)
		pair := e.mustLogin(t, "alice")

		e.mustRequestReset(t, "ALICE")
		if n := len(sink.Messages()); n != 0 {
			t.Fatalf("%d messages before the outbox ran: the request must not send", n)
		}
		e.mustRound(t)
		msgs := sink.To(alice.Email)
		if len(msgs) != 1 {
			t.Fatalf("got %d messages to %s, want 1", len(msgs), alice.Email)
		}
		m := msgs[0]
		if m.Subject == "" || !strings.Contains(m.Text, "alice") || m.MessageID == "" || !strings.HasSuffix(m.MessageID, "@example.com") {
			t.Errorf("message: subject %q, Message-ID %q, text:\n%s", m.Subject, m.MessageID, m.Text)
		}
		link, tok := resetToken(t, m)
		if want := testIssuer + "/admin/reset-password"; link != want {
			t.Errorf("link %q, want %q", link, want)
		}
		// The token is stored only as its HMAC.
		if _, err := e.store.EmailTokenByHash(ctx, tok, store.PurposePasswordReset); !errors.Is(err, store.ErrEmailTokenInvalid) {
			t.Errorf("the token itself is a stored hash: %v", err)
		}

		resp := e.confirmReset(t, tok, newPassword)
		if resp.StatusCode() != http.StatusNoContent {
			t.Fatalf("confirm: status %d, body %s", resp.StatusCode(), resp.Body)
		}
		// Every session ended: the old refresh token is refused.
		rr, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
		if err != nil {
			t.Fatal(err)
		}
		if rr.StatusCode() != http.StatusUnauthorized {
			t.Errorf("refresh after reset: status %d, want 401", rr.StatusCode())
		}
		// The old password fails, the new one works.
		lr, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
		if err != nil {
			t.Fatal(err)
		}
		if lr.StatusCode() != http.StatusUnauthorized {
			t.Errorf("old password: status %d, want 401", lr.StatusCode())
		}
		lr, err = e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: newPassword})
		if err != nil {
			t.Fatal(err)
		}
		if lr.JSON200 == nil {
			t.Errorf("new password: status %d, body %s", lr.StatusCode(), lr.Body)
		}
		// Used once: again is refused.
		again := e.confirmReset(t, tok, "yet another passphrase 8")
		wantError(t, "reuse", again.StatusCode(), again.Body, http.StatusBadRequest, string(client.ErrorCodeEmailTokenInvalid))

		// The user hears of the change.
		e.mustRound(t)
		msgs = sink.To(alice.Email)
		if len(msgs) != 2 || !strings.Contains(msgs[1].Subject, "changed") {
			t.Fatalf("after the reset: %d messages, want the notice second", len(msgs))
		}

		// By email address, ignoring case: a second link.
		e.mustRequestReset(t, "Alice@Example.COM")
		e.mustRound(t)
		if msgs = sink.To(alice.Email); len(msgs) != 3 || !strings.Contains(msgs[2].Text, "#token=") {
			t.Fatalf("request by email: %d messages", len(msgs))
		}

		// Audited: the link sent, the reset, the messages.
		events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{UserID: alice.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, ev := range events {
			actions = append(actions, ev.Action)
		}
		for _, want := range []string{"password.reset_requested", "password.reset", "mail.sent"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit actions %v lack %s", actions, want)
			}
		}
	})
}

// forEachSink runs fn on each backend with a new SMTP sink that the env sends to, and the
// mail settings changed by mailOpts.
func forEachSink(t *testing.T, mailOpts []func(*app.Mail), fn func(t *testing.T, e *testEnv, sink *mailtest.Sink), opts ...envOption) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			sink := mailtest.Start(t)
			fn(t, newTestEnv(t, backend, append(opts, withSink(sink, mailOpts...))...), sink)
		})
	}
}

// mustResetLink requests a reset of login, runs the outbox and returns the token of the
// newest link sent to address.
func (e *testEnv) mustResetLink(t *testing.T, sink *mailtest.Sink, login, address string) string {
	t.Helper()
	e.mustRequestReset(t, login)
	e.mustRound(t)
	msgs := sink.To(address)
	if len(msgs) == 0 {
		t.Fatalf("no message to %s", address)
	}
	_, tok := resetToken(t, msgs[len(msgs)-1])
	return tok
}

// TestPasswordResetTokenRefused: a link past its lifetime, an altered token, an unknown one,
// and a token whose user was deactivated are refused alike; a password the policy refuses
// leaves the token usable.
func TestPasswordResetTokenRefused(t *testing.T) {
	forEachSink(t, nil, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		refused := func(what, tok string) {
			t.Helper()
			r := e.confirmReset(t, tok, newPassword)
			wantError(t, what, r.StatusCode(), r.Body, http.StatusBadRequest, string(client.ErrorCodeEmailTokenInvalid))
		}
		bob := e.mustUser(t, "bob", regular)
		tok := e.mustResetLink(t, sink, "bob", bob.Email)
		refused("unknown", mail.NewToken())
		refused("altered", altered(tok))
		refused("truncated", tok[:len(tok)-1])
		// The policy's refusal keeps the token.
		r := e.confirmReset(t, tok, "bob")
		wantError(t, "weak", r.StatusCode(), r.Body, http.StatusBadRequest, string(client.ErrorCodeInvalidPassword))
		// Expired: 30 minutes by default.
		e.clock.Add(30*time.Minute + time.Second)
		refused("expired", tok)

		// A fresh link of a user deactivated meanwhile.
		tok = e.mustResetLink(t, sink, "bob", bob.Email)
		if _, err := e.store.UpdateUser(ctx, bob.ID, deactivate, true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		refused("inactive user", tok)
		// An inactive user is sent no link.
		n := len(sink.To(bob.Email))
		e.mustRequestReset(t, "bob")
		e.mustRound(t)
		if got := len(sink.To(bob.Email)); got != n {
			t.Errorf("an inactive user got a link")
		}
	})
}

// TestPasswordResetConfirmRace: two confirmations of one token at once, on two instances of
// one database: one sets its password, the other is refused.
func TestPasswordResetConfirmRace(t *testing.T) {
	forEachSink(t, nil, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		other := newTestEnv(t, e.backend, withDSN(e.dsn), withSink(sink))
		carol := e.mustUser(t, "carol", regular)
		for round := range 5 {
			tok := e.mustResetLink(t, sink, "carol", carol.Email)
			var wg sync.WaitGroup
			codes := make([]int, 2)
			passwords := []string{"first racing passphrase " + fmt.Sprint(round), "second racing passphrase " + fmt.Sprint(round)}
			for i, env := range []*testEnv{e, other} {
				wg.Go(func() { codes[i] = env.confirmReset(t, tok, passwords[i]).StatusCode() })
			}
			wg.Wait()
			slices.Sort(codes)
			if codes[0] != http.StatusNoContent || codes[1] != http.StatusBadRequest {
				t.Fatalf("round %d: statuses %v, want one 204 and one 400", round, codes)
			}
			e.clock.Add(time.Hour) // out of the per-account window
			other.clock.Add(time.Hour)
		}
	})
}

// TestPasswordResetEnumeration: a request for an account and one for nobody get the same
// status, body and headers, leave the same rows (one request, no token, no message: the
// account is looked up only by the outbox, later), and take the same time (medians of many
// interleaved tries, within a bound no scheduler can cross: the work is the same).
func TestPasswordResetEnumeration(t *testing.T) {
	noLimits := func(m *app.Mail) { m.Reset.PerIP, m.Reset.PerDomain, m.Reset.PerAccount = -1, -1, -1 }
	forEachSink(t, []func(*app.Mail){noLimits}, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		e.mustUser(t, "dave", regular)
		request := func(login string) (time.Duration, *http.Response, []byte) {
			start := time.Now()
			resp, body := e.do(t, http.MethodPost, "/api/v1/auth/password/reset/", "application/json", `{"login":"`+login+`"}`)
			return time.Since(start), resp, body
		}
		pending := func() int64 {
			n, err := e.store.PendingResetRequests(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		stateAfter := func(login string) (int, []byte, http.Header, int64, int) {
			before := pending()
			_, resp, body := request(login)
			h := resp.Header.Clone()
			h.Del("Date")
			h.Del("X-Request-Id")
			q, err := e.store.MailQueueStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, body, h, pending() - before, int(q.Pending)
		}
		for _, pair := range [][2]string{{"dave", "nobody"}, {"dave@example.com", "nobody@example.com"}} {
			s1, b1, h1, p1, q1 := stateAfter(pair[0])
			s2, b2, h2, p2, q2 := stateAfter(pair[1])
			if s1 != http.StatusAccepted || s1 != s2 || string(b1) != string(b2) || !reflect.DeepEqual(h1, h2) {
				t.Fatalf("%q vs %q: status %d/%d, body %s / %s, headers %v / %v", pair[0], pair[1], s1, s2, b1, b2, h1, h2)
			}
			if p1 != 1 || p2 != 1 || q1 != 0 || q2 != 0 {
				t.Fatalf("%q vs %q: %d/%d request rows, %d/%d messages queued before the outbox ran: want 1/1 and 0/0",
					pair[0], pair[1], p1, p2, q1, q2)
			}
		}
		const tries = 41
		var known, unknown []time.Duration
		for i := range 2 * tries {
			if i%2 == 0 {
				d, _, _ := request("dave")
				known = append(known, d)
			} else {
				d, _, _ := request("nobody")
				unknown = append(unknown, d)
			}
		}
		mk, mu := median(known), median(unknown)
		t.Logf("median answer: account %v, no account %v", mk, mu)
		if diff := (mk - mu).Abs(); diff > 5*time.Millisecond+max(mk, mu)/2 {
			t.Errorf("medians differ by %v: account %v, no account %v", diff, mk, mu)
		}
		// Resolved later, the account's requests send links (one per request: no limit here).
		e.mustRound(t)
		if n := len(sink.To("dave@example.com")); n != 2+tries {
			t.Errorf("%d links sent to dave, want %d", n, 2+tries)
		}
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestPasswordResetLimits: requests from one IP and for one domain beyond their limits get 429
// with Retry-After and the reason; the per-account limit sends no more links but answers 202.
func TestPasswordResetLimits(t *testing.T) {
	limits := func(m *app.Mail) { m.Reset.PerIP, m.Reset.PerDomain, m.Reset.PerAccount = 3, 4, 2 }
	proxies := withConfig(func(c *server.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	forEachSink(t, []func(*app.Mail){limits}, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		erin := e.mustUser(t, "erin", regular)
		from := func(ip string) client.RequestEditorFn {
			return func(_ context.Context, req *http.Request) error {
				req.Header.Set("X-Forwarded-For", ip)
				return nil
			}
		}
		ask := func(login, ip string) *client.RequestPasswordResetResponse {
			t.Helper()
			r, err := e.client.RequestPasswordResetWithResponse(ctx, client.PasswordResetRequest{Login: login}, from(ip))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		wantLimited := func(r *client.RequestPasswordResetResponse, reason client.ErrorReason, wantRetry int) {
			t.Helper()
			got := wantError(t, "limited", r.StatusCode(), r.Body, http.StatusTooManyRequests, string(client.ErrorCodeMailRateLimited))
			if got.Reason == nil || *got.Reason != reason {
				t.Errorf("reason %v, want %s", got.Reason, reason)
			}
			if ra := r.HTTPResponse.Header.Get("Retry-After"); ra != fmt.Sprint(wantRetry) {
				t.Errorf("Retry-After %q, want %d", ra, wantRetry)
			}
		}
		// Per IP: 3 in the hour, whatever the login.
		for i := range 3 {
			if r := ask(fmt.Sprintf("someone%d", i), "198.51.100.1"); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("request %d: %d", i, r.StatusCode())
			}
			e.clock.Add(time.Minute)
		}
		wantLimited(ask("someone", "198.51.100.1"), client.ErrorReasonIP, int((time.Hour - 3*time.Minute).Seconds()))
		if r := ask("someone", "198.51.100.2"); r.StatusCode() != http.StatusAccepted {
			t.Fatalf("another IP: %d", r.StatusCode())
		}
		// Per domain: 4 in the hour, from any IPs.
		for i := range 4 {
			if r := ask(fmt.Sprintf("x%d@Example.org", i), fmt.Sprintf("203.0.113.%d", i)); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("domain request %d: %d", i, r.StatusCode())
			}
		}
		wantLimited(ask("y@example.ORG", "203.0.113.200"), client.ErrorReasonRecipientDomain, int(time.Hour.Seconds()))
		// Per account: 2 links in the hour, silently.
		for i := range 4 {
			if r := ask("erin", fmt.Sprintf("192.0.2.%d", i)); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("account request %d: %d", i, r.StatusCode())
			}
		}
		e.mustRound(t)
		if n := len(sink.To(erin.Email)); n != 2 {
			t.Errorf("%d links sent to erin, want 2 (per-account limit)", n)
		}
		// The window passes: the IP may ask again.
		e.clock.Add(time.Hour)
		if r := ask("someone", "198.51.100.1"); r.StatusCode() != http.StatusAccepted {
			t.Errorf("after the window: %d", r.StatusCode())
		}
		// An IPv6 client counts by its /64: new addresses in it share one allowance.
		for i := range 3 {
			if r := ask(fmt.Sprintf("v6-%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)); r.StatusCode() != http.StatusAccepted {
				t.Fatalf("IPv6 request %d: %d", i, r.StatusCode())
			}
		}
		wantLimited(ask("v6", "2001:db8:1:2:ffff::9"), client.ErrorReasonIP, int(time.Hour.Seconds()))
		if r := ask("v6", "2001:db8:1:3::1"); r.StatusCode() != http.StatusAccepted {
			t.Errorf("another /64: %d", r.StatusCode())
		}
	}, proxies)
}
