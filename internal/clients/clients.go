// Package clients is the registry of API clients (the resource servers and services that
// talk to authapi) and what they do with it: create, list, update, rotate the secret of and
// delete a client (superusers, through the API and the CLI), authenticate a client by its
// secret, issue a client token (the client credentials grant, RFC 6749 4.4) and check one.
//
// Secrets are 256 random bits, shown once. Only their SHA-256 is stored: a slow password hash
// guards low-entropy secrets against guessing, and nobody guesses 256 bits, so it would only
// cost every request that authenticates. Hashes are compared in constant time.
package clients

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/token"
)

// The scopes a client may hold.
const (
	ScopeIntrospect = "introspect"
	ScopeRevoke     = "revoke"
	ScopeSSFRead    = "ssf.read"
	ScopeSSFManage  = "ssf.manage"
)

// Scopes lists every scope, in the order they are shown.
var Scopes = []string{ScopeIntrospect, ScopeRevoke, ScopeSSFRead, ScopeSSFManage}

// Errors of the operations.
var (
	ErrNotFound = errors.New("api client not found")
	// ErrInvalidClient is a client that failed to authenticate: unknown, disabled, a wrong or
	// expired secret, a dead client token. They are alike to the caller.
	ErrInvalidClient = errors.New("invalid client")
	// ErrInvalidScope is a requested scope the client does not hold, or an unknown one.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInsufficientScope is a client token without the scope an operation needs.
	ErrInsufficientScope = errors.New("insufficient scope")
)

// ThrottledError is ErrInvalidClient refused by the failure limit: Wait is how long until
// attempts are counted again.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string { return "client authentication throttled" }
func (e *ThrottledError) Unwrap() error { return ErrInvalidClient }

// Defaults.
const (
	DefaultTokenLifetime  = time.Hour
	DefaultRotateOverlap  = 24 * time.Hour
	DefaultFailureLimit   = 20
	DefaultFailureWindow  = 15 * time.Minute
	lastUsedGrain         = time.Minute // LastUsedAt is written at most this often
	maxNameLength         = 200
	idPrefix              = "ac_"
	secretBytes           = 32
	idBytes               = 16
	maxCredentialLength   = 256 // longer ids and secrets are refused unread
	maxRotateOverlapHours = 24 * 90
)

// MaxRotateOverlap bounds the overlap of a rotation: 90 days.
const MaxRotateOverlap = maxRotateOverlapHours * time.Hour

// Config is the Service's settings; zero values take the defaults above.
type Config struct {
	TokenLifetime time.Duration
	// FailureLimit failed authentications per client id and per IP within FailureWindow, in
	// each instance (see throttle.Failures); negative is off.
	FailureLimit  int
	FailureWindow time.Duration
	Now           func() time.Time
	// Cache keeps the clients that authenticate, so that their requests read no database;
	// nil: every authentication reads its client.
	Cache *authcache.Cache
}

// Service carries out the operations over a store, signing client tokens with tokens.
type Service struct {
	cfg      Config
	store    *store.Store
	tokens   *token.Manager
	failures *throttle.Failures
	verified *verifiedTokens
}

// New returns the Service of cfg.
func New(cfg Config, st *store.Store, tokens *token.Manager) *Service {
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.FailureLimit == 0 {
		cfg.FailureLimit = DefaultFailureLimit
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, store: st, tokens: tokens, verified: newVerifiedTokens(maxVerifiedTokens)}
	if cfg.FailureLimit > 0 {
		s.failures = throttle.NewFailures(cfg.FailureLimit, cfg.FailureWindow, 0, s.now)
	}
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// TokenLifetime is how long a client token lives.
func (s *Service) TokenLifetime() time.Duration { return s.cfg.TokenLifetime }

// newID returns a client id: "ac_" and 22 base64url characters (128 random bits).
func newID() string { return idPrefix + randomText(idBytes) }

// newSecret returns a secret of 256 random bits, base64url.
func newSecret() string { return randomText(secretBytes) }

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// secretMatches compares in constant time; a nil hash matches nothing.
func secretMatches(hash []byte, secret string) bool {
	return len(hash) == sha256.Size && subtle.ConstantTimeCompare(hash, hashSecret(secret)) == 1
}

// secretTag names the secret a client token was issued with: the first 6 bytes of its hash,
// in hex, which start the token's jti. A token of a secret a rotation replaced then lives
// through the overlap only, exactly, whatever the clocks' precision. (Part of a SHA-256 of 256
// random bits tells nothing about the secret.)
func secretTag(hash []byte) string {
	if len(hash) < secretTagBytes {
		return ""
	}
	return hex.EncodeToString(hash[:secretTagBytes])
}

const secretTagBytes = 6

// normalizeScopes checks scopes against the known ones and returns them in Scopes' order,
// without duplicates; the unknown ones are returned as bad.
func normalizeScopes(scopes []string) (out, bad []string) {
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			bad = append(bad, sc)
		}
	}
	for _, sc := range Scopes {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	return out, bad
}

// ParseScope splits a space-separated scope parameter (RFC 6749 3.3).
func ParseScope(s string) []string { return strings.Fields(s) }

// maxVerifiedTokens bounds the cache of verified client tokens: a few hundred bytes each.
const maxVerifiedTokens = 10_000

// verifiedTokens remembers the claims of client tokens whose signature was checked.
type verifiedTokens struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, token.ClientClaims]
}

func newVerifiedTokens(size int) *verifiedTokens {
	lru, err := simplelru.NewLRU[string, token.ClientClaims](size, nil)
	if err != nil {
		panic(err)
	}
	return &verifiedTokens{lru: lru}
}

// get returns the claims of raw if it was verified and has not expired at now.
func (v *verifiedTokens) get(raw string, now time.Time) (token.ClientClaims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.lru.Get(raw)
	if ok && !now.Before(c.ExpiresAt) {
		v.lru.Remove(raw)
		return token.ClientClaims{}, false
	}
	return c, ok
}

func (v *verifiedTokens) add(raw string, c token.ClientClaims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lru.Add(raw, c)
}
