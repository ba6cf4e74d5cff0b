// Package server is authapi's HTTP adapter: it implements the generated strict server
// interface over the use-cases (auth) and the store, and renders every error in the spec's
// Error schema, domain errors through one table (errors.go).
package server

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/authapi/authapi/admin"
	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/passkey"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/recovery"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/users"
	"github.com/authapi/authapi/internal/verification"
)

// Config holds the server's settings. cmd/authapi builds it from flags and the environment.
// Zero values mean the defaults noted; where a limit can be turned off, a negative value does.
type Config struct {
	APIName string // the welcome message's "name"
	// Issuer is the tokens' iss, the base of the discovery document's URLs; app.Start sets it
	// from the token configuration. Required.
	Issuer string
	// SecretKey seals TOTP secrets at rest (AUTHAPI_SECRET_KEY); app.Start sets it. Without it
	// they are stored plain, as signing keys are.
	SecretKey            []byte
	AccessTokenLifetime  time.Duration // default 15 minutes
	RefreshTokenLifetime time.Duration // default 1 hour
	// RotateRefreshTokens makes every refresh return a new refresh token and retire the old
	// one; a retired one presented again after RefreshReuseGrace revokes the session.
	RotateRefreshTokens bool
	RefreshReuseGrace   time.Duration // 0 turns the grace window off
	SessionMaxLifetime  time.Duration // default 30 days: no refresh extends a session past it

	LoginFailuresPerAccount int           // default 5; failures within LoginFailureWindow
	LoginFailuresPerIP      int           // default 50
	LoginFailureWindow      time.Duration // default 15 minutes
	// KnownLoginIPLifetime is how long after a user's last successful login from an IP its
	// failures from elsewhere do not lock that IP out; default 90 days. A change of the
	// password forgets every such IP.
	KnownLoginIPLifetime    time.Duration
	RefreshesPerIPPerMinute int // default 60
	// PasskeyBeginsPerIPPerMinute limits the passkey logins begun per client IP; default 30,
	// -1 for no limit.
	PasskeyBeginsPerIPPerMinute int

	// WebAuthnRPID is the relying party id of security keys and passkeys, a registrable
	// domain; default the Issuer's host when it is a URL, else localhost. WebAuthnOrigins are
	// the origins browsers may run the ceremonies from; default the Issuer's origin (else
	// http://localhost). WebAuthnRPName is the name authenticators show; default "authapi".
	WebAuthnRPID    string
	WebAuthnOrigins []string
	WebAuthnRPName  string

	// ClientTokenLifetime is how long a client token (client credentials grant) lives;
	// default 1 hour.
	ClientTokenLifetime time.Duration

	// StepUpMaxAge is how recent a second-factor authentication must be for the operations
	// marked x-step-up; default 10 minutes (auth.DefaultStepUpMaxAge).
	StepUpMaxAge time.Duration
	// RequireMFA is the second-factor policy: whose accounts need a factor; default none.
	RequireMFA auth.MFAPolicy

	// TrustedProxies are the peers whose X-Forwarded-For is believed; without any, the
	// client IP is the socket's peer.
	TrustedProxies []netip.Prefix
	CORSOrigins    []string // allowed origins; CORS is off when empty

	// Keys is the signing key ring: its Manager signs and verifies the tokens, and the key
	// operations list and rotate its keys. Required.
	Keys *keyring.Ring

	// Cache keeps verified access tokens with their user and session; nil means none: every
	// request verifies its token and reads the database. The caller runs its Run.
	Cache *authcache.Cache

	// Metrics records requests and outcomes; nil records nothing.
	Metrics *metrics.Metrics

	// SSF is the Shared Signals transmitter behind /ssf/ and /.well-known/ssf-configuration.
	// Required.
	SSF *ssf.Service

	// Recovery is password reset (app.Start builds it with the mail outbox); without it the
	// password reset operations fail.
	Recovery *recovery.Service
	// Verification configures the address flows (verification, change of address, sign-up,
	// new-device notices); app.Start sets its mail parts. Without Templates, no mail is made
	// for them (sign-up then stays off).
	Verification verification.Config
	// RequireVerifiedEmail refuses logins of accounts made by sign-up until their address is
	// verified.
	RequireVerifiedEmail bool

	Now func() time.Time
	// Logger receives one line per request and whatever else happens; the lines of a request
	// carry its request_id.
	Logger *slog.Logger
	// RequestLogger, when set, receives the one line per request instead of Logger (serve
	// writes those lines in batches).
	RequestLogger *slog.Logger
}

// DefaultConfig is the configuration a server runs with unless told otherwise: serve's
// flags take their defaults from it, and New fills in the zero values of a Config from it.
func DefaultConfig() Config {
	return Config{
		APIName:                     "My Awesome API",
		AccessTokenLifetime:         15 * time.Minute,
		RefreshTokenLifetime:        time.Hour,
		RotateRefreshTokens:         true,
		RefreshReuseGrace:           10 * time.Second,
		SessionMaxLifetime:          30 * 24 * time.Hour,
		LoginFailuresPerAccount:     5,
		LoginFailuresPerIP:          50,
		LoginFailureWindow:          15 * time.Minute,
		KnownLoginIPLifetime:        DefaultKnownLoginIPLifetime,
		RefreshesPerIPPerMinute:     60,
		PasskeyBeginsPerIPPerMinute: 30,
		ClientTokenLifetime:         clients.DefaultTokenLifetime,
		StepUpMaxAge:                auth.DefaultStepUpMaxAge,
		RequireMFA:                  auth.RequireMFANone,
		Now:                         time.Now,
		Logger:                      slog.New(slog.DiscardHandler),
	}
}

// withDefaults fills in the zero values from DefaultConfig, but for those whose zero means
// off (rotation, the reuse grace).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.APIName = cmp.Or(c.APIName, d.APIName)
	c.AccessTokenLifetime = cmp.Or(c.AccessTokenLifetime, d.AccessTokenLifetime)
	c.RefreshTokenLifetime = cmp.Or(c.RefreshTokenLifetime, d.RefreshTokenLifetime)
	c.SessionMaxLifetime = cmp.Or(c.SessionMaxLifetime, d.SessionMaxLifetime)
	c.LoginFailureWindow = cmp.Or(c.LoginFailureWindow, d.LoginFailureWindow)
	c.LoginFailuresPerAccount = cmp.Or(c.LoginFailuresPerAccount, d.LoginFailuresPerAccount)
	c.LoginFailuresPerIP = cmp.Or(c.LoginFailuresPerIP, d.LoginFailuresPerIP)
	c.KnownLoginIPLifetime = cmp.Or(c.KnownLoginIPLifetime, d.KnownLoginIPLifetime)
	c.RefreshesPerIPPerMinute = cmp.Or(c.RefreshesPerIPPerMinute, d.RefreshesPerIPPerMinute)
	c.PasskeyBeginsPerIPPerMinute = cmp.Or(c.PasskeyBeginsPerIPPerMinute, d.PasskeyBeginsPerIPPerMinute)
	c.ClientTokenLifetime = cmp.Or(c.ClientTokenLifetime, d.ClientTokenLifetime)
	if c.WebAuthnRPID == "" || len(c.WebAuthnOrigins) == 0 {
		host, origin := "localhost", "http://localhost"
		if u, err := url.Parse(c.Issuer); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			host, origin = u.Hostname(), u.Scheme+"://"+u.Host
		}
		if _, err := netip.ParseAddr(host); err == nil {
			host = "localhost" // a relying party id is a domain
		}
		c.WebAuthnRPID = cmp.Or(c.WebAuthnRPID, host)
		if len(c.WebAuthnOrigins) == 0 {
			c.WebAuthnOrigins = []string{origin}
		}
	}
	c.WebAuthnRPName = cmp.Or(c.WebAuthnRPName, DefaultWebAuthnRPName)
	c.StepUpMaxAge = cmp.Or(c.StepUpMaxAge, d.StepUpMaxAge)
	c.RequireMFA = cmp.Or(c.RequireMFA, d.RequireMFA)
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.RequestLogger == nil {
		c.RequestLogger = c.Logger
	}
	return c
}

// DefaultWebAuthnRPName is Config.WebAuthnRPName's default.
const DefaultWebAuthnRPName = "authapi"

// DefaultKnownLoginIPLifetime is Config.KnownLoginIPLifetime's default: 90 days.
const DefaultKnownLoginIPLifetime = 90 * 24 * time.Hour

// MaxBodyBytes is the largest request body accepted; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Server serves the API. It is an http.Handler.
type Server struct {
	cfg        Config
	store      *store.Store
	tokens     *token.Manager
	hasher     *password.Hasher
	auth       *auth.Service
	log        *slog.Logger // adds the request id of the context to each record
	requestLog *slog.Logger // the request lines, which carry their id themselves
	metrics    *metrics.Metrics
	users      *users.Service
	verify     *verification.Service
	clients    *clients.Service
	ops        map[routeID]*operation // what the spec says of each operation
	echo       *echo.Echo

	metadata   gen.ServerMetadataJSONResponse // the discovery document, built once
	knownPaths map[string]struct{}            // every registered route template, for metrics
	draining   atomic.Bool                    // see Drain

	refusedUnavailable atomic.Int64 // requests refused since the database last went away
}

var _ gen.StrictServerInterface = (*handlers)(nil)

// handlers implements the generated strict interface; it is the Server seen from the spec.
type handlers struct{ *Server }

// New builds the API over st, signing and verifying with the keys of cfg.Keys and hashing with
// hasher.
func New(cfg Config, st *store.Store, hasher *password.Hasher) (*Server, error) {
	if cfg.Keys == nil {
		return nil, errors.New("server: no key ring (Config.Keys)")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("server: no issuer (Config.Issuer)")
	}
	if cfg.SSF == nil {
		return nil, errors.New("server: no SSF transmitter (Config.SSF)")
	}
	tokens := cfg.Keys.Manager()
	cfg = cfg.withDefaults()
	ops, err := operationTable()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, tokens: tokens, hasher: hasher, ops: ops, metadata: serverMetadata(cfg.Issuer),
		log: slog.New(requestLogHandler{cfg.Logger.Handler()}), requestLog: cfg.RequestLogger, metrics: cfg.Metrics}
	st.OnAvailabilityChange(s.availabilityChanged)
	s.users = users.New(st, hasher, users.Config{Metrics: cfg.Metrics, Now: s.now})
	vcfg := cfg.Verification
	if vcfg.Now == nil {
		vcfg.Now = cfg.Now
	}
	if vcfg.Logger == nil {
		vcfg.Logger = s.log
	}
	if vcfg.Templates == nil {
		vcfg.SignUp, vcfg.NewDeviceNotice = false, false
	}
	s.verify = verification.New(vcfg, st, s.users)
	var devices auth.DeviceNotices
	if vcfg.Templates != nil {
		s.users.SetMailer(s.verify)
		if vcfg.NewDeviceNotice {
			devices = s.verify
		}
	}
	s.clients = clients.New(clients.Config{TokenLifetime: cfg.ClientTokenLifetime, Now: cfg.Now, Cache: cfg.Cache}, st, tokens)
	rp, err := passkey.New(passkey.Config{RPID: cfg.WebAuthnRPID, RPName: cfg.WebAuthnRPName,
		Origins: cfg.WebAuthnOrigins, Timeout: auth.ChallengeLifetime})
	if err != nil {
		return nil, err
	}
	s.auth = auth.New(auth.Config{
		AccessTokenLifetime: cfg.AccessTokenLifetime, RefreshTokenLifetime: cfg.RefreshTokenLifetime,
		RotateRefreshTokens: cfg.RotateRefreshTokens, RefreshReuseGrace: cfg.RefreshReuseGrace,
		SessionMaxLifetime: cfg.SessionMaxLifetime,
		Throttle: throttle.Policy{
			FailuresPerAccount: cfg.LoginFailuresPerAccount, FailuresPerIP: cfg.LoginFailuresPerIP,
			Window: cfg.LoginFailureWindow, KnownIPLifetime: cfg.KnownLoginIPLifetime,
		},
		SecretKey: cfg.SecretKey, WebAuthn: rp,
		StepUpMaxAge: cfg.StepUpMaxAge, RequireMFA: cfg.RequireMFA,
		RequireVerifiedEmail: cfg.RequireVerifiedEmail, Devices: devices,
		Cache: cfg.Cache, Metrics: cfg.Metrics, Now: cfg.Now, Logger: s.log,
	}, st, tokens, hasher)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Binder = jsonBinder{}
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Pre(headAsGet)
	e.Use(s.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(securityHeaders)
	if len(cfg.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  cfg.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType},
			ExposeHeaders: []string{"X-Total-Count", "Link", echo.HeaderRetryAfter, echo.HeaderWWWAuthenticate, HeaderRequestID},
			MaxAge:        600,
		}))
	}
	e.Use(middleware.BodyLimit(strconv.Itoa(MaxBodyBytes))) // a bare number is bytes; "K" would be 1000
	e.Use(s.enforceRoute)
	e.Use(s.limitRefreshes())
	e.Use(s.limitPasskeyBegins())
	e.Use(specValidator{ops}.middleware)

	gen.RegisterHandlers(e, gen.NewStrictHandler(handlers{s}, nil))
	if err := registerDocs(e, cfg.APIName); err != nil {
		return nil, err
	}
	if err := registerConsole(e, admin.Dist()); err != nil {
		return nil, err
	}
	s.echo = e
	s.knownPaths = knownPaths(e)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }
