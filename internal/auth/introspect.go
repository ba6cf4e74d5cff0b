package auth

import (
	"context"
	"errors"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Inspect is Authenticate that also returns the token's claims, for introspection (RFC
// 7662): served from the cache as an authenticated request is. Refusals: Authenticate's.
func (s *Service) Inspect(ctx context.Context, raw string) (Principal, token.Claims, error) {
	if e, ok := s.cached(raw); ok {
		return Principal{User: e.User, Session: e.Session, ACR: e.Claims.ACR, AuthTime: e.Claims.AuthTime}, e.Claims, nil
	}
	c := s.cfg.Cache
	var gen uint64
	if c != nil {
		gen = c.Gen() // before anything is read: a change from now on voids what is read
	}
	claims, err := s.tokens.Parse(raw, token.Access)
	if err != nil {
		s.metrics.Verified(metrics.VerifyInvalid)
		return Principal{}, token.Claims{}, tokenError(err)
	}
	p, err := s.loadSession(ctx, claims)
	p.ACR, p.AuthTime = claims.ACR, claims.AuthTime
	switch {
	case err == nil:
		s.metrics.Verified(metrics.VerifyOK)
		if c != nil {
			c.Add(gen, raw, authcache.Entry{Claims: claims, User: p.User, Session: p.Session})
		}
	case refusedSession(err):
		s.metrics.Verified(metrics.VerifyRejected)
	}
	return p, claims, err
}

// cached is the auth cache's entry for the access token raw, if it holds one.
func (s *Service) cached(raw string) (authcache.Entry, bool) {
	if s.cfg.Cache == nil {
		return authcache.Entry{}, false
	}
	e, ok := s.cfg.Cache.Get(raw)
	if ok {
		s.metrics.Verified(metrics.VerifyCacheHit)
	}
	return e, ok
}

// InspectRefresh checks a refresh token as Verify does (live while it can be exchanged:
// recorded, not retired, its session live) and returns its user, session and claims.
// Refusals: the token's (see tokenError), loadSession's, ErrTokenInvalid for a retired one.
func (s *Service) InspectRefresh(ctx context.Context, raw string) (Principal, token.Claims, error) {
	claims, err := s.tokens.ParseEither(raw, token.Refresh, token.Refresh) // its signature remembered
	if err != nil {
		return Principal{}, token.Claims{}, tokenError(err)
	}
	p, err := s.loadRefresh(ctx, claims)
	if err != nil {
		return Principal{}, token.Claims{}, err
	}
	return p, claims, nil
}

// IsRefusal reports whether err, from Inspect or InspectRefresh, refuses the token rather
// than failing to judge it (a database outage).
func IsRefusal(err error) bool {
	return refusedSession(err) || errors.Is(err, ErrTokenWrongType) || errors.Is(err, ErrTokenNoUser)
}

// RevokeToken ends the session of a valid access or refresh token (RFC 7009), recording ev
// (with the token's user as target and its session) through the store's revocation, which
// logs the change for every instance's cache. It reports whether a session was revoked; a
// token that is not a valid user token, or whose session is already over, revokes nothing
// and is no error.
func (s *Service) RevokeToken(ctx context.Context, raw string, ev store.AuditEvent) (bool, error) {
	claims, err := s.tokens.ParseEither(raw, token.Access, token.Refresh)
	if err != nil {
		return false, nil
	}
	err = s.store.RevokeUserSession(ctx, claims.UserID, claims.SessionID, s.now(), ev)
	if errors.Is(err, store.ErrSessionNotFound) {
		return false, nil
	}
	return err == nil, err
}

// RevokedEvent is the audit event of a revocation through the endpoint, by src.
func RevokedEvent(src audit.Source) store.AuditEvent { return src.Event(audit.TokenRevoked) }
