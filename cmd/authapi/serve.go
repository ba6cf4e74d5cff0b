package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, proxies, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	var debugLn, metricsLn net.Listener
	if cfg.debugAddr != "" {
		if debugLn, err = listenLoopback("--debug-addr", cfg.debugAddr, "--debug-allow-remote", cfg.debugAllowRemote); err != nil {
			return err
		}
		defer debugLn.Close()
	}
	if cfg.metricsAddr != "" {
		if metricsLn, err = listenLoopback("--metrics-addr", cfg.metricsAddr, "--metrics-allow-remote", cfg.metricsAllowRemote); err != nil {
			return err
		}
		defer metricsLn.Close()
	}
	logOut := newLogWriter(stdout)
	defer logOut.Flush() // last of all
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	applyMemoryLimit(cfg, getenv, log)
	logCtx, stopLog := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		logOut.run(logCtx, requestLogFlush)
	}()
	defer func() { stopLog(); <-logDone }()
	keyOpts, err := keyOptions(getenv, cfg.alg, cfg.keyReload, log, cfg.accessTTL, cfg.refreshTTL, cfg.clientTTL)
	if err != nil {
		return err
	}
	var m *metrics.Metrics
	if metricsLn != nil {
		m = metrics.New()
	}
	limit, err := hashLimit(cfg.maxHashes, cfg.hashWait)
	if err != nil {
		return err
	}
	if m != nil {
		limit.ObserveWait = m.HashWait
	}
	hasher, err := newHasher(cfg.argonMemory, cfg.argonIter, limit)
	if err != nil {
		return err
	}
	tlsConfig, err := loadTLS(cfg.tlsCert, cfg.tlsKey, cfg.devTLS)
	if err != nil {
		return err
	}

	// Listen before the slow part of starting (migrations, the first superuser's hash, the
	// keys): meanwhile /healthz answers 200 and /readyz 503, as load balancers expect.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	cfg.resolveIssuer(ln.Addr())
	srvCfg := server.Config{
		APIName: cfg.apiName, AccessTokenLifetime: cfg.accessTTL, RefreshTokenLifetime: cfg.refreshTTL, ClientTokenLifetime: cfg.clientTTL,
		StepUpMaxAge: cfg.stepUpMaxAge, RequireMFA: auth.MFAPolicy(cfg.requireMFA),
		RotateRefreshTokens: cfg.rotate, RefreshReuseGrace: cfg.reuseGrace, SessionMaxLifetime: cfg.sessionMax,
		LoginFailuresPerAccount: cfg.failuresPerAccount, LoginFailuresPerIP: cfg.failuresPerIP,
		LoginFailureWindow: cfg.failureWindow, KnownLoginIPLifetime: cfg.knownIPLifetime, RefreshesPerIPPerMinute: cfg.refreshesPerMinute,
		PasskeyBeginsPerIPPerMinute: cfg.passkeyBeginsPerMinute,
		TrustedProxies:              proxies, CORSOrigins: cfg.corsOrigins, Metrics: m, Logger: log,
		WebAuthnRPID: cfg.webauthnRPID, WebAuthnOrigins: cfg.webauthnOrigins, WebAuthnRPName: cfg.webauthnRPName,
		RequestLogger: slog.New(slog.NewJSONHandler(logOut.batched(), nil)),
		Verification:  cfg.address.verification(cfg.mail.smtp.Host != ""), RequireVerifiedEmail: cfg.address.requireVerified,
	}
	var handler swappableHandler
	handler.set(server.Starting(srvCfg))
	httpServer := &http.Server{
		Handler:           &handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var serveErr error
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		if tlsConfig != nil {
			serveErr = httpServer.ServeTLS(ln, "", "")
		} else {
			serveErr = httpServer.Serve(ln)
		}
	}()
	// However serve returns, the listener and every connection are closed first.
	defer func() {
		httpServer.Close()
		<-serveDone
	}()
	if metricsLn != nil {
		log.Info("serving metrics", "url", fmt.Sprintf("http://%s/metrics", metricsLn.Addr()))
		defer serveMetrics(metricsLn, m.Handler(), log)()
	}
	if debugLn != nil {
		log.Info("serving profiles", "url", fmt.Sprintf("http://%s/debug/pprof/", debugLn.Addr()))
		go serveDebug(ctx, debugLn, log)
	}

	// Background work runs until the server has stopped, through the drain.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	a, err := app.Start(ctx, bg, app.Config{
		DSN: cfg.db, DB: cfg.dbOptions, Server: srvCfg, Keys: keyOpts,
		Token:    token.Config{Issuer: cfg.issuer, PreviousIssuers: cfg.previousIssuers, Audience: cfg.audience},
		Cache:    authcache.Config{MaxBytes: int64(cfg.cacheMiB) << 20, MaxEntries: max(cfg.cacheEntries, 0), PollInterval: cfg.cachePoll, StaleAfter: cfg.cacheStaleAfter},
		CacheOff: cfg.cacheEntries < 0,
		Flush: app.Flush{Interval: cfg.flushInterval, RevokedSessions: cfg.revokedRetention, LoginFailures: cfg.failureWindow,
			AuditEvents: cfg.auditRetention, Mail: cfg.mail.retention, ResetRequests: cfg.mail.resetWindow,
			MailRequests: cfg.address.window},
		Mail:   cfg.mail.appMail(cfg.publicURL),
		SSF:    ssf.Config{PollWait: cfg.ssfPollWait, Retention: cfg.ssfRetention, QueueLimit: cfg.ssfQueueLimit},
		Hasher: hasher, Logger: log, Metrics: m,
		Init: func(ctx context.Context, st *store.Store) error {
			return bootstrap(ctx, st, hasher, cfg.bootstrapUser, cfg.bootstrapPassword, log, stderr)
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while starting", "err", err)
			return nil
		}
		return keyError(err)
	}
	defer a.Close()
	if err := warnPlaintextKeys(ctx, log, a.Store, keyOpts); err != nil {
		return err
	}
	if err := warnPlaintextTOTP(ctx, log, a.Store, keyOpts); err != nil {
		return err
	}
	srv := a.Server
	// Start-up left garbage larger than the working set (the hasher's dummy argon2id hash
	// alone is 19 MiB, then the spec, migrations, keys): return it to the OS now rather than
	// over the next minutes, so that a new instance's RSS is what serving needs.
	debug.FreeOSMemory()
	handler.set(srv)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	log.Info("serving", "url", fmt.Sprintf("%s://%s/api/v1/", scheme, ln.Addr()), "swagger_ui", fmt.Sprintf("%s://%s/api/v1/swagger/ui/", scheme, ln.Addr()),
		"console", fmt.Sprintf("%s://%s/admin/", scheme, ln.Addr()), "issuer", cfg.issuer)

	select {
	case <-serveDone:
		return serveErr
	case <-ctx.Done():
	}
	// Not ready at once, while still serving: load balancers take the instance out of
	// rotation before its listener closes.
	srv.Drain()
	if cfg.drain > 0 {
		log.Info("draining: /readyz answers 503", "drain", cfg.drain.String())
		waitDrain(cfg.drain, log)
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		httpServer.Close() // cut the connections before the store closes under their handlers
		return fmt.Errorf("shutdown: requests still running after %v: %w", cfg.shutdownTimeout, err)
	}
	if <-serveDone; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// bootstrap creates the first superuser on an empty database, and says so; on a database that
// has users, it says that the bootstrap variables set were ignored.
func bootstrap(ctx context.Context, st *store.Store, hasher *password.Hasher, username, plain string, log *slog.Logger, stderr io.Writer) error {
	created, generated, err := users.New(st, hasher, users.Config{}).Bootstrap(ctx, username, plain)
	if err != nil {
		return err
	}
	if !created {
		for _, v := range []struct{ env, value string }{{bootstrapUserEnv, username}, {bootstrapPasswordEnv, plain}} {
			if v.value != "" {
				log.Warn(v.env+" is set but was ignored: the database already has users, and it applies only to the first start on an empty database; unset it",
					"variable", v.env)
			}
		}
		return nil
	}
	username = cmp.Or(username, "admin")
	if generated != "" {
		// For the operator's eyes, not for log collectors: a plain line on stderr, never
		// inside a log record (even when the log is sent to stderr too).
		fmt.Fprintf(stderr, "Created the first superuser %q with the password %s (shown once: change it after logging in)\n", username, generated)
		log.Warn("created the first superuser; password printed on stderr", "username", username)
	} else {
		log.Info("created the first superuser", "username", username)
	}
	return nil
}

// swappableHandler serves with the handler last set: server.Starting until the API is ready.
type swappableHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swappableHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
