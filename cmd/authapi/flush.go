package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/audit"
)

// auditRetentionFlag is the audit log's retention, shared by serve and flushexpiredtokens.
func auditRetentionFlag(f *flags, p *time.Duration) {
	f.duration(p, "audit-retention", "AUTHAPI_AUDIT_RETENTION", audit.DefaultRetention, "how long audit events are kept before the flush job deletes them (2160h is 90 days); 0s keeps them all")
}

func checkAuditRetention(d time.Duration) error {
	if d < 0 {
		return errors.New("--audit-retention must not be negative (0s keeps every event)")
	}
	return nil
}

// flushExpiredTokens is the demo's cron job (simplejwt's flushexpiredtokens): it deletes
// expired and long-revoked sessions, their refresh tokens, old login failures, expired
// challenges and ceremonies, audit events past their retention, and the mail flows' spent
// rows.
func flushExpiredTokens(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	var keep app.Flush
	f := newFlags("flushexpiredtokens", getenv, stderr)
	f.db(&db)
	f.duration(&keep.RevokedSessions, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", app.DefaultFlush().RevokedSessions, "how long revoked sessions are kept")
	f.duration(&keep.LoginFailures, "login-failure-window", "AUTHAPI_LOGIN_FAILURE_WINDOW", app.DefaultFlush().LoginFailures, "login failures older than this are deleted")
	auditRetentionFlag(f, &keep.AuditEvents)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := checkAuditRetention(keep.AuditEvents); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := keep.Once(ctx, st, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Deleted %d sessions, %d login failures, %d unanswered second-factor challenges and %d unfinished WebAuthn ceremonies.\n",
		n.Sessions, n.LoginFailures, n.MFAChallenges, n.WebAuthnCeremonies)
	fmt.Fprintf(stdout, "Deleted %d audit events.\n", n.AuditEvents)
	fmt.Fprintf(stdout, "Deleted %d sent or abandoned messages, %d expired email links, %d password reset requests and %d other mail requests.\n",
		n.Mail, n.EmailTokens, n.ResetRequests, n.MailRequests)
	return nil
}
