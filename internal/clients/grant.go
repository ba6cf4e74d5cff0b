package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Principal is an authenticated API client: the client as stored now, and the scopes its
// credentials carry (a token's scopes that the client still holds; all of them for a secret).
type Principal struct {
	Client store.APIClient
	Scopes []string
	// ByPreviousSecret is true when the client authenticated with the secret a rotation
	// replaced: tokens issued to it then live no longer than that secret.
	ByPreviousSecret bool
}

// Has reports whether p carries scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

// dummyHash is compared against when the client does not exist, so that an unknown id costs
// what a wrong secret does.
var dummyHash = hashSecret("not a secret")

// AuthenticateSecret checks a client's id and secret (client_secret_basic or _post), from the
// IP of src. Failures are counted per client id and per IP (see Config.FailureLimit) and a
// wrong secret for a registered client is audited. Refusals: ErrInvalidClient, or a
// *ThrottledError that wraps it.
func (s *Service) AuthenticateSecret(ctx context.Context, src audit.Source, id, secret string) (Principal, error) {
	if id == "" || len(id) > maxCredentialLength || len(secret) > maxCredentialLength {
		return Principal{}, ErrInvalidClient
	}
	keys := [2]string{"client:" + id, "ip:" + src.IP}
	if s.failures != nil {
		if wait := s.failures.Blocked(keys[:]...); wait > 0 {
			return Principal{}, &ThrottledError{Wait: wait}
		}
	}
	c, err := s.client(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("authenticate client: %w", err)
	}
	now := s.now()
	current := secretMatches(c.SecretHash, secret)
	previous := !current && c.PreviousExpiresAt != nil && now.Before(*c.PreviousExpiresAt) && secretMatches(c.PreviousSecretHash, secret)
	if err != nil { // unknown: spend the same comparison
		secretMatches(dummyHash, secret)
	}
	if err != nil || (!current && !previous) || c.Disabled {
		// Counted after the check, atomically: of parallel failures only the first within the
		// limit are answered (and audited) as failures, the rest as throttled.
		if s.failures != nil {
			if wait := s.failures.Failed(keys[:]...); wait > 0 {
				return Principal{}, &ThrottledError{Wait: wait}
			}
		}
		if err == nil && !current && !previous {
			ev := src.Event(audit.ClientAuthFailed)
			ev.ClientID = c.ID
			if rerr := s.store.RecordAuditEvents(ctx, ev); rerr != nil {
				return Principal{}, fmt.Errorf("audit client authentication: %w", rerr)
			}
		}
		return Principal{}, ErrInvalidClient
	}
	if c.LastUsedAt == nil || now.Sub(*c.LastUsedAt) >= lastUsedGrain {
		if err := s.store.TouchAPIClient(ctx, c.ID, now, lastUsedGrain); err != nil {
			return Principal{}, err
		}
		if s.cfg.Cache != nil {
			s.cfg.Cache.ClientUsed(c.ID, now)
		}
	}
	return Principal{Client: c, Scopes: c.Scopes, ByPreviousSecret: previous}, nil
}

// IssuedToken is a client token and what it grants.
type IssuedToken struct {
	Token     string
	Scopes    []string
	ExpiresIn time.Duration
}

// IssueToken is the client credentials grant for an authenticated client: a client token
// with the requested scopes (nil: all the client holds). A token issued with a previous
// secret expires with that secret. Refusals: ErrInvalidScope.
func (s *Service) IssueToken(p Principal, requested []string) (IssuedToken, error) {
	scopes := p.Client.Scopes
	if requested != nil {
		for _, sc := range requested {
			if !slices.Contains(p.Client.Scopes, sc) {
				return IssuedToken{}, ErrInvalidScope
			}
		}
		scopes, _ = normalizeScopes(requested)
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.cfg.TokenLifetime)
	if p.ByPreviousSecret && p.Client.PreviousExpiresAt != nil && p.Client.PreviousExpiresAt.Before(exp) {
		exp = p.Client.PreviousExpiresAt.Truncate(time.Second)
		if !exp.After(now) {
			return IssuedToken{}, ErrInvalidClient
		}
	}
	hash := p.Client.SecretHash
	if p.ByPreviousSecret {
		hash = p.Client.PreviousSecretHash
	}
	jti := secretTag(hash) + "." + randomText(idBytes)
	raw, err := s.tokens.SignClient(token.ClientClaims{ClientID: p.Client.ID, Scopes: scopes, ID: jti, IssuedAt: now, ExpiresAt: exp})
	if err != nil {
		return IssuedToken{}, err
	}
	return IssuedToken{Token: raw, Scopes: scopes, ExpiresIn: exp.Sub(now)}, nil
}

// AuthenticateToken checks a client token and reads its client (from the auth cache, which
// every change of a client empties), so that a disabled or deleted client, a scope taken
// away, or a rotation's overlap ending stops its tokens at the next request on this instance
// and within the cache's poll on every other. Refusals: ErrInvalidClient.
func (s *Service) AuthenticateToken(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.ParseToken(raw)
	if err != nil {
		return Principal{}, ErrInvalidClient
	}
	return s.principal(ctx, claims)
}

// ParseToken verifies a client token without reading its client; Check finishes the job. A
// token verified before is taken from a bounded cache until it expires: the signature check
// is the larger part of the cost, and what can change (the client) is read every time.
func (s *Service) ParseToken(raw string) (token.ClientClaims, error) {
	if c, ok := s.verified.get(raw, s.now()); ok {
		return c, nil
	}
	c, err := s.tokens.ParseClient(raw)
	if err == nil {
		s.verified.add(raw, c)
	}
	return c, err
}

// principal is the client of verified claims, if it may still use them.
func (s *Service) principal(ctx context.Context, claims token.ClientClaims) (Principal, error) {
	c, err := s.client(ctx, claims.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, ErrInvalidClient
	case err != nil:
		return Principal{}, fmt.Errorf("load api client: %w", err)
	case c.Disabled:
		return Principal{}, ErrInvalidClient
	}
	// Issued with the current secret, or with the one the last rotation replaced, while its
	// overlap lasts; a secret replaced before is forgotten.
	tag, _, _ := strings.Cut(claims.ID, ".")
	switch {
	case tag == secretTag(c.SecretHash):
	case tag == secretTag(c.PreviousSecretHash) && c.PreviousExpiresAt != nil && s.now().Before(*c.PreviousExpiresAt):
	default:
		return Principal{}, ErrInvalidClient
	}
	var scopes []string
	for _, sc := range claims.Scopes {
		if slices.Contains(c.Scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return Principal{Client: c, Scopes: scopes}, nil
}

// Check is AuthenticateToken for claims ParseToken verified.
func (s *Service) Check(ctx context.Context, claims token.ClientClaims) (Principal, error) {
	return s.principal(ctx, claims)
}

// client reads client id through the auth cache, if any: a cached client is as current as
// the cache's guarantees (dropped by its own changes at once, by other instances' at the next
// read of the change log, nothing served while stale). Unknown clients are not cached. It
// returns store.ErrAPIClientNotFound.
func (s *Service) client(ctx context.Context, id string) (store.APIClient, error) {
	cache := s.cfg.Cache
	if cache == nil {
		return s.store.APIClientByID(ctx, id)
	}
	if c, ok := cache.Client(id); ok {
		return c, nil
	}
	gen := cache.ClientGen()
	c, err := s.store.APIClientByID(ctx, id)
	if err == nil {
		cache.AddClient(gen, c)
	}
	return c, err
}
