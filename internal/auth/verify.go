package auth

import (
	"context"
	"errors"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Authenticate checks a bearer access token, then loads its user and session, so that
// logout, deactivation and deletion take effect on the very next request. With a cache, a
// token verified before is taken from it (see authcache for why that is as strict).
// Refusals: the token's (see tokenError) and loadSession's.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	c := s.cfg.Cache
	var gen uint64
	if c != nil {
		if e, ok := c.Get(raw); ok {
			s.metrics.Verified(metrics.VerifyCacheHit)
			return Principal{User: e.User, Session: e.Session}, nil
		}
		gen = c.Gen() // before anything is read: a change from now on voids what is read
	}
	claims, err := s.tokens.Parse(raw, token.Access)
	if err != nil {
		s.metrics.Verified(metrics.VerifyInvalid)
		return Principal{}, tokenError(err)
	}
	p, err := s.loadSession(ctx, claims)
	switch {
	case err == nil:
		s.metrics.Verified(metrics.VerifyOK)
		if c != nil {
			c.Add(gen, raw, authcache.Entry{Claims: claims, User: p.User, Session: p.Session})
		}
	case refusedSession(err):
		s.metrics.Verified(metrics.VerifyRejected)
	}
	return p, err
}

// Verify reports whether a token, access or refresh, is valid and its session live: nil, or
// the token's refusal (see tokenError and loadSession), *userfields.Errors for an empty raw. A
// refresh token is valid while it can still be exchanged: recorded and not retired.
func (s *Service) Verify(ctx context.Context, raw string) error {
	if err := required(map[string]string{"token": raw}); err != nil {
		return err
	}
	claims, err := s.tokens.Parse(raw, token.Access)
	if errors.Is(err, token.ErrWrongType) {
		claims, err = s.tokens.Parse(raw, token.Refresh)
	}
	if err != nil {
		return tokenError(err)
	}
	if _, err := s.loadSession(ctx, claims); err != nil {
		return err
	}
	if claims.Type == token.Refresh {
		rt, err := s.store.RefreshTokenByID(ctx, claims.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rt.UsedAt != nil) {
			return ErrTokenInvalid
		}
		if err != nil {
			return err
		}
	}
	return nil
}
