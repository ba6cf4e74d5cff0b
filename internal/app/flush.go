package app

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
)

// Flush is the periodic deletion of what has expired, and how long each kind is kept.
type Flush struct {
	Interval        time.Duration // how often; 0 never
	RevokedSessions time.Duration // revoked sessions
	LoginFailures   time.Duration // login failures (the throttle's window)
	AuditEvents     time.Duration // audit events; 0 keeps them all
	// Mail is how long a message of the outbox is kept once sent or given up (its
	// Message-ID, for a duplicate's recognition); ResetRequests how long password reset
	// requests are kept, resolved (the limits' window). Zero: the defaults.
	Mail, ResetRequests time.Duration
	// MailRequests is how long the requests for mail of the address flows are kept (their
	// limits' window); zero: an hour.
	MailRequests time.Duration
}

// Defaults of Flush.Mail and Flush.ResetRequests.
const (
	DefaultMailRetention          = 7 * 24 * time.Hour
	DefaultResetRequestsRetention = time.Hour
)

// DefaultFlush is the flush serve runs unless told otherwise, and what the flushexpiredtokens
// command keeps: its flags take their defaults from it.
func DefaultFlush() Flush {
	return Flush{
		Interval: time.Hour, RevokedSessions: 24 * time.Hour,
		LoginFailures: server.DefaultConfig().LoginFailureWindow, AuditEvents: audit.DefaultRetention,
		Mail: DefaultMailRetention, ResetRequests: DefaultResetRequestsRetention,
	}
}

// Flushed counts what one flush deleted.
type Flushed struct {
	store.Flushed
	store.MailFlushed
	AuditEvents  int64
	MailRequests int64
}

// Once deletes, at now, the expired and long-revoked sessions with their refresh tokens, the
// login failures out of the window, the audit events past their retention, the expired email
// tokens, the mail sent or given up and the password reset requests past theirs: what the
// flush job does each time, and the flushexpiredtokens command once.
func (f Flush) Once(ctx context.Context, st *store.Store, now time.Time) (Flushed, error) {
	var out Flushed
	var err error
	if out.Flushed, err = st.FlushExpired(ctx, now, now.Add(-f.RevokedSessions), now.Add(-f.LoginFailures)); err != nil {
		return out, err
	}
	if out.AuditEvents, err = audit.Prune(ctx, st, now, f.AuditEvents); err != nil {
		return out, err
	}
	out.MailFlushed, err = st.FlushMail(ctx, now, now.Add(-cmp.Or(f.Mail, DefaultMailRetention)),
		now.Add(-cmp.Or(f.ResetRequests, DefaultResetRequestsRetention)))
	if err != nil {
		return out, err
	}
	out.MailRequests, err = st.FlushMailRequests(ctx, now.Add(-cmp.Or(f.MailRequests, time.Hour)))
	return out, err
}

// run flushes every Interval until ctx ends.
func (f Flush) run(ctx context.Context, st *store.Store, log *slog.Logger) {
	tick := time.NewTicker(f.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n, err := f.Once(ctx, st, now)
			if err != nil {
				log.Error("flush expired sessions", "err", err)
				continue
			}
			log.Info("flushed expired sessions", "sessions", n.Sessions, "login_failures", n.LoginFailures, "mfa_challenges", n.MFAChallenges, "webauthn_ceremonies", n.WebAuthnCeremonies, "audit_events", n.AuditEvents,
				"mail", n.Mail, "email_tokens", n.EmailTokens, "reset_requests", n.ResetRequests, "mail_requests", n.MailRequests)
		}
	}
}
