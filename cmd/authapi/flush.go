package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
)

// retentions are how long the flush job keeps what it deletes.
type retentions struct {
	revokedSessions time.Duration // revoked sessions
	loginFailures   time.Duration // login failures (the throttle's window)
	auditEvents     time.Duration // audit events; 0 keeps them all
}

// flushed counts what one flush deleted.
type flushed struct {
	store.Flushed
	AuditEvents int64
}

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
// expired and long-revoked sessions, their refresh tokens, old login failures and audit
// events past their retention.
func flushExpiredTokens(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	var keep retentions
	f := newFlags("flushexpiredtokens", getenv, stderr)
	f.db(&db)
	f.duration(&keep.revokedSessions, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", 24*time.Hour, "how long revoked sessions are kept")
	f.duration(&keep.loginFailures, "login-failure-window", "AUTHAPI_LOGIN_FAILURE_WINDOW", 15*time.Minute, "login failures older than this are deleted")
	auditRetentionFlag(f, &keep.auditEvents)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := checkAuditRetention(keep.auditEvents); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := flush(ctx, st, time.Now(), keep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Deleted %d sessions and %d login failures.\n", n.Sessions, n.LoginFailures)
	fmt.Fprintf(stdout, "Deleted %d audit events.\n", n.AuditEvents)
	return nil
}

func flush(ctx context.Context, st *store.Store, now time.Time, keep retentions) (flushed, error) {
	var out flushed
	var err error
	if out.Flushed, err = st.FlushExpired(ctx, now, now.Add(-keep.revokedSessions), now.Add(-keep.loginFailures)); err != nil {
		return out, err
	}
	out.AuditEvents, err = audit.Prune(ctx, st, now, keep.auditEvents)
	return out, err
}

// runFlush runs flushPeriodically until the returned stop is called.
func runFlush(ctx context.Context, st *store.Store, log *slog.Logger, interval time.Duration, keep retentions) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		flushPeriodically(ctx, st, log, interval, keep)
	}()
	return func() {
		cancel()
		<-done
	}
}

// flushPeriodically runs flush every interval until ctx ends.
func flushPeriodically(ctx context.Context, st *store.Store, log *slog.Logger, interval time.Duration, keep retentions) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n, err := flush(ctx, st, now, keep)
			if err != nil {
				log.Error("flush expired sessions", "err", err)
				continue
			}
			log.Info("flushed expired sessions", "sessions", n.Sessions, "login_failures", n.LoginFailures, "audit_events", n.AuditEvents)
		}
	}
}
