package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Refresh exchanges the refresh token raw, presented by client, for a new access token of its
// live session and, with rotation on, a new refresh token in its place (without rotation the
// pair's Refresh is empty). Refusals: *userfields.Errors for an empty raw, the token's (see tokenError and loadSession),
// ErrSessionTooOld, and ErrRefreshReused for a retired token presented again after the grace
// window, which revokes its session.
func (s *Service) Refresh(ctx context.Context, raw string, client Client) (TokenPair, error) {
	pair, outcome, err := s.refresh(ctx, raw, client)
	if outcome != "" {
		s.metrics.Refresh(outcome)
	}
	return pair, err
}

// refresh is Refresh, and how it ended for the metrics ("" when it failed to tell).
func (s *Service) refresh(ctx context.Context, raw string, client Client) (TokenPair, metrics.RefreshOutcome, error) {
	if err := required(map[string]string{"refresh": raw}); err != nil {
		return TokenPair{}, "", err
	}
	claims, err := s.tokens.Parse(raw, token.Refresh)
	if err != nil {
		return TokenPair{}, metrics.RefreshInvalid, tokenError(err)
	}
	now := s.now()

	// 1. The common case in one statement where the store can (PostgreSQL): a live token of
	// a live session, rotated. Anything it does not rotate takes the path below, which
	// tells why.
	var next store.RefreshToken // the replacement, when rotating
	if s.cfg.RotateRefreshTokens {
		next = store.RefreshToken{ID: newTokenID(), AccessID: newTokenID(), IssuedAt: now}
		rot, ok, err := s.store.RotateLiveRefreshToken(ctx, claims.ID, next, now, store.LiveSession{
			UserID: claims.UserID, SessionID: claims.SessionID,
			RefreshLifetime: s.cfg.RefreshTokenLifetime, MaxLifetime: s.cfg.SessionMaxLifetime,
		})
		if err != nil {
			return TokenPair{}, "", err
		}
		if ok {
			return s.rotated(claims.UserID, rot.Replacement, rot.SessionAuthTime, rot.SessionAMR, metrics.RefreshRotated)
		}
	}

	// 2. The user and session, as for any token.
	p, err := s.loadSession(ctx, claims)
	if refusedSession(err) {
		return TokenPair{}, metrics.RefreshInvalid, err
	} else if err != nil {
		return TokenPair{}, "", err
	}

	// 3. Without rotation: a new access token, the refresh token stays.
	if !s.cfg.RotateRefreshTokens {
		if err := s.store.TouchSession(ctx, p.Session.ID, now); err != nil {
			return TokenPair{}, "", fmt.Errorf("touch session: %w", err)
		}
		access, err := s.sign(s.accessClaims(p.User.ID, p.Session.ID, newTokenID(), p.Session.AuthTime, now, p.Session.AMR))
		if err != nil {
			return TokenPair{}, "", err
		}
		return TokenPair{Access: access}, metrics.RefreshAccessOnly, nil
	}

	// 4. Rotation: retire the token for its replacement, unless it was retired already.
	expires := s.refreshExpiry(p.Session.CreatedAt, now)
	if !expires.After(now) { // a session from before SessionMaxLifetime was lowered
		return TokenPair{}, metrics.RefreshInvalid, ErrSessionTooOld
	}
	next.ExpiresAt = expires
	rot, err := s.store.RotateRefreshToken(ctx, claims.ID, next, now)
	if errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, metrics.RefreshInvalid, ErrTokenInvalid
	}
	if err != nil {
		return TokenPair{}, "", err
	}
	if rot.Rotated {
		return s.rotated(p.User.ID, rot.Replacement, p.Session.AuthTime, p.Session.AMR, metrics.RefreshRotated)
	}

	// 5. A retired token within the grace window (a client that retried, or two tabs):
	// the pair its rotation issued, again.
	inGrace := s.cfg.RefreshReuseGrace > 0 && rot.Old.UsedAt != nil && now.Sub(*rot.Old.UsedAt) <= s.cfg.RefreshReuseGrace
	if inGrace && rot.Replacement.ID != "" {
		return s.rotated(p.User.ID, rot.Replacement, p.Session.AuthTime, p.Session.AMR, metrics.RefreshGrace)
	}

	// 6. A retired token came back later: it was copied. Kill the whole session, thief and
	// owner alike.
	if _, err := s.store.RevokeSession(ctx, p.Session.ID, now, s.source(client, nil).Event(audit.RefreshReuseDetected)); err != nil {
		return TokenPair{}, "", fmt.Errorf("revoke session after refresh token reuse: %w", err)
	}
	s.log.WarnContext(ctx, "refresh token reuse: session revoked", "user_id", p.User.ID, "session_id", p.Session.ID)
	s.metrics.Revoked(metrics.RevokeReuse)
	return TokenPair{}, metrics.RefreshReuseDetected, ErrRefreshReused
}

// rotated is the pair of the refresh token rt of a session authenticated at authTime by the
// methods amr, the answer of a rotating refresh.
func (s *Service) rotated(userID int64, rt store.RefreshToken, authTime time.Time, amr []string, outcome metrics.RefreshOutcome) (TokenPair, metrics.RefreshOutcome, error) {
	pair, err := s.signPair(userID, rt, authTime, amr)
	if err != nil {
		return TokenPair{}, "", err
	}
	return pair, outcome, nil
}
