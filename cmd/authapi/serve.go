package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
)

type serveConfig struct {
	addr, db                         string
	dbOptions                        store.Options
	apiName, issuer, alg             string
	accessTTL, refreshTTL            time.Duration
	tlsCert, tlsKey                  string
	devTLS                           bool
	argonMemory, argonIter           uint
	maxHashes                        int
	hashWait                         time.Duration
	bootstrapUser, bootstrapPassword string
	keyReload                        time.Duration

	rotate                            bool
	reuseGrace, sessionMax            time.Duration
	failuresPerAccount, failuresPerIP int
	failureWindow, knownIPLifetime    time.Duration
	refreshesPerMinute                int
	trustedProxies, corsOrigins       []string
	flushInterval, revokedRetention   time.Duration
	auditRetention                    time.Duration
	debugAddr                         string
	debugAllowRemote                  bool
	metricsAddr                       string
	metricsAllowRemote                bool
	drain, shutdownTimeout            time.Duration

	cacheEntries               int
	cachePoll, cacheStaleAfter time.Duration
}

// Environment variables read by serve without a flag: secrets stay out of ps(1).
const (
	bootstrapUserEnv     = "AUTHAPI_BOOTSTRAP_USERNAME"
	bootstrapPasswordEnv = "AUTHAPI_BOOTSTRAP_PASSWORD"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	f := newFlags("serve", getenv, stderr)
	f.string(&cfg.addr, "addr", "AUTHAPI_ADDR", "127.0.0.1:8000", "address to listen on")
	f.db(&cfg.db)
	dbOptionFlags(f, &cfg.dbOptions)
	f.string(&cfg.apiName, "api-name", "AUTHAPI_API_NAME", "My Awesome API", "name in the welcome message")
	f.string(&cfg.issuer, "issuer", "AUTHAPI_ISSUER", "authapi", "iss claim of issued tokens")
	f.string(&cfg.alg, "signing-alg", "AUTHAPI_SIGNING_ALG", token.EdDSA, "algorithm of a newly created signing key: EdDSA, ES256 or RS256")
	f.duration(&cfg.accessTTL, "access-token-lifetime", "AUTHAPI_ACCESS_TOKEN_LIFETIME", 15*time.Minute, "access token lifetime")
	f.duration(&cfg.refreshTTL, "refresh-token-lifetime", "AUTHAPI_REFRESH_TOKEN_LIFETIME", time.Hour, "refresh token (and session) lifetime")
	keyReloadFlag(f, &cfg.keyReload)
	f.string(&cfg.tlsCert, "tls-cert", "AUTHAPI_TLS_CERT", "", "TLS certificate file (PEM); serve HTTPS")
	f.string(&cfg.tlsKey, "tls-key", "AUTHAPI_TLS_KEY", "", "TLS private key file (PEM)")
	f.bool(&cfg.devTLS, "dev-tls", "AUTHAPI_DEV_TLS", false, "serve HTTPS with a self-signed localhost certificate in "+devCertDir)
	p := password.DefaultParams()
	f.uint(&cfg.argonMemory, "argon2-memory", "AUTHAPI_ARGON2_MEMORY_KIB", uint(p.Memory), "argon2id memory cost in KiB")
	f.uint(&cfg.argonIter, "argon2-iterations", "AUTHAPI_ARGON2_ITERATIONS", uint(p.Iterations), "argon2id passes")
	f.int(&cfg.maxHashes, "max-concurrent-hashes", "AUTHAPI_MAX_CONCURRENT_HASHES", password.DefaultConcurrency(), "password hashes and checks run at once (each holds the argon2id memory); default 2 x GOMAXPROCS")
	f.duration(&cfg.hashWait, "hash-queue-wait", "AUTHAPI_HASH_QUEUE_WAIT", password.DefaultWait, "how long a login or password change waits for a hashing slot before 503 busy")
	f.bool(&cfg.rotate, "rotate-refresh-tokens", "AUTHAPI_ROTATE_REFRESH_TOKENS", true, "issue a new refresh token on every refresh and retire the old one")
	f.duration(&cfg.reuseGrace, "refresh-reuse-grace", "AUTHAPI_REFRESH_REUSE_GRACE", 10*time.Second, "how long a retired refresh token still gets the same new pair instead of revoking the session; 0s turns it off")
	f.duration(&cfg.sessionMax, "session-max-lifetime", "AUTHAPI_SESSION_MAX_LIFETIME", 30*24*time.Hour, "absolute session lifetime; refreshing never extends a session past it")
	f.int(&cfg.failuresPerAccount, "login-failures-per-account", "AUTHAPI_LOGIN_FAILURES_PER_ACCOUNT", 5, "failed logins per account within the window before 429; -1 turns it off")
	f.int(&cfg.failuresPerIP, "login-failures-per-ip", "AUTHAPI_LOGIN_FAILURES_PER_IP", 50, "failed logins per client IP within the window before 429; -1 turns it off")
	f.duration(&cfg.failureWindow, "login-failure-window", "AUTHAPI_LOGIN_FAILURE_WINDOW", 15*time.Minute, "window in which failed logins count")
	f.duration(&cfg.knownIPLifetime, "known-login-ip-lifetime", "AUTHAPI_KNOWN_LOGIN_IP_LIFETIME", server.DefaultKnownLoginIPLifetime, "how long after a user's last login from an IP others' failures do not lock that IP out of the account (2160h is 90 days); a password change forgets every such IP")
	f.int(&cfg.refreshesPerMinute, "refreshes-per-ip-per-minute", "AUTHAPI_REFRESHES_PER_IP_PER_MINUTE", 60, "token refreshes per client IP per minute; -1 turns it off")
	f.list(&cfg.trustedProxies, "trusted-proxies", "AUTHAPI_TRUSTED_PROXIES", "proxies (IPs or CIDRs) whose X-Forwarded-For names the client and whose X-Request-ID is kept")
	f.list(&cfg.corsOrigins, "cors-origins", "AUTHAPI_CORS_ORIGINS", "origins allowed by CORS; empty turns CORS off")
	f.duration(&cfg.flushInterval, "flush-interval", "AUTHAPI_FLUSH_INTERVAL", time.Hour, "how often expired sessions and old login failures are deleted; 0s turns it off")
	f.duration(&cfg.revokedRetention, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", 24*time.Hour, "how long revoked sessions are kept before they are deleted")
	auditRetentionFlag(f, &cfg.auditRetention)
	f.string(&cfg.debugAddr, "debug-addr", "AUTHAPI_DEBUG_ADDR", "", "address of a separate listener serving Go profiles (net/http/pprof) at /debug/pprof/, e.g. 127.0.0.1:6060; empty turns it off")
	f.bool(&cfg.debugAllowRemote, "debug-allow-remote", "AUTHAPI_DEBUG_ALLOW_REMOTE", false, "allow a --debug-addr that is not on loopback")
	f.string(&cfg.metricsAddr, "metrics-addr", "AUTHAPI_METRICS_ADDR", "", "address of a separate listener serving Prometheus metrics at /metrics, e.g. 127.0.0.1:9464; empty turns it off")
	f.bool(&cfg.metricsAllowRemote, "metrics-allow-remote", "AUTHAPI_METRICS_ALLOW_REMOTE", false, "allow a --metrics-addr that is not on loopback (metrics show traffic, login outcomes and internals: expose them to your scraper only)")
	f.duration(&cfg.drain, "shutdown-drain", "AUTHAPI_SHUTDOWN_DRAIN", 5*time.Second, "on SIGTERM or SIGINT, how long to keep serving with /readyz answering 503, so load balancers stop sending requests first; 0s turns it off")
	f.duration(&cfg.shutdownTimeout, "shutdown-timeout", "AUTHAPI_SHUTDOWN_TIMEOUT", 15*time.Second, "after the drain, how long requests in flight may take to finish before their connections are closed")
	f.int(&cfg.cacheEntries, "auth-cache-entries", "AUTHAPI_AUTH_CACHE_ENTRIES", 10_000, "verified access tokens kept with their user and session (about 1 KB each); -1 turns the cache off")
	f.duration(&cfg.cachePoll, "auth-cache-poll-interval", "AUTHAPI_AUTH_CACHE_POLL_INTERVAL", 200*time.Millisecond, "how often the change log of other instances' revocations is read")
	f.duration(&cfg.cacheStaleAfter, "auth-cache-stale-after", "AUTHAPI_AUTH_CACHE_STALE_AFTER", time.Second, "without a good read of the change log for this long, the cache is bypassed (the bound on how late another instance's revocation can be seen)")
	cfg.bootstrapUser = getenv(bootstrapUserEnv)
	cfg.bootstrapPassword = getenv(bootstrapPasswordEnv)
	if err := f.parse(args); err != nil {
		return err
	}
	if !token.ValidAlgorithm(cfg.alg) {
		return fmt.Errorf("unknown signing algorithm %q", cfg.alg)
	}
	proxies, err := parsePrefixes(cfg.trustedProxies)
	if err != nil {
		return err
	}
	if cfg.cacheEntries >= 0 && (cfg.cachePoll <= 0 || cfg.cacheStaleAfter < 2*cfg.cachePoll) {
		return errors.New("--auth-cache-poll-interval must be positive and at most half of --auth-cache-stale-after")
	}
	if err := checkAuditRetention(cfg.auditRetention); err != nil {
		return err
	}
	if cfg.knownIPLifetime <= 0 {
		return errors.New("--known-login-ip-lifetime must be positive")
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if cfg.drain < 0 || cfg.shutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-drain %v must not be negative and --shutdown-timeout %v must be positive", cfg.drain, cfg.shutdownTimeout)
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
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	keyOpts, err := keyOptions(getenv, cfg.alg, cfg.keyReload, log, cfg.accessTTL, cfg.refreshTTL)
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
	srvCfg := server.Config{
		APIName: cfg.apiName, AccessTokenLifetime: cfg.accessTTL, RefreshTokenLifetime: cfg.refreshTTL,
		RotateRefreshTokens: cfg.rotate, RefreshReuseGrace: cfg.reuseGrace, SessionMaxLifetime: cfg.sessionMax,
		LoginFailuresPerAccount: cfg.failuresPerAccount, LoginFailuresPerIP: cfg.failuresPerIP,
		LoginFailureWindow: cfg.failureWindow, KnownLoginIPLifetime: cfg.knownIPLifetime, RefreshesPerIPPerMinute: cfg.refreshesPerMinute,
		TrustedProxies: proxies, CORSOrigins: cfg.corsOrigins, Metrics: m, Logger: log,
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
	srv, st, stopWork, err := startServer(ctx, bg, cfg, srvCfg, keyOpts, hasher, m, log, stderr)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while starting", "err", err)
			return nil
		}
		return err
	}
	defer st.Close()
	defer stopWork()
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
		"console", fmt.Sprintf("%s://%s/admin/", scheme, ln.Addr()))

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

// startServer migrates the database, creates the first superuser and signing key if need
// be, and builds the API server with its background work (key reloads, the auth cache, the
// flush job) running on bg. stop ends that work.
func startServer(ctx, bg context.Context, cfg serveConfig, srvCfg server.Config, keyOpts keyring.Options,
	hasher *password.Hasher, m *metrics.Metrics, log *slog.Logger, stderr io.Writer) (*server.Server, *store.Store, func(), error) {
	st, err := store.OpenWithOptions(cfg.db, cfg.dbOptions)
	if err != nil {
		return nil, nil, nil, err
	}
	var stops []func()
	stop := func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}
	srv, err := func() (*server.Server, error) {
		for _, msg := range st.Warnings() {
			log.Warn("database file permissions: " + msg)
		}
		// Processes starting at once on an empty database take turns: one migrates and
		// creates the first superuser and signing key, the others find them.
		var ring *keyring.Ring
		err := st.Init(ctx, func(ctx context.Context) error {
			if err := bootstrap(ctx, st, hasher, cfg.bootstrapUser, cfg.bootstrapPassword, log, stderr); err != nil {
				return err
			}
			var err error
			ring, err = openKeyRing(ctx, st, token.Config{Issuer: cfg.issuer}, keyOpts)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range st.RekeyCollisions() {
			log.Warn("migration 00009: " + c.String())
		}
		if err := warnPlaintextKeys(ctx, log, st, keyOpts); err != nil {
			return nil, err
		}
		stops = append(stops, runInBackground(bg, ring.Run))
		m.WatchKeyRing(keyRingState(ring))
		m.WatchDBPools(st.PoolStats)
		if cfg.cacheEntries >= 0 {
			srvCfg.Cache = authcache.New(authcache.Config{
				MaxEntries: cfg.cacheEntries, PollInterval: cfg.cachePoll, StaleAfter: cfg.cacheStaleAfter, Logger: log,
			}, st, ring.Manager())
			stops = append(stops, runInBackground(bg, srvCfg.Cache.Run))
		}
		if cfg.flushInterval > 0 {
			stops = append(stops, runFlush(bg, st, log, cfg.flushInterval, retentions{
				revokedSessions: cfg.revokedRetention, loginFailures: cfg.failureWindow, auditEvents: cfg.auditRetention,
			}))
		}
		srvCfg.Keys = ring
		return server.New(srvCfg, st, ring.Manager(), hasher)
	}()
	if err != nil {
		stop()
		st.Close()
		return nil, nil, nil, err
	}
	return srv, st, stop, nil
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

// keyRingState reads the ring's state for metrics.
func keyRingState(ring *keyring.Ring) func() metrics.KeyRingState {
	return func() metrics.KeyRingState {
		s := ring.Status()
		return metrics.KeyRingState{
			Loaded: s.Loaded, Pending: !s.NextSignsFrom.IsZero(), NextSignsIn: s.NextSignsFrom.Sub(s.Now), LastReload: s.LastReload,
		}
	}
}

// swappableHandler serves with the handler last set: server.Starting until the API is ready.
type swappableHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swappableHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// waitDrain waits for d, or until a second SIGINT or SIGTERM says not to wait any longer.
func waitDrain(d time.Duration, log *slog.Logger) {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case sig := <-again:
		log.Info("drain cut short by a second signal", "signal", sig.String())
	}
}

// loadTLS reads the certificate to serve HTTPS with, if any: --tls-cert and --tls-key, or with
// --dev-tls a self-signed one (made if need be). Read before listening, so a bad file is
// reported at once.
func loadTLS(certFile, keyFile string, devTLS bool) (*tls.Config, error) {
	if devTLS && certFile == "" {
		var err error
		if certFile, keyFile, err = ensureDevCertificate(devCertDir, time.Now()); err != nil {
			return nil, err
		}
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}

// dbOptionFlags are serve's connection pool and SQLite durability settings; the other
// commands take the defaults.
func dbOptionFlags(f *flags, o *store.Options) {
	d := store.DefaultOptions()
	f.int(&o.MaxOpenConns, "db-max-open-conns", "AUTHAPI_DB_MAX_OPEN_CONNS", d.MaxOpenConns,
		"most open database connections: the PostgreSQL pool, or SQLite's readers (SQLite writes through one)")
	f.int(&o.MaxIdleConns, "db-max-idle-conns", "AUTHAPI_DB_MAX_IDLE_CONNS", 0,
		"database connections kept open while idle; 0 is --db-max-open-conns, -1 keeps none")
	f.duration(&o.ConnMaxLifetime, "db-conn-max-lifetime", "AUTHAPI_DB_CONN_MAX_LIFETIME", d.ConnMaxLifetime,
		"close a database connection this long after it opened; -1s never")
	f.duration(&o.ConnMaxIdleTime, "db-conn-max-idle-time", "AUTHAPI_DB_CONN_MAX_IDLE_TIME", d.ConnMaxIdleTime,
		"close a database connection idle this long; -1s never")
	f.string(&o.SQLiteSynchronous, "sqlite-synchronous", "AUTHAPI_SQLITE_SYNCHRONOUS", d.SQLiteSynchronous,
		"SQLite durability: normal (a power loss may undo the last commits) or full (sync at every commit)")
	f.string(&o.RotationCommit, "postgres-rotation-commit", "AUTHAPI_POSTGRES_ROTATION_COMMIT", d.RotationCommit,
		"PostgreSQL: sync makes a refresh-token rotation wait for its commit to reach the disk like every other write; async answers before (a database crash may undo the last)")
}

// openStore connects with the default options and brings the schema up to date.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	st, err := store.Open(dsn)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// hashLimit checks the configured bound on concurrent hashing.
func hashLimit(slots int, wait time.Duration) (password.Limit, error) {
	if slots < 1 {
		return password.Limit{}, fmt.Errorf("--max-concurrent-hashes %d: want at least 1", slots)
	}
	if wait <= 0 {
		return password.Limit{}, fmt.Errorf("--hash-queue-wait %v: want more than 0s", wait)
	}
	return password.Limit{Slots: semaphore.NewWeighted(int64(slots)), Wait: wait}, nil
}

// newHasher checks configured argon2 costs before password.NewHasher, which panics on
// costs its own Verify would refuse.
func newHasher(memory, iterations uint, limit password.Limit) (*password.Hasher, error) {
	if memory > math.MaxUint32 || iterations > math.MaxUint32 {
		return nil, fmt.Errorf("argon2 costs out of range: memory %d KiB, iterations %d", memory, iterations)
	}
	p := password.DefaultParams()
	p.Memory, p.Iterations = uint32(memory), uint32(iterations)
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("argon2 costs (--argon2-memory, --argon2-iterations): %w", err)
	}
	return password.NewHasher(p, limit), nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	f := newFlags("migrate", getenv, stderr)
	f.db(&db)
	if err := f.parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	for _, s := range states {
		fmt.Fprintf(stdout, "%05d %-8s %s\n", s.Version, map[bool]string{true: "applied", false: "pending"}[s.Applied], s.Source)
	}
	// Found again on every run (it reads every user), so that a second run checks the renames.
	collisions, err := st.UsernameCollisions(ctx)
	if err != nil {
		return err
	}
	for _, c := range collisions {
		fmt.Fprintf(stderr, "warning: %s\n", c)
	}
	return nil
}
