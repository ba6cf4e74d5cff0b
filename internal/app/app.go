// Package app assembles a running authapi from its parts: the store, the signing-key ring,
// the auth cache, the API server, the Shared Signals transmitter, and the background work that
// keeps them current (key reloads, the cache's change feed, the flush of expired rows, the
// push of security events). serve and the tests build it the same way, through Start.
package app

import (
	"context"
	"log/slog"
	"slices"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Config is what Start assembles.
type Config struct {
	DSN string        // the database (see store.Open)
	DB  store.Options // its connections
	// Server configures the API; Start sets its Keys, Cache, Issuer and SecretKey.
	Server server.Config
	Token  token.Config    // the tokens' issuer, previous issuers, audience (and clock)
	Keys   keyring.Options // the signing keys
	// Cache configures the auth cache; CacheOff serves without one.
	Cache    authcache.Config
	CacheOff bool
	Flush    Flush // the periodic deletion of expired rows; a zero Interval turns it off
	Hasher   *password.Hasher
	// Init runs once the schema is up to date, before the signing keys load, in the
	// store's init lock (processes starting at once take turns): serve's first superuser.
	Init func(ctx context.Context, st *store.Store) error
	// SSF configures the Shared Signals transmitter; Start sets its Issuer (the token
	// issuer), and its Logger, Metrics and clock when unset.
	SSF ssf.Config
	// Mail configures the mail flows (the outbox, SMTP or the development sink, password
	// reset).
	Mail    Mail
	Logger  *slog.Logger     // nil discards
	Metrics *metrics.Metrics // nil measures nothing
}

// App is an assembled authapi. Close it to stop its background work and close its store.
type App struct {
	Server *server.Server
	Store  *store.Store
	Keys   *keyring.Ring
	Cache  *authcache.Cache // nil with Config.CacheOff
	// Outbox delivers the mail outbox; with Config.Mail.Manual the caller runs its rounds.
	Outbox *mail.Outbox

	stops []func()
}

// Start opens the store, migrates it, runs cfg.Init, loads (or creates) the signing keys and
// builds the server, with its background work running until Close or until bg ends. ctx
// bounds the start only.
func Start(ctx, bg context.Context, cfg Config) (*App, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := store.OpenWithOptions(cfg.DSN, cfg.DB)
	if err != nil {
		return nil, err
	}
	a := &App{Store: st}
	if err := a.start(ctx, bg, cfg, log); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) start(ctx, bg context.Context, cfg Config, log *slog.Logger) error {
	st := a.Store
	for _, msg := range st.Warnings() {
		log.Warn("database file permissions: " + msg)
	}
	// Processes starting at once on an empty database take turns: one migrates and creates
	// the first superuser and signing key, the others find them.
	err := st.Init(ctx, func(ctx context.Context) error {
		if cfg.Init != nil {
			if err := cfg.Init(ctx, st); err != nil {
				return err
			}
		}
		var err error
		a.Keys, err = keyring.New(ctx, st, cfg.Token, cfg.Keys)
		return err
	})
	if err != nil {
		return err
	}
	for _, c := range st.RekeyCollisions() {
		log.Warn("migration 00009: " + c.String())
	}
	a.background(bg, a.Keys.Run)
	cfg.Metrics.WatchKeyRing(keyRingState(a.Keys))
	cfg.Metrics.WatchDBPools(st.PoolStats)
	if !cfg.CacheOff {
		if cfg.Cache.Logger == nil {
			cfg.Cache.Logger = log
		}
		a.Cache = authcache.New(cfg.Cache, st, a.Keys.Manager())
		a.background(bg, a.Cache.Run)
	}
	if cfg.Flush.Interval > 0 {
		a.background(bg, func(ctx context.Context) { cfg.Flush.run(ctx, st, log) })
	}
	srvCfg := cfg.Server
	srvCfg.Keys, srvCfg.Cache, srvCfg.Issuer = a.Keys, a.Cache, cfg.Token.Issuer
	srvCfg.SecretKey = cfg.Keys.Secret // seals TOTP secrets as it does the signing keys
	srvCfg.SSF = a.startSSF(bg, cfg, log)
	if srvCfg.Recovery, err = a.startMail(ctx, bg, cfg, &srvCfg.Verification, log); err != nil {
		return err
	}
	if srvCfg.Logger == nil {
		srvCfg.Logger = log
	}
	a.Server, err = server.New(srvCfg, st, cfg.Hasher)
	return err
}

// Close stops the background work, last started first, then closes the store.
func (a *App) Close() error {
	for _, stop := range slices.Backward(a.stops) {
		stop()
	}
	a.stops = nil
	return a.Store.Close()
}

// background runs run in its own goroutine until Close, which waits for it to return, so that
// what it uses (the store) can be closed after it.
func (a *App) background(ctx context.Context, run func(context.Context)) {
	a.stops = append(a.stops, RunInBackground(ctx, run))
}

// RunInBackground runs run in its own goroutine until the returned stop is called; stop
// waits for run to return.
func RunInBackground(ctx context.Context, run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// keyRingState reads the ring's state for metrics.
func keyRingState(ring *keyring.Ring) func() metrics.KeyRingState {
	return func() metrics.KeyRingState {
		s := ring.Status()
		return metrics.KeyRingState{
			Loaded: s.Loaded, Pending: !s.NextSignsFrom.IsZero(), NextSignsIn: s.NextSignsFrom.Sub(s.Now), LastReload: s.LastReload,
		}
	}
}
