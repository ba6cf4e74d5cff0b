package auth

import (
	"context"

	"github.com/authapi/authapi/internal/token"
)

// Authenticate checks a bearer access token, then loads its user and session, so that
// logout, deactivation and deletion take effect on the very next request. With a cache, a
// token verified before is taken from it (see authcache for why that is as strict).
// Refusals: the token's (see tokenError) and loadSession's.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	p, _, err := s.Inspect(ctx, raw)
	return p, err
}

// Verify reports whether a token, access or refresh, is valid and its session live: nil, or
// the token's refusal (see tokenError and loadSession), *userfields.Errors for an empty raw. A
// refresh token is valid while it can still be exchanged: recorded and not retired.
func (s *Service) Verify(ctx context.Context, raw string) error {
	if err := required(map[string]string{"token": raw}); err != nil {
		return err
	}
	// An access token authenticated before is in the cache, as strict as the database.
	if _, ok := s.cached(raw); ok {
		return nil
	}
	claims, err := s.tokens.ParseEither(raw, token.Access, token.Refresh)
	if err != nil {
		return tokenError(err)
	}
	if claims.Type == token.Refresh {
		_, err = s.loadRefresh(ctx, claims)
	} else {
		_, err = s.loadSession(ctx, claims)
	}
	return err
}
