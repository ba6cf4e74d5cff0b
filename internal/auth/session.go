package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// newSession is a session of user userID starting now, from client, and its first refresh
// token, to record.
func (s *Service) newSession(userID int64, client Client) (store.Session, store.RefreshToken) {
	now := s.now()
	sess := store.Session{
		ID:         newSessionID(),
		UserID:     userID,
		CreatedAt:  now,
		LastUsedAt: now,
		UserAgent:  client.UserAgent,
		IP:         client.IP,
		AMR:        passwordAMR,
	}
	refresh := store.RefreshToken{ID: newTokenID(), AccessID: newTokenID(), IssuedAt: now, ExpiresAt: s.refreshExpiry(sess.CreatedAt, now)}
	sess.ExpiresAt = refresh.ExpiresAt
	return sess, refresh
}

// refreshExpiry is when a refresh token issued at now for a session created at created
// expires: the store's one rule (store.RefreshExpiry, which its live rotation applies in SQL).
func (s *Service) refreshExpiry(created, now time.Time) time.Time {
	return store.RefreshExpiry(created, now, s.cfg.RefreshTokenLifetime, s.cfg.SessionMaxLifetime)
}

// FirstPartyClientID is the client_id of the access tokens of sessions the password login
// starts: authapi's own API and console, a public client (no secret).
const FirstPartyClientID = "authapi"

// passwordAMR is the amr (RFC 8176) of a session started by a password login.
var passwordAMR = []string{"pwd"}

// acrOf is the acr of tokens whose amr is amr: "aal2" when a second factor was used (RFC 8176
// "mfa"), else "aal1" (NIST SP 800-63B levels, the values the step-up checks will compare).
func acrOf(amr []string) string {
	if slices.Contains(amr, "mfa") {
		return acrAAL2
	}
	return acrAAL1
}

// The acr values (NIST SP 800-63B authenticator assurance levels).
const (
	acrAAL1 = "aal1"
	acrAAL2 = "aal2"
)

// accessClaims are the claims of an access token of a session whose user last authenticated
// at authTime (the session's creation, or its last re-authentication) by the methods amr,
// issued at issued.
func (s *Service) accessClaims(userID int64, sessionID, id string, authTime, issued time.Time, amr []string) token.Claims {
	if len(amr) == 0 {
		amr = passwordAMR
	}
	return token.Claims{Type: token.Access, UserID: userID, SessionID: sessionID, ID: id,
		IssuedAt: issued, ExpiresAt: issued.Add(s.cfg.AccessTokenLifetime),
		ClientID: FirstPartyClientID, AuthTime: authTime, AMR: amr, ACR: acrOf(amr)}
}

// signPair signs the refresh token rt of a session authenticated at authTime by the methods
// amr, and the access token issued with it. Everything comes from rt and the session, so the
// same pair can be signed again for a client within the reuse grace window.
func (s *Service) signPair(userID int64, rt store.RefreshToken, authTime time.Time, amr []string) (TokenPair, error) {
	access, err := s.sign(s.accessClaims(userID, rt.SessionID, rt.AccessID, authTime, rt.IssuedAt, amr))
	if err != nil {
		return TokenPair{}, err
	}
	refresh, err := s.sign(token.Claims{Type: token.Refresh, UserID: userID, SessionID: rt.SessionID, ID: rt.ID,
		IssuedAt: rt.IssuedAt, ExpiresAt: rt.ExpiresAt})
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{Access: access, Refresh: refresh}, nil
}

func (s *Service) sign(c token.Claims) (string, error) {
	raw, err := s.tokens.Sign(c)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", c.Type, err)
	}
	return raw, nil
}

// loadSession finds the user and live session of a verified token: the one rule of a
// session's liveness for every token. Refusals: ErrUserNotFound, ErrUserInactive,
// ErrSessionRevoked, ErrTokenInvalid (see refusedSession). The store's live rotation checks
// the same in SQL (store.RotateLiveRefreshToken).
func (s *Service) loadSession(ctx context.Context, claims token.Claims) (Principal, error) {
	user, sess, err := s.store.UserSession(ctx, claims.UserID, claims.SessionID)
	return s.judgeSession(claims, user, sess, err)
}

// loadRefresh is loadSession for a refresh token, which is live while it can still be
// exchanged: recorded and not retired. The token is read with the user and session, in one
// round trip on PostgreSQL. Refusals: loadSession's, ErrTokenInvalid for a token unknown or
// retired.
func (s *Service) loadRefresh(ctx context.Context, claims token.Claims) (Principal, error) {
	user, sess, rt, err := s.store.UserSessionRefresh(ctx, claims.UserID, claims.SessionID, claims.ID)
	unknown := errors.Is(err, store.ErrRefreshTokenNotFound)
	if unknown {
		err = nil // the user's and session's refusals come first
	}
	p, err := s.judgeSession(claims, user, sess, err)
	if err == nil && (unknown || rt.UsedAt != nil) {
		return Principal{}, ErrTokenInvalid
	}
	return p, err
}

// judgeSession is loadSession's verdict on what the store answered.
func (s *Service) judgeSession(claims token.Claims, user store.User, sess store.Session, err error) (Principal, error) {
	switch {
	case errors.Is(err, store.ErrUserNotFound):
		return Principal{}, ErrUserNotFound
	case errors.Is(err, store.ErrSessionNotFound):
		return Principal{}, ErrSessionRevoked
	case err != nil:
		return Principal{}, fmt.Errorf("load user %d and session: %w", claims.UserID, err)
	case !user.IsActive:
		return Principal{}, ErrUserInactive
	case sess.RevokedAt != nil:
		return Principal{}, ErrSessionRevoked
	case !sess.Live(s.now()):
		return Principal{}, ErrTokenInvalid
	}
	return Principal{User: user, Session: sess}, nil
}

// refusedSession reports whether err, from loadSession, refuses the token (rather than
// failing to judge it).
func refusedSession(err error) bool {
	return errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrUserInactive) ||
		errors.Is(err, ErrSessionRevoked) || errors.Is(err, ErrTokenInvalid)
}

// tokenError is the refusal of a token the token manager did not accept: its wrong type or
// missing user when that is why, ErrTokenInvalid for anything else (which tells no more).
func tokenError(err error) error {
	switch {
	case errors.Is(err, token.ErrWrongType):
		return ErrTokenWrongType
	case errors.Is(err, token.ErrNoUser):
		return ErrTokenNoUser
	}
	return ErrTokenInvalid
}
