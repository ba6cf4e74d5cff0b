package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Logout revokes the session of the refresh token raw, which must be the caller's own.
// Refusals: *userfields.Errors for an empty raw, the token's (see tokenError), ErrNotOwnToken, ErrSessionRevoked when the session
// is gone or was revoked already.
func (s *Service) Logout(ctx context.Context, caller Caller, raw string) error {
	if err := required(map[string]string{"refresh": raw}); err != nil {
		return err
	}
	claims, err := s.tokens.Parse(raw, token.Refresh)
	if err != nil {
		return tokenError(err)
	}
	if claims.UserID != caller.UserID {
		return ErrNotOwnToken
	}
	revoked, err := s.store.RevokeSession(ctx, claims.SessionID, s.now(), s.callerSource(caller).Event(audit.Logout))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !revoked) {
		return ErrSessionRevoked
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	s.metrics.Revoked(metrics.RevokeLogout)
	return nil
}

// LogoutAll revokes every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, caller Caller) error {
	if _, err := s.store.RevokeUserSessions(ctx, caller.UserID, s.now(), s.callerSource(caller).Event(audit.LogoutAll)); err != nil {
		return fmt.Errorf("revoke sessions of user %d: %w", caller.UserID, err)
	}
	s.metrics.Revoked(metrics.RevokeLogoutAll)
	return nil
}

// Sessions returns the live sessions of user userID, newest first.
func (s *Service) Sessions(ctx context.Context, userID int64) ([]store.Session, error) {
	return s.store.LiveSessions(ctx, userID, s.now())
}

// RevokeSession logs out one of the caller's sessions, ErrNotFound if they have no session
// id.
func (s *Service) RevokeSession(ctx context.Context, caller Caller, id string) error {
	err := s.store.RevokeUserSession(ctx, caller.UserID, id, s.now(), s.callerSource(caller).Event(audit.SessionRevoked))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	s.metrics.Revoked(metrics.RevokeSession)
	return nil
}

// UserSessions returns the live sessions of user userID, newest first, for staff;
// ErrNotFound if there is no such user.
func (s *Service) UserSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	if err := s.userExists(ctx, userID); err != nil {
		return nil, err
	}
	return s.store.LiveSessions(ctx, userID, s.now())
}

// RevokeUserSession revokes one live session of user userID, for superusers, and records the
// caller as the actor. An unknown user and another user's session are ErrNotFound alike.
func (s *Service) RevokeUserSession(ctx context.Context, caller Caller, userID int64, id string) error {
	err := s.store.RevokeUserSession(ctx, userID, id, s.now(), s.callerSource(caller).Event(audit.SessionRevoked))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoke session of user %d: %w", userID, err)
	}
	s.metrics.Revoked(metrics.RevokeUserSession)
	return nil
}

// LogoutUser revokes every live session of user userID, for superusers, and records the
// caller as the actor (no event when the user had no live session); ErrNotFound if there is
// no such user.
func (s *Service) LogoutUser(ctx context.Context, caller Caller, userID int64) error {
	// A user deleted between the two calls has no sessions left: the revocation finds none.
	if err := s.userExists(ctx, userID); err != nil {
		return err
	}
	if _, err := s.store.RevokeUserSessions(ctx, userID, s.now(), s.callerSource(caller).Event(audit.LogoutAll)); err != nil {
		return err
	}
	s.metrics.Revoked(metrics.RevokeUserEverywhere)
	return nil
}

func (s *Service) userExists(ctx context.Context, id int64) error {
	_, err := s.store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("get user %d: %w", id, err)
	}
	return nil
}
