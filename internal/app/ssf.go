package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
)

// startSSF builds the Shared Signals transmitter and runs its background work: the push
// sender with its queue maintenance, and the wake-ups of waiting polls when events are written,
// here (OnAuthChange) or, on PostgreSQL, by any instance (LISTEN on the change log's channel:
// events are written in the transactions that log changes).
func (a *App) startSSF(bg context.Context, cfg Config, log *slog.Logger) *ssf.Service {
	c := cfg.SSF
	c.Issuer = cfg.Token.Issuer
	if c.Logger == nil {
		c.Logger = log
	}
	if c.Metrics == nil {
		c.Metrics = cfg.Metrics
	}
	if c.Now == nil {
		c.Now = cfg.Token.Now
	}
	svc := ssf.New(c, a.Store, a.Keys)
	a.Store.OnAuthChange(func(int64) { svc.Notify() })
	a.background(bg, func(ctx context.Context) { listenForEvents(ctx, a.Store, svc, log) })
	a.background(bg, svc.Run)
	return svc
}

// listenForEvents wakes svc's polls at each change committed by any instance, reconnecting
// after failures, until ctx ends. Waiting polls also re-read their queue every second, so a
// lost notification delays an event by that much at most.
func listenForEvents(ctx context.Context, st *store.Store, svc *ssf.Service, log *slog.Logger) {
	for {
		err := st.ListenAuthChanges(ctx, svc.Notify)
		if errors.Is(err, store.ErrNoListen) || ctx.Err() != nil {
			return
		}
		log.Warn("SSF: listening for changes failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
