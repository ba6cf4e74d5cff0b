package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/userfields"
)

// maxPasswordChangeTries bounds how often a password change checks the old password again
// when the stored hash changed between its check and the write (see ChangePassword).
const maxPasswordChangeTries = 3

// PasswordChange is a change of one's own password; a nil field was not given.
type PasswordChange struct{ Old, New *string }

// passwordChangeEvents are what the check of the old password records, as a login's are.
var passwordChangeEvents = throttle.Events{Failed: audit.PasswordChangeFailed, Throttled: audit.PasswordChangeThrottled}

// ChangePassword changes the caller's password: the old one must be right (a wrong one counts
// against the login throttle, and is recorded as a failed password change), the new one must
// pass the policy. Every session of the caller ends, the current one too (whoever shares it
// with a copied refresh token is out), and the caller continues with the returned token pair
// of a new session.
//
// Refusals: ErrUserNotFound (the caller is gone), ErrSessionRevoked (the caller's session was
// revoked meanwhile), *userfields.Errors (missing or blank fields, a wrong old password:
// MsgWrongOldPassword, the policy's objections with any of those; Policy set when only the
// policy objected), a *ThrottledError, password.ErrBusy.
func (s *Service) ChangePassword(ctx context.Context, caller Caller, in PasswordChange) (TokenPair, error) {
	src := s.callerSource(caller)
	// The caller as stored now: the authentication cache keeps no password hashes.
	user, err := s.store.UserByID(ctx, caller.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, ErrUserNotFound
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("get user %d: %w", caller.UserID, err)
	}
	fields := passwordChangeFields(in, user)
	if in.Old == nil || *in.Old == "" {
		return TokenPair{}, passwordChangeError(fields)
	}
	old := *in.Old

	// Reserved before the old password is hashed, as a login is (see Login).
	attempt, wait, err := s.logins.Begin(ctx, user.Username, src, passwordChangeEvents)
	if err != nil {
		return TokenPair{}, fmt.Errorf("password change throttle: %w", err)
	}
	if wait > 0 {
		return TokenPair{}, &ThrottledError{Err: ErrPasswordChangeThrottled, Wait: wait}
	}
	match, err := s.checkPassword(ctx, user, old)
	if errors.Is(err, password.ErrBusy) {
		if err := attempt.Abandon(ctx); err != nil {
			s.log.WarnContext(ctx, "withdraw password change attempt", "err", err)
		}
		return TokenPair{}, err
	}
	if err != nil {
		return TokenPair{}, err
	}
	if !match { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return TokenPair{}, fmt.Errorf("record failed password change: %w", err)
		}
		fields["old_password"] = []string{MsgWrongOldPassword}
	} else if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return TokenPair{}, fmt.Errorf("record password check: %w", err)
	}
	if len(fields) > 0 {
		return TokenPair{}, passwordChangeError(fields)
	}

	hash, err := s.hasher.Hash(ctx, *in.New)
	if errors.Is(err, password.ErrBusy) {
		return TokenPair{}, err
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("hash password: %w", err)
	}
	changed := src.Event(audit.PasswordChanged)
	changed.Fields = []string{"password"}
	next, refresh := s.newSession(user.ID, caller.Client)
	// The old password was just checked, now, in a session that authenticated by its amr (a
	// second factor, perhaps): the new session keeps that amr, with auth_time now.
	if _, cur, err := s.store.UserSession(ctx, user.ID, caller.SessionID); err == nil {
		next.AMR = cur.AMR
	} else if !errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, fmt.Errorf("read session: %w", err)
	}
	for try := 1; ; try++ {
		_, err = s.store.ChangePassword(ctx, store.PasswordChange{
			UserID: user.ID, OldHash: user.PasswordHash, NewHash: hash, Current: caller.SessionID,
			Next: &next, First: refresh, Events: []store.AuditEvent{changed},
		})
		if !errors.Is(err, store.ErrPasswordChanged) || try == maxPasswordChangeTries {
			break
		}
		// The hash changed since the check: another change (the old password may be wrong
		// now) or a login's rehash (it is still right). Check against the current one.
		if user, err = s.store.UserByID(ctx, user.ID); err != nil {
			break
		}
		if match, err = s.checkPassword(ctx, user, old); err != nil || !match {
			break
		}
	}
	switch {
	case errors.Is(err, password.ErrBusy):
		return TokenPair{}, err
	case err == nil && !match, errors.Is(err, store.ErrPasswordChanged):
		// The old password matched the hash first checked, so the attempt was withdrawn: the
		// refusal goes to the audit log here, and does not count against the throttle.
		failed := src.Event(audit.PasswordChangeFailed)
		failed.TargetID = user.ID
		if err := s.store.RecordAuditEvents(ctx, failed); err != nil {
			return TokenPair{}, fmt.Errorf("record failed password change: %w", err)
		}
		return TokenPair{}, userfields.Invalid(map[string][]string{"old_password": {MsgWrongOldPassword}})
	case errors.Is(err, store.ErrUserNotFound):
		return TokenPair{}, ErrUserNotFound
	case errors.Is(err, store.ErrSessionNotFound): // the caller's session was revoked meanwhile
		return TokenPair{}, ErrSessionRevoked
	case err != nil:
		return TokenPair{}, fmt.Errorf("change password of user %d: %w", user.ID, err)
	}
	s.metrics.Revoked(metrics.RevokePasswordChange)
	refresh.SessionID = next.ID
	return s.signPair(user.ID, refresh, next.CreatedAt, next.AMR)
}

// passwordChangeFields reports what is wrong with in short of checking the old password:
// missing or blank fields, and the policy's objections to the new password.
func passwordChangeFields(in PasswordChange, user store.User) map[string][]string {
	fields := map[string][]string{}
	check := func(name string, v *string) {
		switch {
		case v == nil:
			fields[name] = []string{userfields.MsgRequired}
		case *v == "":
			fields[name] = []string{userfields.MsgBlank}
		}
	}
	check("old_password", in.Old)
	check("new_password", in.New)
	if _, reported := fields["new_password"]; !reported {
		if policy := password.Validate(*in.New, password.Attributes{
			Username: user.Username, FirstName: user.FirstName, LastName: user.LastName, Email: user.Email,
		}); len(policy) > 0 {
			fields["new_password"] = policy
		}
	}
	return fields
}

// passwordChangeError is the refusal of fields: the policy's alone when only the policy
// refused the new password, as for a user's password, all of them otherwise.
func passwordChangeError(fields map[string][]string) error {
	if policy, ok := fields["new_password"]; ok && len(fields) == 1 && policy[0] != userfields.MsgBlank && policy[0] != userfields.MsgRequired {
		return userfields.PolicyRefused("new_password", policy)
	}
	return userfields.Invalid(fields)
}

// emailChangeEvents are what the check of the password of a change of address records.
var emailChangeEvents = throttle.Events{Failed: audit.EmailChangeFailed, Throttled: audit.PasswordChangeThrottled}

// CheckOwnPassword checks the caller's password before a change that needs it (a change of
// address), as ChangePassword checks the old one: reserved against the login throttle first,
// a wrong one recorded as a failure. It returns the caller as stored. Refusals:
// ErrUserNotFound, *userfields.Errors (field "password": missing, blank or wrong), a
// *ThrottledError, password.ErrBusy.
func (s *Service) CheckOwnPassword(ctx context.Context, caller Caller, plain string) (store.User, error) {
	return s.checkOwnPassword(ctx, caller, plain, emailChangeEvents)
}

// checkOwnPassword is CheckOwnPassword recording events (the change it confirms).
func (s *Service) checkOwnPassword(ctx context.Context, caller Caller, plain string, events throttle.Events) (store.User, error) {
	if err := required(map[string]string{"password": plain}); err != nil {
		return store.User{}, err
	}
	user, err := s.store.UserByID(ctx, caller.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, ErrUserNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %d: %w", caller.UserID, err)
	}
	attempt, wait, err := s.logins.Begin(ctx, user.Username, s.callerSource(caller), events)
	if err != nil {
		return store.User{}, fmt.Errorf("password check throttle: %w", err)
	}
	if wait > 0 {
		return store.User{}, &ThrottledError{Err: ErrPasswordChangeThrottled, Wait: wait}
	}
	match, err := s.checkPassword(ctx, user, plain)
	if err != nil {
		if err := attempt.Abandon(ctx); err != nil {
			s.log.WarnContext(ctx, "withdraw password check", "err", err)
		}
		return store.User{}, err
	}
	if !match {
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return store.User{}, fmt.Errorf("record failed password check: %w", err)
		}
		return store.User{}, userfieldsWrongPassword()
	}
	if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return store.User{}, fmt.Errorf("record password check: %w", err)
	}
	return user, nil
}
