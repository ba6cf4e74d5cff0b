package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"golang.org/x/sync/semaphore"

	"authapi/authcache"
	"authapi/keyring"
	"authapi/password"
	"authapi/server"
	"authapi/store"
	"authapi/token"
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
	failureWindow                     time.Duration
	refreshesPerMinute                int
	trustedProxies, corsOrigins       []string
	flushInterval, revokedRetention   time.Duration
	debugAddr                         string
	debugAllowRemote                  bool

	cacheEntries               int
	cachePoll, cacheStaleAfter time.Duration
}

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
	f.int(&cfg.refreshesPerMinute, "refreshes-per-ip-per-minute", "AUTHAPI_REFRESHES_PER_IP_PER_MINUTE", 60, "token refreshes per client IP per minute; -1 turns it off")
	f.list(&cfg.trustedProxies, "trusted-proxies", "AUTHAPI_TRUSTED_PROXIES", "proxies (IPs or CIDRs) whose X-Forwarded-For names the client")
	f.list(&cfg.corsOrigins, "cors-origins", "AUTHAPI_CORS_ORIGINS", "origins allowed by CORS; empty turns CORS off")
	f.duration(&cfg.flushInterval, "flush-interval", "AUTHAPI_FLUSH_INTERVAL", time.Hour, "how often expired sessions and old login failures are deleted; 0s turns it off")
	f.duration(&cfg.revokedRetention, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", 24*time.Hour, "how long revoked sessions are kept before they are deleted")
	f.string(&cfg.debugAddr, "debug-addr", "AUTHAPI_DEBUG_ADDR", "", "address of a separate listener serving Go profiles (net/http/pprof) at /debug/pprof/, e.g. 127.0.0.1:6060; empty turns it off")
	f.bool(&cfg.debugAllowRemote, "debug-allow-remote", "AUTHAPI_DEBUG_ALLOW_REMOTE", false, "allow a --debug-addr that is not on loopback")
	f.int(&cfg.cacheEntries, "auth-cache-entries", "AUTHAPI_AUTH_CACHE_ENTRIES", 10_000, "verified access tokens kept with their user and session (about 1 KB each); -1 turns the cache off")
	f.duration(&cfg.cachePoll, "auth-cache-poll-interval", "AUTHAPI_AUTH_CACHE_POLL_INTERVAL", 200*time.Millisecond, "how often the change log of other instances' revocations is read")
	f.duration(&cfg.cacheStaleAfter, "auth-cache-stale-after", "AUTHAPI_AUTH_CACHE_STALE_AFTER", time.Second, "without a good read of the change log for this long, the cache is bypassed (the bound on how late another instance's revocation can be seen)")
	cfg.bootstrapUser = getenv("AUTHAPI_BOOTSTRAP_USERNAME")
	cfg.bootstrapPassword = getenv("AUTHAPI_BOOTSTRAP_PASSWORD")
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
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	var debugLn net.Listener
	if cfg.debugAddr != "" {
		if debugLn, err = listenDebug(cfg.debugAddr, cfg.debugAllowRemote); err != nil {
			return err
		}
		defer debugLn.Close()
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	keyOpts, err := keyOptions(getenv, cfg.alg, cfg.keyReload, log, cfg.accessTTL, cfg.refreshTTL)
	if err != nil {
		return err
	}

	limit, err := hashLimit(cfg.maxHashes, cfg.hashWait)
	if err != nil {
		return err
	}
	hasher, err := newHasher(cfg.argonMemory, cfg.argonIter, limit)
	if err != nil {
		return err
	}
	st, err := store.OpenWithOptions(cfg.db, cfg.dbOptions)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, msg := range st.Warnings() {
		log.Warn("database file permissions: " + msg)
	}
	// Processes starting at once on an empty database take turns: one migrates and creates
	// the first superuser and signing key, the others find them.
	var (
		created   bool
		generated string
		ring      *keyring.Ring
	)
	err = st.Init(ctx, func(ctx context.Context) error {
		var err error
		if created, generated, err = server.Bootstrap(ctx, st, hasher, cfg.bootstrapUser, cfg.bootstrapPassword); err != nil {
			return err
		}
		ring, err = openKeyRing(ctx, st, token.Config{Issuer: cfg.issuer}, keyOpts)
		return err
	})
	if err != nil {
		return err
	}
	if created {
		username := cmp.Or(cfg.bootstrapUser, "admin")
		if generated != "" {
			// For the operator's eyes, not for log collectors: a plain line on stderr, never
			// inside a log record (even when the log is sent to stderr too).
			fmt.Fprintf(stderr, "Created the first superuser %q with the password %s (shown once: change it after logging in)\n", username, generated)
			log.Warn("created the first superuser; password printed on stderr", "username", username)
		} else {
			log.Info("created the first superuser", "username", username)
		}
	}
	if err := warnPlaintextKeys(ctx, log, st, keyOpts); err != nil {
		return err
	}
	defer runKeyRing(ctx, ring)()
	tokens := ring.Manager()
	var cache *authcache.Cache
	if cfg.cacheEntries >= 0 {
		cache = authcache.New(authcache.Config{
			MaxEntries: cfg.cacheEntries, PollInterval: cfg.cachePoll, StaleAfter: cfg.cacheStaleAfter, Logger: log,
		}, st, tokens)
		defer runCache(ctx, cache)()
	}
	srv, err := server.New(server.Config{
		APIName: cfg.apiName, AccessTokenLifetime: cfg.accessTTL, RefreshTokenLifetime: cfg.refreshTTL,
		RotateRefreshTokens: cfg.rotate, RefreshReuseGrace: cfg.reuseGrace, SessionMaxLifetime: cfg.sessionMax,
		LoginFailuresPerAccount: cfg.failuresPerAccount, LoginFailuresPerIP: cfg.failuresPerIP,
		LoginFailureWindow: cfg.failureWindow, RefreshesPerIPPerMinute: cfg.refreshesPerMinute,
		TrustedProxies: proxies, CORSOrigins: cfg.corsOrigins, Keys: ring, Cache: cache, Logger: log,
	}, st, tokens, hasher)
	if err != nil {
		return err
	}

	certFile, keyFile := cfg.tlsCert, cfg.tlsKey
	if cfg.devTLS && certFile == "" {
		if certFile, keyFile, err = ensureDevCertificate(devCertDir, time.Now()); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Start-up left garbage larger than the working set (the hasher's dummy argon2id hash
	// alone is 19 MiB, then the spec, migrations, keys): return it to the OS now rather than
	// over the next minutes, so that a new instance's RSS is what serving needs.
	debug.FreeOSMemory()
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	log.Info("serving", "url", fmt.Sprintf("%s://%s/api/v1/", scheme, ln.Addr()), "swagger_ui", fmt.Sprintf("%s://%s/api/v1/swagger/ui/", scheme, ln.Addr()),
		"console", fmt.Sprintf("%s://%s/admin/", scheme, ln.Addr()))

	if debugLn != nil {
		log.Info("serving profiles", "url", fmt.Sprintf("http://%s/debug/pprof/", debugLn.Addr()))
		go serveDebug(ctx, debugLn, log)
	}
	if cfg.flushInterval > 0 {
		go flushPeriodically(ctx, st, log, cfg.flushInterval, cfg.revokedRetention, cfg.failureWindow)
	}

	served := make(chan error, 1)
	go func() {
		if certFile != "" {
			served <- httpServer.ServeTLS(ln, certFile, keyFile)
		} else {
			served <- httpServer.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
	return nil
}

// runCache runs the auth cache's change-log reader until the returned stop is called.
func runCache(ctx context.Context, c *authcache.Cache) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
