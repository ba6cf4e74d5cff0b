package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"authapi/store"
)

// flushExpiredTokens is the demo's cron job (simplejwt's flushexpiredtokens): it deletes
// expired and long-revoked sessions, their refresh tokens, and old login failures.
func flushExpiredTokens(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	var retention, window time.Duration
	f := newFlags("flushexpiredtokens", getenv, stderr)
	f.db(&db)
	f.duration(&retention, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", 24*time.Hour, "how long revoked sessions are kept")
	f.duration(&window, "login-failure-window", "AUTHAPI_LOGIN_FAILURE_WINDOW", 15*time.Minute, "login failures older than this are deleted")
	if err := f.parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := flush(ctx, st, time.Now(), retention, window)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Deleted %d sessions and %d login failures.\n", n.Sessions, n.LoginFailures)
	return nil
}

func flush(ctx context.Context, st *store.Store, now time.Time, retention, window time.Duration) (store.Flushed, error) {
	return st.FlushExpired(ctx, now, now.Add(-retention), now.Add(-window))
}

// flushPeriodically runs flush every interval until ctx ends.
// runFlush runs flushPeriodically until the returned stop is called.
func runFlush(ctx context.Context, st *store.Store, log *slog.Logger, interval, retention, window time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		flushPeriodically(ctx, st, log, interval, retention, window)
	}()
	return func() {
		cancel()
		<-done
	}
}

func flushPeriodically(ctx context.Context, st *store.Store, log *slog.Logger, interval, retention, window time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n, err := flush(ctx, st, now, retention, window)
			if err != nil {
				log.Error("flush expired sessions", "err", err)
				continue
			}
			log.Info("flushed expired sessions", "sessions", n.Sessions, "login_failures", n.LoginFailures)
		}
	}
}
