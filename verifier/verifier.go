// Package verifier protects a resource server's API with authapi's access tokens: it verifies
// them locally against the issuer's published keys (found through RFC 8414 discovery) and,
// given client credentials, follows the issuer's Shared Signals poll stream so that a revoked
// session's tokens are refused within a second. When the stream has not been heard from for
// Config.StaleAfter it fails closed: each token is confirmed by RFC 7662 introspection, or
// refused. It imports none of the server's packages (see TestNoServerDependencies).
package verifier

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/authapi/authapi/internal/token"
)

// Refusals returned by Verify. Every refusal of a token wraps ErrInvalidToken.
var (
	ErrInvalidToken = errors.New("invalid token")
	// ErrRevoked: the token's session or user was revoked (the stream said so, or
	// introspection answered inactive).
	ErrRevoked = fmt.Errorf("%w: revoked", ErrInvalidToken)
	// ErrUnconfirmed: the token was issued before the stream began and cannot be confirmed
	// (OnStale is Refuse); a fresh token will pass.
	ErrUnconfirmed = fmt.Errorf("%w: issued before the revocation stream began", ErrInvalidToken)
	// ErrUnavailable: the stream is stale and introspection failed or is refused by setting:
	// the token cannot be checked now. It does not wrap ErrInvalidToken.
	ErrUnavailable = errors.New("revocation status unavailable")
)

// StalePolicy is what Verify does while the stream is stale.
type StalePolicy int

const (
	Introspect StalePolicy = iota // confirm each token at the introspection endpoint
	Refuse                        // refuse every token (ErrUnavailable)
)

// Defaults for the zero values of Config.
const (
	DefaultStaleAfter       = 2 * time.Second
	DefaultMaxTokenLifetime = time.Hour
	DefaultLeeway           = 5 * time.Second
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	Issuer   string   // e.g. https://auth.example.com; discovery is <Issuer>/.well-known/oauth-authorization-server
	Audience []string // aud must hold one of these
	// ClientID and ClientSecret are an API client's credentials (scopes ssf.manage, ssf.read
	// and introspect). Without a secret there is no stream and no introspection: tokens are
	// checked locally only and stay valid until they expire.
	ClientID, ClientSecret string
	StaleAfter             time.Duration // default DefaultStaleAfter
	OnStale                StalePolicy
	// MaxTokenLifetime bounds exp - iat of the tokens accepted, and so how long a revocation
	// is remembered. Default DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	Leeway           time.Duration // clock skew allowed; default DefaultLeeway, negative means none
	// StreamName names this verifier's stream (its description) so that a restart resumes
	// the same stream from its last acknowledgement. Each process needs its own name.
	// Default "authapi-verifier@<hostname>".
	StreamName string
	HTTPClient *http.Client     // default http.DefaultClient
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
	// OnEvent, if set, is called after each security event has been applied: a token it
	// revokes is refused from then on. For measuring revocation delay.
	OnEvent func(Event)
}

func (c *Config) fill() error {
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if c.Issuer == "" {
		return errors.New("verifier: empty Issuer")
	}
	if len(c.Audience) == 0 {
		return errors.New("verifier: empty Audience")
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.MaxTokenLifetime <= 0 {
		c.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	} else if c.Leeway < 0 {
		c.Leeway = 0
	}
	if c.StreamName == "" {
		host, _ := os.Hostname()
		c.StreamName = "authapi-verifier@" + host
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Claims are a verified access token's claims. Optional claims it lacks are zero.
type Claims struct {
	Issuer    string
	Subject   string // the user's id, or the client's for a client credentials token
	Audience  []string
	ClientID  string
	SessionID string // sid; empty for a client credentials token
	Scope     string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
	Raw       map[string]any // every claim, numbers as json.Number; shared, do not change
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg      Config
	meta     metadata
	keys     *keyCache
	verified *verifiedCache
	revoked  *revocations
	stream   *stream // nil without client credentials
	cancel   context.CancelFunc
	done     chan struct{}

	// confirmed holds the jtis of tokens issued before the stream began that introspection
	// found active, until their exp: later revocations of them arrive through the stream.
	mu        sync.Mutex
	confirmed map[string]time.Time
	coverage  uint64 // counts the restarts of coverage (Since), which forget confirmed
}

// New discovers the issuer's metadata and keys and, given client credentials, starts
// following its revocation stream in the background until Close. ctx bounds discovery only.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	return newVerifier(ctx, cfg, nil)
}

// newVerifier is New, with a hook for tests to set up the stream before it starts.
func newVerifier(ctx context.Context, cfg Config, setup func(*stream)) (*Verifier, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, revoked: newRevocations(), verified: newVerifiedCache(cfg.Leeway), confirmed: map[string]time.Time{}, done: make(chan struct{})}
	if err := getJSON(ctx, cfg.HTTPClient, cfg.Issuer+"/.well-known/oauth-authorization-server", &v.meta); err != nil {
		return nil, fmt.Errorf("verifier: discovery: %w", err)
	}
	if v.meta.Issuer != cfg.Issuer { // RFC 8414 3.3
		return nil, fmt.Errorf("verifier: discovery: issuer %q, want %q", v.meta.Issuer, cfg.Issuer)
	}
	if v.meta.JWKSURI == "" {
		return nil, errors.New("verifier: discovery: no jwks_uri")
	}
	v.keys = &keyCache{url: v.meta.JWKSURI, client: cfg.HTTPClient, now: cfg.Now}
	if err := v.keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	if cfg.ClientSecret == "" {
		close(v.done)
		return v, nil
	}
	v.stream = newStream(v)
	if setup != nil {
		setup(v.stream)
	}
	go func() {
		defer close(v.done)
		v.stream.run(runCtx)
	}()
	return v, nil
}

// Close stops following the stream. Verify keeps working; with a stream configured it then
// fails closed once the stream is stale.
func (v *Verifier) Close() error {
	v.cancel()
	<-v.done
	return nil
}

// Verify checks raw, an access token without the "Bearer " prefix, and returns its claims.
// Refusals wrap ErrInvalidToken, except ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	now := v.cfg.Now()
	c, err := v.verifySignature(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if v.stream == nil {
		return c.copy(), nil
	}
	if v.revoked.refuses(c, now) {
		return nil, ErrRevoked
	}
	h := v.stream.health(now)
	if !h.Stale && c.IssuedAt.After(h.Since) {
		return c.copy(), nil
	}
	if !h.Stale && v.wasConfirmed(c.ID, now) {
		return c.copy(), nil
	}
	// Stale, or issued before the stream began: only the issuer can tell.
	if v.cfg.OnStale == Refuse {
		if h.Stale {
			return nil, ErrUnavailable
		}
		return nil, ErrUnconfirmed
	}
	coverage := v.coverageNow()
	active, err := v.introspect(ctx, raw)
	if err != nil {
		v.cfg.Logger.WarnContext(ctx, "verifier: introspection failed", "err", err)
		return nil, ErrUnavailable
	}
	if !active {
		return nil, ErrRevoked
	}
	if !h.Stale {
		v.confirm(c.ID, c.ExpiresAt, now, coverage)
	}
	return c.copy(), nil
}

// copy is a copy of c a handler may change; Raw is shared and must not be changed.
func (c *Claims) copy() *Claims {
	out := *c
	return &out
}

// verifySignature checks raw's signature and claims, or finds it checked before. The claims
// returned are shared: callers copy them before handing them out.
func (v *Verifier) verifySignature(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	key := sha256.Sum256([]byte(raw))
	if c, ok := v.verified.get(key, now); ok {
		return c, nil
	}
	want := token.Expect{Issuers: []string{v.cfg.Issuer}, Audiences: v.cfg.Audience, Now: now, Leeway: v.cfg.Leeway}
	tc, err := v.keys.set().VerifyAccessToken(raw, want)
	if errors.Is(err, token.ErrUnknownKey) && v.keys.refreshUnknown(ctx) {
		tc, err = v.keys.set().VerifyAccessToken(raw, want)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c := claimsFrom(tc)
	if c.ExpiresAt.Sub(c.IssuedAt) > v.cfg.MaxTokenLifetime {
		return nil, fmt.Errorf("%w: lifetime %s exceeds MaxTokenLifetime %s", ErrInvalidToken, c.ExpiresAt.Sub(c.IssuedAt), v.cfg.MaxTokenLifetime)
	}
	v.verified.put(key, c, now)
	return c, nil
}

func (v *Verifier) coverageNow() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.coverage
}

// restartCoverage forgets the confirmed tokens: revocations before the new Since may be unknown.
func (v *Verifier) restartCoverage() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.confirmed)
	v.coverage++
}

func (v *Verifier) wasConfirmed(jti string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.confirmed[jti]
	return ok && now.Before(exp)
}

// maxConfirmed bounds the memory of confirmed tokens; past it the memory starts again.
const maxConfirmed = 100_000

func (v *Verifier) confirm(jti string, exp, now time.Time, coverage uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if coverage != v.coverage {
		return // coverage started again during the introspection: its answer may predate it
	}
	if len(v.confirmed) >= maxConfirmed {
		for id, e := range v.confirmed {
			if !now.Before(e) {
				delete(v.confirmed, id)
			}
		}
		if len(v.confirmed) >= maxConfirmed {
			clear(v.confirmed)
		}
	}
	v.confirmed[jti] = exp
}

// Health is the state of the revocation stream.
type Health struct {
	Enabled  bool      // client credentials given
	StreamID string    // empty until the stream is ensured
	Since    time.Time // revocations after this are known through the stream
	// LastHeard is until when revocations are known: when the newest answered poll was sent,
	// or the last status check that found the stream enabled, if earlier.
	LastHeard time.Time
	LastPoll  time.Time // when the newest answered poll was sent
	Stale     bool      // LastHeard older than StaleAfter: Verify fails closed
	LastError error     // the last failure of the stream, nil after a good poll
	Events    uint64    // security events applied
	Revoked   int       // sessions and users remembered as revoked
}

// Health reports the stream's state.
func (v *Verifier) Health() Health {
	now := v.cfg.Now()
	if v.stream == nil {
		return Health{Revoked: v.revoked.len()}
	}
	h := v.stream.health(now)
	h.Revoked = v.revoked.len()
	return h
}

func claimsFrom(t token.AccessClaims) *Claims {
	return &Claims{
		Issuer: t.Issuer, Subject: t.Subject, Audience: t.Audience, ClientID: t.ClientID,
		SessionID: t.SessionID, Scope: t.Scope, AuthTime: t.AuthTime, AMR: t.AMR, ACR: t.ACR,
		ID: t.ID, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, Raw: t.Raw,
	}
}
