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

// Login is a login's input: the credentials, and the client they come from.
type Login struct {
	Username, Password string
	Client             Client
}

// What a login records in the audit log, all named here: a reserved attempt is a failure
// until the password proves right (loginEvents.Failed, withdrawn then), a refused one is
// counted as throttled, a success is recorded with its session (startSession), and a
// password that changed after it was checked is a failure again.
var loginEvents = throttle.Events{Failed: audit.LoginFailed, Throttled: audit.LoginThrottled}

// Login checks in's password, starts a session and returns its first tokens. Refusals:
// *userfields.Errors (a missing username or password), ErrBadCredentials (unknown user, wrong
// password, inactive user alike), a *ThrottledError, password.ErrBusy, and for an account
// with an active second factor an *MFARequiredError carrying the challenge.
func (s *Service) Login(ctx context.Context, in Login) (TokenPair, error) {
	if err := required(map[string]string{"username": in.Username, "password": in.Password}); err != nil {
		return TokenPair{}, err
	}
	// The attempt is recorded as a failure before the password is hashed, so that however
	// many arrive at once, no more are checked than the limits allow.
	attempt, wait, err := s.logins.Begin(ctx, in.Username, s.source(in.Client, nil), loginEvents)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login throttle: %w", err)
	}
	if wait > 0 {
		s.metrics.Login(metrics.LoginThrottled)
		return TokenPair{}, &ThrottledError{Err: ErrLoginThrottled, Wait: wait}
	}
	user, ok, err := s.checkCredentials(ctx, in.Username, in.Password)
	if err != nil {
		// The password was not checked (the hasher was busy, or a failure): the attempt is no
		// failure.
		if err := attempt.Abandon(ctx); err != nil {
			s.log.WarnContext(ctx, "withdraw login attempt", "err", err)
		}
		if errors.Is(err, password.ErrBusy) {
			s.metrics.Login(metrics.LoginBusy)
		}
		return TokenPair{}, err
	}
	if !ok { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return TokenPair{}, fmt.Errorf("record failed login: %w", err)
		}
		s.metrics.Login(metrics.LoginFailed)
		return TokenPair{}, ErrBadCredentials
	}
	if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return TokenPair{}, fmt.Errorf("record successful login: %w", err)
	}
	hash := s.upgradeHash(ctx, user, in.Password)
	// An account with a second factor gets a challenge, no tokens (*MFARequiredError).
	if err := s.challengeFor(ctx, user, hash, in.Client); err != nil {
		return TokenPair{}, err
	}
	pair, err := s.startSession(ctx, user, hash, in.Client, passwordAMR)
	if errors.Is(err, store.ErrPasswordChanged) {
		// The password was changed after it was checked: it may no longer be the password.
		// The attempt was withdrawn as a success, so the refusal is recorded here.
		failed := s.source(in.Client, nil).Event(audit.LoginFailed)
		failed.TargetID = user.ID
		if err := s.store.RecordAuditEvents(ctx, failed); err != nil {
			return TokenPair{}, fmt.Errorf("record failed login: %w", err)
		}
		return TokenPair{}, ErrBadCredentials
	}
	if err != nil {
		return TokenPair{}, err
	}
	s.metrics.Login(metrics.LoginOK)
	return pair, nil
}

// checkCredentials reports whether username and password name an active user. Unknown users,
// wrong passwords and inactive users take the same path and about the same time, and are
// refused alike with password.ErrBusy when no hashing slot comes free in time.
func (s *Service) checkCredentials(ctx context.Context, username, plain string) (store.User, bool, error) {
	user, err := store.User{}, store.ErrNotFound
	if userfields.Storable(username) { // no stored username is otherwise; the database may refuse the query
		user, err = s.store.UserByUsername(ctx, username)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, s.hasher.VerifyDummy(ctx, plain)
	}
	if err != nil {
		return store.User{}, false, fmt.Errorf("find user: %w", err)
	}
	match, err := s.checkPassword(ctx, user, plain)
	if err != nil {
		return store.User{}, false, err
	}
	return user, match && user.IsActive, nil
}

// checkPassword reports whether plain is user's password. An unreadable hash matches nothing
// (and is logged) after the time a check takes; a busy hasher is password.ErrBusy.
func (s *Service) checkPassword(ctx context.Context, user store.User, plain string) (bool, error) {
	match, err := s.hasher.Verify(ctx, plain, user.PasswordHash)
	if errors.Is(err, password.ErrBusy) {
		return false, err
	}
	if err != nil {
		s.log.WarnContext(ctx, "unreadable password hash", "user_id", user.ID, "err", err)
		// Nothing was hashed (an unknown format, costs above the maxima): hash as for a wrong
		// password, so that the answer's time does not single such an account out.
		return false, s.hasher.VerifyDummy(ctx, plain)
	}
	return match, nil
}

// upgradeHash rehashes a just-verified password whose hash uses another algorithm (users
// imported from Django) or older costs, and returns the user's hash as it now stands (the new
// one if it replaced it). Failing to upgrade does not fail the login, and a busy hasher skips
// it: the next login upgrades.
func (s *Service) upgradeHash(ctx context.Context, user store.User, plain string) string {
	if !s.hasher.NeedsRehash(user.PasswordHash) {
		return user.PasswordHash
	}
	hash, err := s.hasher.Hash(ctx, plain)
	if errors.Is(err, password.ErrBusy) {
		s.log.InfoContext(ctx, "password hash upgrade skipped: hasher busy", "user_id", user.ID)
		return user.PasswordHash
	}
	replaced := false
	if err == nil {
		replaced, err = s.store.UpgradePasswordHash(ctx, user.ID, user.PasswordHash, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "upgrade password hash", "user_id", user.ID, "err", err)
	}
	if replaced {
		return hash
	}
	return user.PasswordHash
}

// startSession records a new session for user, whose password was checked against
// passwordHash and who authenticated by amr, and issues its first token pair. Every sign-in
// starts its session here, so the rules of who may have one live here: it fails with
// ErrEmailNotVerified for an account made by sign-up whose address is not verified (while
// RequireVerifiedEmail is on), and with store.ErrPasswordChanged when the user's hash has
// changed since.
func (s *Service) startSession(ctx context.Context, user store.User, passwordHash string, client Client, amr []string) (TokenPair, error) {
	if s.cfg.RequireVerifiedEmail && user.SignedUp && !user.EmailVerified {
		// Told only now, the sign-in proven: the answer reveals nothing to a guesser.
		refused := s.source(client, nil).Event(audit.LoginEmailUnverified)
		refused.TargetID = user.ID
		if err := s.store.RecordAuditEvents(ctx, refused); err != nil {
			return TokenPair{}, fmt.Errorf("record refused login: %w", err)
		}
		return TokenPair{}, ErrEmailNotVerified
	}
	sess, refresh := s.newSession(user.ID, client)
	sess.AMR = amr
	event := s.source(client, nil).Event(audit.LoginSucceeded)
	event.ActorID = user.ID
	if err := s.store.StartSession(ctx, &sess, refresh, passwordHash, event); err != nil {
		return TokenPair{}, fmt.Errorf("start session: %w", err)
	}
	refresh.SessionID = sess.ID
	s.loggedIn(ctx, user, client, sess.CreatedAt)
	return s.signPair(user.ID, refresh, sess.CreatedAt, sess.AMR)
}
