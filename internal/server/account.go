package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
)

// msgWrongOldPassword is Django's word for a wrong old password in a password change.
const msgWrongOldPassword = "Your old password was entered incorrectly. Please enter it again."

// maxPasswordChangeTries bounds how often a password change checks the old password again
// when the stored hash changed between its check and the write (see ChangePassword).
const maxPasswordChangeTries = 3

// ChangePassword changes the caller's password: the old one must be right (a wrong one counts
// against the login throttle, and is recorded as a failed password change), the new one must
// pass the policy. Every session of the caller ends, the current one too (whoever shares it
// with a copied refresh token is out), and the caller continues with the token pair of a new
// session, which the answer carries.
func (h handlers) ChangePassword(ctx context.Context, req gen.ChangePasswordRequestObject) (gen.ChangePasswordResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	src := h.auditSource(ctx)
	invalid := func(e *apiError) (gen.ChangePasswordResponseObject, error) {
		return gen.ChangePassword400JSONResponse{BadRequestJSONResponse: badRequest(e)}, nil
	}
	// The caller as stored now: the authentication cache keeps no password hashes.
	user, err := h.store.UserByID(ctx, caller.user.ID)
	if errors.Is(err, store.ErrNotFound) {
		return gen.ChangePassword401JSONResponse{UnauthorizedJSONResponse: unauthorized("user_not_found", msgUserNotFound)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get user %d: %w", caller.user.ID, err)
	}
	in, fields := passwordChangeFields(req.Body, user)
	if in.OldPassword == "" {
		return invalid(passwordChangeError(fields))
	}

	// Reserved before the old password is hashed, as a login is (see ObtainToken).
	attempt, wait, err := h.logins.BeginPasswordChange(ctx, user.Username, src)
	if err != nil {
		return nil, fmt.Errorf("password change throttle: %w", err)
	}
	if wait > 0 {
		return gen.ChangePassword429JSONResponse{ThrottledJSONResponse: throttled("Too many failed password attempts.", wait)}, nil
	}
	match, err := h.checkPassword(ctx, user, in.OldPassword)
	if errors.Is(err, password.ErrBusy) {
		if err := attempt.Abandon(ctx); err != nil {
			h.log.WarnContext(ctx, "withdraw password change attempt", "err", err)
		}
		return gen.ChangePassword503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
	}
	if err != nil {
		return nil, err
	}
	if !match { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return nil, fmt.Errorf("record failed password change: %w", err)
		}
		fields["old_password"] = []string{msgWrongOldPassword}
	} else if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return nil, fmt.Errorf("record password check: %w", err)
	}
	if len(fields) > 0 {
		return invalid(passwordChangeError(fields))
	}

	hash, err := h.hasher.Hash(ctx, in.NewPassword)
	if errors.Is(err, password.ErrBusy) {
		return gen.ChangePassword503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	changed := src.Event(audit.PasswordChanged)
	changed.Fields = []string{"password"}
	next, refresh := h.newSession(ctx, user.ID)
	for try := 1; ; try++ {
		_, err = h.store.ChangePassword(ctx, store.PasswordChange{
			UserID: user.ID, OldHash: user.PasswordHash, NewHash: hash, Current: caller.session.ID,
			Next: &next, First: refresh, Events: []store.AuditEvent{changed},
		})
		if !errors.Is(err, store.ErrPasswordChanged) || try == maxPasswordChangeTries {
			break
		}
		// The hash changed since the check: another change (the old password may be wrong
		// now) or a login's rehash (it is still right). Check against the current one.
		if user, err = h.store.UserByID(ctx, user.ID); err != nil {
			break
		}
		if match, err = h.checkPassword(ctx, user, in.OldPassword); err != nil || !match {
			break
		}
	}
	switch {
	case errors.Is(err, password.ErrBusy):
		return gen.ChangePassword503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
	case err == nil && !match, errors.Is(err, store.ErrPasswordChanged):
		// The old password matched the hash first checked, so the attempt was withdrawn: the
		// refusal goes to the audit log here, and does not count against the throttle.
		failed := src.Event(audit.PasswordChangeFailed)
		failed.TargetID = user.ID
		if err := h.store.RecordAuditEvents(ctx, failed); err != nil {
			return nil, fmt.Errorf("record failed password change: %w", err)
		}
		return invalid(errInvalid(map[string][]string{"old_password": {msgWrongOldPassword}}))
	case errors.Is(err, store.ErrUserNotFound):
		return gen.ChangePassword401JSONResponse{UnauthorizedJSONResponse: unauthorized("user_not_found", msgUserNotFound)}, nil
	case errors.Is(err, store.ErrSessionNotFound): // the caller's session was revoked meanwhile
		return gen.ChangePassword401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", msgSessionRevoked)}, nil
	case err != nil:
		return nil, fmt.Errorf("change password of user %d: %w", user.ID, err)
	}
	h.metrics.Revoked(metrics.RevokePasswordChange)
	refresh.SessionID = next.ID
	pair, err := h.signPair(user.ID, refresh)
	if err != nil {
		return nil, err
	}
	return gen.ChangePassword200JSONResponse(pair), nil
}

// passwordChangeFields reads the request and reports what is wrong with it short of checking
// the old password: missing or blank fields, and the policy's objections to the new password.
func passwordChangeFields(body *client.PasswordChange, user store.User) (client.PasswordChange, map[string][]string) {
	fields := map[string][]string{}
	if body == nil {
		fields["old_password"] = []string{msgRequired}
		fields["new_password"] = []string{msgRequired}
		return client.PasswordChange{}, fields
	}
	in := *body
	if in.OldPassword == "" {
		fields["old_password"] = []string{msgBlank}
	}
	if in.NewPassword == "" {
		fields["new_password"] = []string{msgBlank}
	} else if policy := password.Validate(in.NewPassword, password.Attributes{
		Username: user.Username, FirstName: user.FirstName, LastName: user.LastName, Email: user.Email,
	}); len(policy) > 0 {
		fields["new_password"] = policy
	}
	return in, fields
}

// passwordChangeError is the 400 for fields: invalid_password when only the policy refused
// the new password, as for a user's password (see checkChanges), invalid otherwise.
func passwordChangeError(fields map[string][]string) *apiError {
	if policy, ok := fields["new_password"]; ok && len(fields) == 1 && policy[0] != msgBlank {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_password",
			Detail: strings.Join(policy, " "), Fields: fields}
	}
	return errInvalid(fields)
}

// checkPassword reports whether plain is user's password. An unreadable hash matches nothing
// (and is logged) after the time a check takes; a busy hasher is password.ErrBusy.
func (h handlers) checkPassword(ctx context.Context, user store.User, plain string) (bool, error) {
	match, err := h.hasher.Verify(ctx, plain, user.PasswordHash)
	if errors.Is(err, password.ErrBusy) {
		return false, err
	}
	if err != nil {
		h.log.WarnContext(ctx, "unreadable password hash", "user_id", user.ID, "err", err)
		// Nothing was hashed (an unknown format, costs above the maxima): hash as for a wrong
		// password, so that the answer's time does not single such an account out.
		return false, h.hasher.VerifyDummy(ctx, plain)
	}
	return match, nil
}
