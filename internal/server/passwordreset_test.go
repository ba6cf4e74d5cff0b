package server_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/mail/mailtest"
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
