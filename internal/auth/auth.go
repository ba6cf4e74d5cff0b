// Package auth is what the token and session operations do, once: a login (throttle, password
// check, hash upgrade, new session), a refresh (rotation, grace, reuse detection), verifying
// a token, authenticating a request's bearer token, logging out, listing and revoking
// sessions, and changing one's own password.
//
// It takes domain inputs and returns domain results and the errors in errors.go; it knows
// nothing of HTTP. The server maps the wire to these calls and their errors to answers.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/passkey"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/token"
)

// Config holds the rules of tokens and sessions. Every field must be set but Cache, Metrics
// and Logger (server.Config's defaults fill them in).
type Config struct {
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	// RotateRefreshTokens makes every refresh return a new refresh token and retire the old
	// one; a retired one presented again after RefreshReuseGrace revokes the session.
	RotateRefreshTokens bool
	RefreshReuseGrace   time.Duration // 0 turns the grace window off
	SessionMaxLifetime  time.Duration // no refresh extends a session past it

	// SecretKey, when set, seals TOTP secrets at rest as it does signing keys (token.SealBytes);
	// without it they are stored plain, under the same warning as plaintext keys.
	SecretKey []byte

	// WebAuthn is the relying party of security keys and passkeys. Required.
	WebAuthn *passkey.RP

	// Throttle limits failed logins and password checks.
	Throttle throttle.Policy

	// StepUpMaxAge is how recent a second-factor authentication must be for an operation
	// marked for step-up (see StepUpNeeded); default DefaultStepUpMaxAge.
	StepUpMaxAge time.Duration
	// RequireMFA is the second-factor policy (see EnrolmentOnly); "" is RequireMFANone.
	RequireMFA MFAPolicy
	// RequireVerifiedEmail refuses sign-ins (password, second factor, passkey) of accounts made
	// by sign-up until their address is verified (ErrEmailNotVerified, answered only once the
	// sign-in is proven).
	RequireVerifiedEmail bool
	// Devices, when set, is told of every successful login (see DeviceNotices).
	Devices DeviceNotices

	// Cache keeps verified access tokens with their user and session; nil means none.
	Cache *authcache.Cache
	// Metrics records outcomes; nil records nothing.
	Metrics *metrics.Metrics
	Now     func() time.Time
	// Logger receives what goes wrong on the side (an unreadable hash, a reused token); nil
	// discards it.
	Logger *slog.Logger
}

// Service carries out the operations over a store, signing and verifying with a token
// manager and hashing with a hasher.
type Service struct {
	cfg     Config
	store   *store.Store
	tokens  *token.Manager
	hasher  *password.Hasher
	logins  *throttle.Logins
	metrics *metrics.Metrics
	log     *slog.Logger
}

// New returns the Service of cfg over st.
func New(cfg Config, st *store.Store, tokens *token.Manager, hasher *password.Hasher) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StepUpMaxAge <= 0 {
		cfg.StepUpMaxAge = DefaultStepUpMaxAge
	}
	s := &Service{cfg: cfg, store: st, tokens: tokens, hasher: hasher, metrics: cfg.Metrics, log: cfg.Logger}
	s.logins = throttle.NewLogins(st, cfg.Throttle, s.now)
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Client describes where a request comes from, for the sessions it starts and the audit log.
type Client struct{ IP, UserAgent string }

// Caller is an authenticated request: its user, the session of its access token and its
// client.
type Caller struct {
	UserID    int64
	SessionID string
	Client    Client
}

// Principal is what a valid access token names: its user and live session, as stored, and
// how the token says the user authenticated (its acr and auth_time, for step-up).
type Principal struct {
	User     store.User
	Session  store.Session
	ACR      string
	AuthTime time.Time
}

// TokenPair is an access token and the refresh token issued with it. Refresh is empty where
// a refresh does not rotate.
type TokenPair struct{ Access, Refresh string }

// source is the common part of the audit events of a request from client, made by the
// user and session of c when it is authenticated.
func (s *Service) source(client Client, c *Caller) audit.Source {
	src := audit.Source{At: s.now(), IP: client.IP, UserAgent: client.UserAgent}
	if c != nil {
		src.ActorID, src.SessionID = c.UserID, c.SessionID
	}
	return src
}

// callerSource is source for an authenticated caller.
func (s *Service) callerSource(c Caller) audit.Source { return s.source(c.Client, &c) }

// newTokenID returns a random jti: 32 hex characters, as simplejwt's.
func newTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSessionID returns a random, URL-safe session id with 128 bits of entropy.
func newSessionID() string { return rand.Text() }
