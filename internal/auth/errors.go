package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/authapi/authapi/internal/userfields"
)

// The refusals of the operations. The server answers each in the API's words (its table in
// server/errors.go); password.ErrBusy passes through for a hasher that found no slot in time.
var (
	// ErrBadCredentials refuses a login: unknown user, wrong password or inactive user alike.
	ErrBadCredentials = errors.New("no active account with the given credentials")
	// ErrLoginThrottled and ErrPasswordChangeThrottled come wrapped in a *ThrottledError.
	ErrLoginThrottled          = errors.New("too many failed login attempts")
	ErrPasswordChangeThrottled = errors.New("too many failed password attempts")

	// ErrTokenInvalid refuses a token that is malformed, unsigned by a known key, expired,
	// or a refresh token that is no longer recorded or was retired.
	ErrTokenInvalid = errors.New("token invalid or expired")
	// ErrTokenWrongType refuses an access token where a refresh token is expected, or the
	// other way round.
	ErrTokenWrongType = errors.New("token has the wrong type")
	// ErrTokenNoUser refuses a token that names no user.
	ErrTokenNoUser = errors.New("token names no user")
	// ErrSessionRevoked refuses a token whose session was revoked or is gone.
	ErrSessionRevoked = errors.New("session revoked")
	// ErrSessionTooOld refuses a refresh of a session past its maximum lifetime.
	ErrSessionTooOld = errors.New("session past its maximum lifetime")
	// ErrRefreshReused refuses a retired refresh token presented again after the grace
	// window: its session has just been revoked.
	ErrRefreshReused = errors.New("refresh token reused: session revoked")
	// ErrUserNotFound refuses a token (or a caller) whose user no longer exists.
	ErrUserNotFound = errors.New("user not found")
	// ErrUserInactive refuses a token whose user is deactivated.
	ErrUserInactive = errors.New("user inactive")

	// ErrEmailNotVerified refuses a proven sign-in (the right password, and factor, or a
	// passkey) of an account made by sign-up whose address is not verified yet, while
	// Config.RequireVerifiedEmail is on.
	ErrEmailNotVerified = errors.New("email address not verified")

	// ErrNotOwnToken refuses a logout with another user's refresh token.
	ErrNotOwnToken = errors.New("refresh token of another user")
	// ErrNotFound refuses an operation on a session, or a user, that does not exist (or is
	// not the one named).
	ErrNotFound = errors.New("not found")
)

// ThrottledError is a refusal by the login throttle: Err is ErrLoginThrottled or
// ErrPasswordChangeThrottled, Wait how long until an attempt is let through.
type ThrottledError struct {
	Err  error
	Wait time.Duration
}

func (e *ThrottledError) Error() string { return fmt.Sprintf("%v: wait %v", e.Err, e.Wait) }

// Unwrap returns Err.
func (e *ThrottledError) Unwrap() error { return e.Err }

// MsgWrongOldPassword is Django's word for a wrong old password in a password change.
const MsgWrongOldPassword = "Your old password was entered incorrectly. Please enter it again."

// required refuses, as *userfields.Errors, each of the named values that is empty.
func required(values map[string]string) error {
	fields := map[string][]string{}
	for name, v := range values {
		if v == "" {
			fields[name] = []string{userfields.MsgRequired}
		}
	}
	if len(fields) > 0 {
		return userfields.Invalid(fields)
	}
	return nil
}
