package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/recovery"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/verification"
)

type serveConfig struct {
	addr, db                         string
	dbOptions                        store.Options
	apiName, issuer, alg             string
	publicURL                        string   // "" until resolved by resolveIssuer
	previousIssuers, audience        []string // accepted old iss values; aud of access tokens
	accessTTL, refreshTTL            time.Duration
	clientTTL                        time.Duration // client tokens (client credentials grant)
	stepUpMaxAge                     time.Duration
	requireMFA                       string
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
	passkeyBeginsPerMinute            int
	trustedProxies, corsOrigins       []string
	flushInterval, revokedRetention   time.Duration
	auditRetention                    time.Duration
	debugAddr                         string
	debugAllowRemote                  bool
	metricsAddr                       string
	metricsAllowRemote                bool
	drain, shutdownTimeout            time.Duration

	cacheEntries, cacheMiB     int
	memoryLimitMiB             int
	cachePoll, cacheStaleAfter time.Duration

	ssfPollWait, ssfRetention time.Duration
	ssfQueueLimit             int

	webauthnRPID, webauthnRPName string
	webauthnOrigins              []string // "" and nil until resolved by resolveIssuer
	mail                         mailConfig
	address                      addressConfig // the address flows: verification, change, sign-up, device notices
}

// addressConfig is the settings of the address flows.
type addressConfig struct {
	signUp, requireVerified      bool
	newDeviceNotice              string // auto (on with SMTP), on, off
	tokenLifetime, window        time.Duration
	perIP, perAccount, perDomain int
}

// mailConfig is serve's mail settings: SMTP, templates, links, the outbox, password reset.
type mailConfig struct {
	smtp                       mail.SMTPConfig
	from, templates, linkURL   string
	required                   bool
	poll, retention            time.Duration
	maxAttempts                int
	resetLifetime, resetWindow time.Duration
	resetPerIP, resetPerDomain int
	resetPerAccount            int
}

// Environment variables read by serve without a flag: secrets stay out of ps(1).
const (
	bootstrapUserEnv     = "AUTHAPI_BOOTSTRAP_USERNAME"
	bootstrapPasswordEnv = "AUTHAPI_BOOTSTRAP_PASSWORD"
)

// parseServeConfig reads serve's flags and environment, and checks them together; proxies are
// the parsed --trusted-proxies.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, []netip.Prefix, error) {
	var cfg serveConfig
	def, cacheDef := server.DefaultConfig(), authcache.DefaultConfig()
	f := newFlags("serve", getenv, stderr)
	f.string(&cfg.addr, "addr", "AUTHAPI_ADDR", "127.0.0.1:8000", "address to listen on")
	f.db(&cfg.db)
	dbOptionFlags(f, &cfg.dbOptions)
	f.string(&cfg.apiName, "api-name", "AUTHAPI_API_NAME", def.APIName, "name in the welcome message")
	f.string(&cfg.publicURL, "public-url", "AUTHAPI_PUBLIC_URL", "", "externally visible base URL, no trailing slash, e.g. https://auth.example.com; default http://<addr> (https:// with TLS)")
	f.string(&cfg.issuer, "issuer", "AUTHAPI_ISSUER", "", "iss claim of issued tokens; default the public URL, which discovery (/.well-known/...) needs")
	f.listDefault(&cfg.previousIssuers, "previous-issuers", "AUTHAPI_PREVIOUS_ISSUERS", []string{"authapi"}, "iss values still accepted (tokens issued before the issuer changed, until they expire); --previous-issuers= accepts none")
	f.list(&cfg.audience, "audience", "AUTHAPI_AUDIENCE", "aud claim of user access tokens; default the issuer")
	f.string(&cfg.alg, "signing-alg", "AUTHAPI_SIGNING_ALG", token.EdDSA, "algorithm of a newly created signing key: EdDSA, ES256 or RS256")
	f.duration(&cfg.accessTTL, "access-token-lifetime", "AUTHAPI_ACCESS_TOKEN_LIFETIME", def.AccessTokenLifetime, "access token lifetime")
	f.duration(&cfg.refreshTTL, "refresh-token-lifetime", "AUTHAPI_REFRESH_TOKEN_LIFETIME", def.RefreshTokenLifetime, "refresh token (and session) lifetime")
	f.duration(&cfg.clientTTL, "client-token-lifetime", "AUTHAPI_CLIENT_TOKEN_LIFETIME", def.ClientTokenLifetime, "lifetime of the client tokens of API clients (client credentials grant)")
	keyReloadFlag(f, &cfg.keyReload)
	f.duration(&cfg.stepUpMaxAge, "step-up-max-age", "AUTHAPI_STEP_UP_MAX_AGE", def.StepUpMaxAge, "how recent a sign-in with the second factor must be for sensitive operations (step-up, RFC 9470) by users who have one")
	f.string(&cfg.requireMFA, "require-mfa", "AUTHAPI_REQUIRE_MFA", string(def.RequireMFA), "whose accounts need a second factor: none, superusers or staff (staff includes superusers); such a user without one signs in to enrol one only")
	f.string(&cfg.tlsCert, "tls-cert", "AUTHAPI_TLS_CERT", "", "TLS certificate file (PEM); serve HTTPS")
	f.string(&cfg.tlsKey, "tls-key", "AUTHAPI_TLS_KEY", "", "TLS private key file (PEM)")
	f.bool(&cfg.devTLS, "dev-tls", "AUTHAPI_DEV_TLS", false, "serve HTTPS with a self-signed localhost certificate in "+devCertDir)
	p := password.DefaultParams()
	f.uint(&cfg.argonMemory, "argon2-memory", "AUTHAPI_ARGON2_MEMORY_KIB", uint(p.Memory), "argon2id memory cost in KiB")
	f.uint(&cfg.argonIter, "argon2-iterations", "AUTHAPI_ARGON2_ITERATIONS", uint(p.Iterations), "argon2id passes")
	f.int(&cfg.maxHashes, "max-concurrent-hashes", "AUTHAPI_MAX_CONCURRENT_HASHES", password.DefaultConcurrency(), "password hashes and checks run at once (each holds the argon2id memory); default 2 x GOMAXPROCS")
	f.duration(&cfg.hashWait, "hash-queue-wait", "AUTHAPI_HASH_QUEUE_WAIT", password.DefaultWait, "how long a login or password change waits for a hashing slot before 503 busy")
	f.bool(&cfg.rotate, "rotate-refresh-tokens", "AUTHAPI_ROTATE_REFRESH_TOKENS", def.RotateRefreshTokens, "issue a new refresh token on every refresh and retire the old one")
	f.duration(&cfg.reuseGrace, "refresh-reuse-grace", "AUTHAPI_REFRESH_REUSE_GRACE", def.RefreshReuseGrace, "how long a retired refresh token still gets the same new pair instead of revoking the session; 0s turns it off")
	f.duration(&cfg.sessionMax, "session-max-lifetime", "AUTHAPI_SESSION_MAX_LIFETIME", def.SessionMaxLifetime, "absolute session lifetime; refreshing never extends a session past it")
	f.int(&cfg.failuresPerAccount, "login-failures-per-account", "AUTHAPI_LOGIN_FAILURES_PER_ACCOUNT", def.LoginFailuresPerAccount, "failed logins per account within the window before 429; -1 turns it off")
	f.int(&cfg.failuresPerIP, "login-failures-per-ip", "AUTHAPI_LOGIN_FAILURES_PER_IP", def.LoginFailuresPerIP, "failed logins per client IP within the window before 429; -1 turns it off")
	f.duration(&cfg.failureWindow, "login-failure-window", "AUTHAPI_LOGIN_FAILURE_WINDOW", def.LoginFailureWindow, "window in which failed logins count")
	f.duration(&cfg.knownIPLifetime, "known-login-ip-lifetime", "AUTHAPI_KNOWN_LOGIN_IP_LIFETIME", def.KnownLoginIPLifetime, "how long after a user's last login from an IP others' failures do not lock that IP out of the account (2160h is 90 days); a password change forgets every such IP")
	f.int(&cfg.refreshesPerMinute, "refreshes-per-ip-per-minute", "AUTHAPI_REFRESHES_PER_IP_PER_MINUTE", def.RefreshesPerIPPerMinute, "token refreshes per client IP per minute; -1 turns it off")
	f.int(&cfg.passkeyBeginsPerMinute, "passkey-begins-per-ip-per-minute", "AUTHAPI_PASSKEY_BEGINS_PER_IP_PER_MINUTE", def.PasskeyBeginsPerIPPerMinute, "passkey logins begun per client IP per minute; -1 turns it off")
	f.list(&cfg.trustedProxies, "trusted-proxies", "AUTHAPI_TRUSTED_PROXIES", "proxies (IPs or CIDRs) whose X-Forwarded-For names the client and whose X-Request-ID is kept")
	f.list(&cfg.corsOrigins, "cors-origins", "AUTHAPI_CORS_ORIGINS", "origins allowed by CORS; empty turns CORS off")
	f.duration(&cfg.flushInterval, "flush-interval", "AUTHAPI_FLUSH_INTERVAL", app.DefaultFlush().Interval, "how often expired sessions and old login failures are deleted; 0s turns it off")
	f.duration(&cfg.revokedRetention, "revoked-session-retention", "AUTHAPI_REVOKED_SESSION_RETENTION", app.DefaultFlush().RevokedSessions, "how long revoked sessions are kept before they are deleted")
	auditRetentionFlag(f, &cfg.auditRetention)
	f.duration(&cfg.ssfPollWait, "ssf-poll-wait", "AUTHAPI_SSF_POLL_WAIT", ssf.DefaultPollWait, "longest wait of a Shared Signals poll without returnImmediately (keep it under the 30s write timeout)")
	f.duration(&cfg.ssfRetention, "ssf-event-retention", "AUTHAPI_SSF_EVENT_RETENTION", ssf.DefaultRetention, "how long Shared Signals events are kept for streams that have not taken them (paused or silent receivers)")
	f.int(&cfg.ssfQueueLimit, "ssf-queue-limit", "AUTHAPI_SSF_QUEUE_LIMIT", ssf.DefaultQueueLimit, "most Shared Signals events queued per stream; the oldest beyond it are dropped (counted and audited)")
	f.string(&cfg.webauthnRPID, "webauthn-rp-id", "AUTHAPI_WEBAUTHN_RP_ID", "", "WebAuthn relying party id of security keys and passkeys: a registrable domain, the public URL's host or a parent of it; default the public URL's host. Credentials are bound to it: changing it orphans them")
	f.list(&cfg.webauthnOrigins, "webauthn-origins", "AUTHAPI_WEBAUTHN_ORIGINS", "origins browsers may run WebAuthn ceremonies from (the console's, your app's); default the public URL's origin")
	f.string(&cfg.webauthnRPName, "webauthn-rp-name", "AUTHAPI_WEBAUTHN_RP_NAME", server.DefaultWebAuthnRPName, "relying party name authenticators show when a passkey or security key is added")
	f.string(&cfg.debugAddr, "debug-addr", "AUTHAPI_DEBUG_ADDR", "", "address of a separate listener serving Go profiles (net/http/pprof) at /debug/pprof/, e.g. 127.0.0.1:6060; empty turns it off")
	f.bool(&cfg.debugAllowRemote, "debug-allow-remote", "AUTHAPI_DEBUG_ALLOW_REMOTE", false, "allow a --debug-addr that is not on loopback")
	f.string(&cfg.metricsAddr, "metrics-addr", "AUTHAPI_METRICS_ADDR", "", "address of a separate listener serving Prometheus metrics at /metrics, e.g. 127.0.0.1:9464; empty turns it off")
	f.bool(&cfg.metricsAllowRemote, "metrics-allow-remote", "AUTHAPI_METRICS_ALLOW_REMOTE", false, "allow a --metrics-addr that is not on loopback (metrics show traffic, login outcomes and internals: expose them to your scraper only)")
	f.duration(&cfg.drain, "shutdown-drain", "AUTHAPI_SHUTDOWN_DRAIN", 5*time.Second, "on SIGTERM or SIGINT, how long to keep serving with /readyz answering 503, so load balancers stop sending requests first; 0s turns it off")
	f.duration(&cfg.shutdownTimeout, "shutdown-timeout", "AUTHAPI_SHUTDOWN_TIMEOUT", 15*time.Second, "after the drain, how long requests in flight may take to finish before their connections are closed")
	f.int(&cfg.cacheMiB, "auth-cache-mib", "AUTHAPI_AUTH_CACHE_MIB", int(cacheDef.MaxBytes>>20), "memory in MiB of the verified access tokens kept with their user and session (about 1.9 KB each: 64 MiB hold about 34,000)")
	f.int(&cfg.cacheEntries, "auth-cache-entries", "AUTHAPI_AUTH_CACHE_ENTRIES", 0, "at most this many cached tokens besides --auth-cache-mib; 0 for no count bound, -1 turns the cache off")
	f.int(&cfg.memoryLimitMiB, "memory-limit-mib", "AUTHAPI_MEMORY_LIMIT_MIB", 0, "soft memory limit of the Go runtime in MiB; 0 sets it to --auth-cache-mib plus --max-concurrent-hashes x --argon2-memory plus 128 MiB, unless GOMEMLIMIT is set; -1 sets none")
	f.duration(&cfg.cachePoll, "auth-cache-poll-interval", "AUTHAPI_AUTH_CACHE_POLL_INTERVAL", cacheDef.PollInterval, "how often the change log of other instances' revocations is read")
	f.duration(&cfg.cacheStaleAfter, "auth-cache-stale-after", "AUTHAPI_AUTH_CACHE_STALE_AFTER", cacheDef.StaleAfter, "without a good read of the change log for this long, the cache is bypassed (the bound on how late another instance's revocation can be seen)")
	mailFlags(f, &cfg.mail)
	addressFlags(f, &cfg.address)
	cfg.bootstrapUser = getenv(bootstrapUserEnv)
	cfg.bootstrapPassword = getenv(bootstrapPasswordEnv)
	if err := f.parse(args); err != nil {
		return cfg, nil, err
	}
	if !token.ValidAlgorithm(cfg.alg) {
		return cfg, nil, fmt.Errorf("unknown signing algorithm %q", cfg.alg)
	}
	proxies, err := parsePrefixes(cfg.trustedProxies)
	if err != nil {
		return cfg, nil, err
	}
	if cfg.cacheEntries >= 0 && cfg.cacheMiB < 1 {
		return cfg, nil, errors.New("--auth-cache-mib must be at least 1 (--auth-cache-entries -1 turns the cache off)")
	}
	if cfg.cacheEntries >= 0 && (cfg.cachePoll <= 0 || cfg.cacheStaleAfter < 2*cfg.cachePoll) {
		return cfg, nil, errors.New("--auth-cache-poll-interval must be positive and at most half of --auth-cache-stale-after")
	}
	if err := checkAuditRetention(cfg.auditRetention); err != nil {
		return cfg, nil, err
	}
	if cfg.stepUpMaxAge <= 0 {
		return cfg, nil, errors.New("--step-up-max-age must be positive")
	}
	if _, err := auth.ParseMFAPolicy(cfg.requireMFA); err != nil {
		return cfg, nil, fmt.Errorf("--require-mfa: %w", err)
	}
	if cfg.knownIPLifetime <= 0 {
		return cfg, nil, errors.New("--known-login-ip-lifetime must be positive")
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return cfg, nil, errors.New("--tls-cert and --tls-key go together")
	}
	if cfg.publicURL != "" {
		if err := checkPublicURL(cfg.publicURL); err != nil {
			return cfg, nil, err
		}
	}
	if cfg.drain < 0 || cfg.shutdownTimeout <= 0 {
		return cfg, nil, fmt.Errorf("--shutdown-drain %v must not be negative and --shutdown-timeout %v must be positive", cfg.drain, cfg.shutdownTimeout)
	}
	if cfg.ssfPollWait <= 0 || cfg.ssfRetention <= 0 || cfg.ssfQueueLimit <= 0 {
		return cfg, nil, fmt.Errorf("--ssf-poll-wait %v, --ssf-event-retention %v and --ssf-queue-limit %d must be positive", cfg.ssfPollWait, cfg.ssfRetention, cfg.ssfQueueLimit)
	}
	if err := cfg.mail.check(); err != nil {
		return cfg, nil, err
	}
	if err := cfg.address.check(); err != nil {
		return cfg, nil, err
	}
	return cfg, proxies, nil
}

// addressFlags are the settings of verification, change of address, sign-up and new-device
// notices.
func addressFlags(f *flags, a *addressConfig) {
	d := verification.DefaultConfig()
	f.bool(&a.signUp, "signup", "AUTHAPI_SIGNUP", false, "let anyone create an account (POST /api/v1/auth/signup/, and the console's sign-up page)")
	f.bool(&a.requireVerified, "signup-require-verified-email", "AUTHAPI_SIGNUP_REQUIRE_VERIFIED_EMAIL", true, "refuse logins of accounts made by sign-up until their email address is verified")
	f.string(&a.newDeviceNotice, "new-device-notice", "AUTHAPI_NEW_DEVICE_NOTICE", "auto", "mail users at a login from a device (network and browser) their account has not used: auto (on when --smtp-host is set), on or off")
	f.duration(&a.tokenLifetime, "email-token-lifetime", "AUTHAPI_EMAIL_TOKEN_LIFETIME", d.Lifetime, "how long an email verification or change link works")
	f.int(&a.perIP, "address-mails-per-ip", "AUTHAPI_ADDRESS_MAILS_PER_IP", d.PerIP, "sign-ups, verification and change-of-address mails asked for from one client IP within the window before 429; -1 turns it off")
	f.int(&a.perAccount, "address-mails-per-account", "AUTHAPI_ADDRESS_MAILS_PER_ACCOUNT", d.PerAccount, "verification and change-of-address mails asked for by one account within the window before 429; -1 turns it off")
	f.int(&a.perDomain, "address-mails-per-domain", "AUTHAPI_ADDRESS_MAILS_PER_DOMAIN", d.PerDomain, "sign-ups, verification and change-of-address mails to one recipient domain within the window before 429; -1 turns it off")
	f.duration(&a.window, "address-mail-window", "AUTHAPI_ADDRESS_MAIL_WINDOW", d.Window, "window in which the address mails' limits count")
}

// check checks the address flows' settings together.
func (a addressConfig) check() error {
	switch a.newDeviceNotice {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("--new-device-notice %q: want auto, on or off", a.newDeviceNotice)
	}
	if a.tokenLifetime <= 0 || a.window <= 0 {
		return fmt.Errorf("--email-token-lifetime %v and --address-mail-window %v must be positive", a.tokenLifetime, a.window)
	}
	return nil
}

// verification is the address flows' configuration; smtp tells whether an SMTP server is
// configured (the new-device notice's auto).
func (a addressConfig) verification(smtp bool) verification.Config {
	return verification.Config{SignUp: a.signUp, NewDeviceNotice: a.newDeviceNotice == "on" || a.newDeviceNotice == "auto" && smtp,
		Lifetime: a.tokenLifetime, PerIP: a.perIP, PerAccount: a.perAccount, PerDomain: a.perDomain, Window: a.window}
}

// mailFlags are serve's mail settings.
func mailFlags(f *flags, m *mailConfig) {
	out, reset := mail.DefaultOutbox(), recovery.DefaultConfig()
	f.string(&m.smtp.Host, "smtp-host", "AUTHAPI_SMTP_HOST", "", "SMTP server that sends mail; empty: messages are written to the log instead (development sink)")
	f.int(&m.smtp.Port, "smtp-port", "AUTHAPI_SMTP_PORT", 0, "SMTP port; 0: 587 for starttls, 465 for tls, 25 for none")
	f.string(&m.smtp.Username, "smtp-username", "AUTHAPI_SMTP_USERNAME", "", "SMTP user name; empty: no authentication")
	f.string(&m.smtp.Password, "smtp-password", "AUTHAPI_SMTP_PASSWORD", "", "SMTP password (prefer the environment variable: flags show in ps)")
	f.string(&m.smtp.TLS, "smtp-tls", "AUTHAPI_SMTP_TLS", mail.TLSStartTLS, "SMTP TLS: none, starttls (required, not opportunistic) or tls (implicit)")
	f.duration(&m.smtp.Timeout, "smtp-timeout", "AUTHAPI_SMTP_TIMEOUT", 30*time.Second, "time limit of one SMTP delivery (connection to the end of the message)")
	f.string(&m.from, "mail-from", "AUTHAPI_MAIL_FROM", "", `From address of mail, e.g. "Example <auth@example.com>"; default authapi@<host of --public-url>`)
	f.string(&m.templates, "mail-templates", "AUTHAPI_MAIL_TEMPLATES", "", "directory of mail templates replacing the embedded ones file by file (<kind>.subject.txt, <kind>.txt, <kind>.html)")
	f.string(&m.linkURL, "mail-link-url", "AUTHAPI_MAIL_LINK_URL", "", "base URL of the links in mail (your app's pages /reset-password#token=...); default <public-url>/admin, the console's hosted pages")
	f.bool(&m.required, "mail-required", "AUTHAPI_MAIL_REQUIRED", false, "refuse to start without --smtp-host (production: no flow writes its links to the log)")
	f.duration(&m.poll, "mail-poll-interval", "AUTHAPI_MAIL_POLL_INTERVAL", out.Poll, "how often the mail outbox is read for messages due (other instances' and retries); this instance's own are sent at once")
	f.int(&m.maxAttempts, "mail-max-attempts", "AUTHAPI_MAIL_MAX_ATTEMPTS", out.MaxAttempts, "attempts to deliver a message before it is given up (audited mail.failed); backoff 30s doubling to 1h")
	f.duration(&m.retention, "mail-retention", "AUTHAPI_MAIL_RETENTION", app.DefaultMailRetention, "how long sent and given-up messages stay in the outbox before the flush deletes them")
	f.duration(&m.resetLifetime, "password-reset-lifetime", "AUTHAPI_PASSWORD_RESET_LIFETIME", reset.Lifetime, "how long a password reset link works (once)")
	f.int(&m.resetPerIP, "password-reset-per-ip", "AUTHAPI_PASSWORD_RESET_PER_IP", reset.PerIP, "password reset requests per client IP within the window before 429 (reason ip); -1 turns it off")
	f.int(&m.resetPerDomain, "password-reset-per-domain", "AUTHAPI_PASSWORD_RESET_PER_DOMAIN", reset.PerDomain, "password reset requests per email domain within the window before 429 (reason recipient_domain); -1 turns it off")
	f.int(&m.resetPerAccount, "password-reset-per-account", "AUTHAPI_PASSWORD_RESET_PER_ACCOUNT", reset.PerAccount, "reset links sent to one account within the window; more requests still answer 202 but send nothing; -1 turns it off")
	f.duration(&m.resetWindow, "password-reset-window", "AUTHAPI_PASSWORD_RESET_WINDOW", reset.Window, "window of the password reset limits")
}

// check checks the mail settings together.
func (m mailConfig) check() error {
	switch m.smtp.TLS {
	case mail.TLSNone, mail.TLSStartTLS, mail.TLSImplicit:
	default:
		return fmt.Errorf("--smtp-tls %q: want none, starttls or tls", m.smtp.TLS)
	}
	if m.required && m.smtp.Host == "" {
		return app.ErrMailRequired
	}
	if m.smtp.Port < 0 || m.smtp.Port > 65535 {
		return fmt.Errorf("--smtp-port %d: out of range", m.smtp.Port)
	}
	if m.from != "" {
		if err := mail.CheckAddress(m.from); err != nil {
			return fmt.Errorf("--mail-from: %w", err)
		}
	}
	if m.linkURL != "" {
		if u, err := url.Parse(m.linkURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
			return fmt.Errorf("--mail-link-url %q: want an absolute http or https URL without query or fragment", m.linkURL)
		}
	}
	if m.poll <= 0 || m.maxAttempts < 1 || m.retention <= 0 || m.resetLifetime <= 0 || m.resetWindow <= 0 || m.smtp.Timeout <= 0 {
		return errors.New("--mail-poll-interval, --mail-max-attempts, --mail-retention, --smtp-timeout, --password-reset-lifetime and --password-reset-window must be positive")
	}
	return nil
}

// appMail is the app's mail configuration of m, links below publicURL by default.
func (m mailConfig) appMail(publicURL string) app.Mail {
	base := m.linkURL
	if base == "" {
		base = publicURL + "/admin"
	}
	out := mail.DefaultOutbox()
	out.Poll, out.MaxAttempts, out.Lease = m.poll, m.maxAttempts, max(out.Lease, 2*m.smtp.Timeout)
	reset := recovery.Config{Lifetime: m.resetLifetime, PerIP: m.resetPerIP, PerDomain: m.resetPerDomain,
		PerAccount: m.resetPerAccount, Window: m.resetWindow}
	return app.Mail{SMTP: m.smtp, Required: m.required, From: m.from, Templates: m.templates, LinkBase: base,
		Outbox: out, Reset: reset}
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
	f.int(&o.ExactCountMax, "postgres-exact-count-max", "AUTHAPI_POSTGRES_EXACT_COUNT_MAX", d.ExactCountMax,
		"PostgreSQL: the user list counts this many matches exactly; past them X-Total-Count is the planner's estimate (X-Total-Count-Estimated: true)")
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

// checkPublicURL accepts an absolute http(s) URL with no trailing slash, query or fragment:
// the issuer and the discovery URLs are built by appending paths to it.
func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("--public-url %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("--public-url %q: want an absolute http or https URL", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("--public-url %q: want no query, fragment or user info", raw)
	case strings.HasSuffix(raw, "/"):
		return fmt.Errorf("--public-url %q: want no trailing slash", raw)
	}
	return nil
}

// resolveIssuer fills in the public URL (from the address listened on, bound, when not
// configured) and the issuer (the public URL when not configured).
func (cfg *serveConfig) resolveIssuer(bound net.Addr) {
	if cfg.publicURL == "" {
		cfg.publicURL = defaultPublicURL(cfg.addr, bound, cfg.tlsCert != "" || cfg.devTLS)
	}
	cfg.issuer = cmp.Or(cfg.issuer, cfg.publicURL)
	if u, err := url.Parse(cfg.publicURL); err == nil {
		// A relying party id is a domain: for a public URL on an IP address (a default, a
		// test), localhost, so that serve starts (browsers then need --webauthn-* set).
		host := u.Hostname()
		if net.ParseIP(host) != nil {
			host = "localhost"
		}
		cfg.webauthnRPID = cmp.Or(cfg.webauthnRPID, host)
		if len(cfg.webauthnOrigins) == 0 {
			cfg.webauthnOrigins = []string{u.Scheme + "://" + u.Host}
		}
	}
}

// defaultPublicURL is http://<addr> (https with TLS): the port bound when addr asks for any
// (:0), and localhost for a host that is empty or every interface, which no client can use.
func defaultPublicURL(addr string, bound net.Addr, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if tcp, ok := bound.(*net.TCPAddr); ok && (port == "" || port == "0") {
		port = strconv.Itoa(tcp.Port)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
