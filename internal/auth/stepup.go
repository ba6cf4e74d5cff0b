package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/userfields"
)

// The refusals of step-up and of the second-factor policy.
var (
	// ErrStepUpRequired refuses an operation marked for step-up to a caller with a second
	// factor whose token is not aal2 or authenticated longer ago than the step-up window
	// (RFC 9470 insufficient_user_authentication).
	ErrStepUpRequired = errors.New("step-up authentication required")
	// ErrEnrolmentRequired refuses an operation to a caller the second-factor policy holds to
	// enrolment.
	ErrEnrolmentRequired = errors.New("second factor enrolment required")
)

// MFAPolicy says whose accounts need a second factor (Config.RequireMFA).
type MFAPolicy string

// The policies: nobody, superusers, or staff (superusers included).
const (
	RequireMFANone       MFAPolicy = "none"
	RequireMFASuperusers MFAPolicy = "superusers"
	RequireMFAStaff      MFAPolicy = "staff"
)

// ParseMFAPolicy reads a policy by its name; "" is RequireMFANone.
func ParseMFAPolicy(name string) (MFAPolicy, error) {
	switch p := MFAPolicy(name); p {
	case "":
		return RequireMFANone, nil
	case RequireMFANone, RequireMFASuperusers, RequireMFAStaff:
		return p, nil
	}
	return "", fmt.Errorf("unknown second-factor policy %q: none, superusers or staff", name)
}

// DefaultStepUpMaxAge is Config.StepUpMaxAge's default.
const DefaultStepUpMaxAge = 10 * time.Minute

// MethodPassword re-authenticates a user without a second factor.
const MethodPassword = "password"

// EnrolmentOnly reports whether the policy holds u to enrolment: it covers them and they have
// no active second factor. u must come from a Principal (User.HasFactor is read with it).
func (s *Service) EnrolmentOnly(u store.User) bool {
	if u.HasFactor {
		return false
	}
	switch s.cfg.RequireMFA {
	case RequireMFASuperusers:
		return u.IsSuperuser
	case RequireMFAStaff:
		return u.IsStaff || u.IsSuperuser
	}
	return false
}

// StepUpNeeded reports whether p must re-authenticate before an operation marked for
// step-up: when their account has an active second factor and their access token is not aal2
// or its auth_time is older than StepUpMaxAge. An account without a factor has nothing
// stronger to offer than the password its session began with, and is asked only before an
// operation that adds a factor (addsFactor), when auth_time is older than StepUpMaxAge: a
// stolen access token alone must not add a factor that then signs in alone (a passkey).
func (s *Service) StepUpNeeded(p Principal, addsFactor bool) bool {
	stale := s.now().Sub(p.AuthTime) > s.cfg.StepUpMaxAge
	if !p.User.HasFactor {
		return addsFactor && stale
	}
	return p.ACR != acrAAL2 || stale
}

// StepUpMaxAge is the step-up window (RFC 9470 max_age).
func (s *Service) StepUpMaxAge() time.Duration { return s.cfg.StepUpMaxAge }

// Reauthentication answers a step-up: Method (MethodTOTP, MethodRecoveryCode, MethodWebAuthn,
// or MethodPassword for an account without a second factor) and its Code or Password, or for
// MethodWebAuthn the Ceremony begun by BeginWebAuthnReauthentication and the assertion
// (Credential, the PublicKeyCredential JSON).
type Reauthentication struct {
	Method, Code, Password, Ceremony string
	Credential                       []byte
}

var reauthEvents = throttle.Events{Failed: audit.ReauthFailed, Throttled: audit.ReauthThrottled}

// Reauthenticate raises the caller's current session: its auth_time becomes now and, for a
// second factor, its amr the factor's; it returns a new access token of the session. Later
// refreshes of the session carry the same. Attempts are throttled as the factor's (codes) or
// the password's (password) are, and audited. Refusals: *userfields.Errors (a missing
// answer, or a method the account cannot use), ErrBadFactorCode, ErrBadCredentials, a
// *ThrottledError, loadSession's, password.ErrBusy.
func (s *Service) Reauthenticate(ctx context.Context, caller Caller, in Reauthentication) (string, error) {
	p, err := s.loadSession(ctx, token.Claims{UserID: caller.UserID, SessionID: caller.SessionID})
	if err != nil {
		return "", err
	}
	user := p.User
	switch {
	case in.Method == MethodPassword && user.HasFactor:
		return "", userfields.Invalid(map[string][]string{"method": {"Your account has a second factor: answer with totp, recovery_code or webauthn."}})
	case in.Method == MethodPassword:
		if err := required(map[string]string{"password": in.Password}); err != nil {
			return "", err
		}
	case in.Method != MethodTOTP && in.Method != MethodRecoveryCode && in.Method != MethodWebAuthn:
		return "", userfields.Invalid(map[string][]string{"method": {fmt.Sprintf("%q is not a valid choice.", in.Method)}})
	case !user.HasFactor:
		return "", userfields.Invalid(map[string][]string{"method": {"Your account has no second factor: answer with password."}})
	case in.Method == MethodWebAuthn:
		if err := required(map[string]string{"ceremony": in.Ceremony, "credential": string(in.Credential)}); err != nil {
			return "", err
		}
	default:
		if err := required(map[string]string{"code": in.Code}); err != nil {
			return "", err
		}
	}

	src := s.callerSource(caller)
	account, throttled := factorAccount(user.ID), ErrFactorThrottled
	if in.Method == MethodPassword {
		// The password's own count, shared with logins: re-authentication is no way around
		// the login limits.
		account, throttled = user.Username, ErrPasswordChangeThrottled
	}
	attempt, wait, err := s.logins.Begin(ctx, account, src, reauthEvents)
	if err != nil {
		return "", fmt.Errorf("re-authentication throttle: %w", err)
	}
	if wait > 0 {
		return "", &ThrottledError{Err: throttled, Wait: wait}
	}
	now := s.now()
	done := src.Event(audit.ReauthSucceeded)
	done.Fields = []string{in.Method}
	events := []store.AuditEvent{done}
	amr := p.Session.AMR
	var ok bool
	if in.Method == MethodPassword {
		ok, err = s.checkPassword(ctx, user, in.Password)
		if err == nil && ok {
			err = s.store.RaiseSession(ctx, user.ID, caller.SessionID, amr, now, nil, events...)
		}
	} else {
		var proof store.MFAProof
		if in.Method == MethodWebAuthn {
			// The ceremony is used with the proof: an assertion answers it once, even from an
			// authenticator whose counter stays 0.
			idHash := reauthCeremonyHash(caller.SessionID, in.Ceremony)
			proof, amr, ok, err = s.webauthnProof(ctx, idHash, ceremonyReauth, user, in.Credential)
			proof.CeremonyHash, proof.CeremonyKind = idHash, ceremonyReauth
		} else {
			proof, amr, ok, err = s.proofOf(ctx, user.ID, in.Method, in.Code)
		}
		// The session's methods and the factor's: a code after a passkey login is no password.
		amr = withFactor(p.Session.AMR, amr)
		if err == nil && ok {
			if in.Method == MethodRecoveryCode {
				events = append(events, src.Event(audit.RecoveryCodeUsed))
			}
			err = s.store.RaiseSession(ctx, user.ID, caller.SessionID, amr, now, &proof, events...)
			if errors.Is(err, store.ErrFactorRejected) { // the step or code was used meanwhile
				ok, err = false, nil
			}
		}
	}
	if err != nil {
		if aerr := attempt.Abandon(ctx); aerr != nil {
			s.log.WarnContext(ctx, "withdraw re-authentication attempt", "err", aerr)
		}
		if errors.Is(err, store.ErrSessionNotFound) {
			return "", ErrSessionRevoked
		}
		return "", err
	}
	if !ok { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return "", fmt.Errorf("record failed re-authentication: %w", err)
		}
		switch in.Method {
		case MethodPassword:
			return "", ErrBadCredentials
		case MethodWebAuthn:
			return "", ErrBadAssertion
		}
		return "", ErrBadFactorCode
	}
	if in.Method == MethodPassword {
		err = attempt.Succeeded(ctx, user.ID, user.PasswordHash)
	} else {
		err = attempt.Abandon(ctx) // a right code: no failure
	}
	if err != nil {
		s.log.WarnContext(ctx, "settle re-authentication attempt", "err", err)
	}
	return s.sign(s.accessClaims(user.ID, caller.SessionID, newTokenID(), now, now, amr))
}

// raiseAfterActivation raises the caller's session by factor (its own amr) once their first
// factor is active: the code that activated it (the authenticator that registered) was just
// checked, as at a login's challenge.
func (s *Service) raiseAfterActivation(ctx context.Context, caller Caller, factor []string) {
	if caller.SessionID == "" {
		return
	}
	_, sess, err := s.store.UserSession(ctx, caller.UserID, caller.SessionID)
	if err == nil {
		err = s.store.RaiseSession(ctx, caller.UserID, caller.SessionID, withFactor(sess.AMR, factor), s.now(), nil)
	}
	if err != nil && !errors.Is(err, store.ErrSessionNotFound) {
		s.log.WarnContext(ctx, "raise session after activation", "err", err)
	}
}

// Factors is a user's second factors, for listing (no secrets).
type Factors struct {
	TOTP              *TOTPStatus // nil: none, pending or active
	WebAuthn          []WebAuthnCredential
	RecoveryCodesLeft int64
	// EnrolmentRequired: the policy covers the user and they have no active factor.
	EnrolmentRequired bool
}

// FactorsOf lists userID's second factors. Refusals: ErrNotFound for no such user.
func (s *Service) FactorsOf(ctx context.Context, userID int64) (Factors, error) {
	user, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return Factors{}, ErrNotFound
	}
	if err != nil {
		return Factors{}, err
	}
	var out Factors
	f, err := s.store.TOTPFactorOf(ctx, userID)
	switch {
	case err == nil:
		out.TOTP = &TOTPStatus{Active: f.Active, CreatedAt: f.CreatedAt}
		user.HasFactor = f.Active
	case !errors.Is(err, store.ErrTOTPFactorNotFound):
		return Factors{}, err
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, userID)
	if err != nil {
		return Factors{}, err
	}
	for _, c := range creds {
		out.WebAuthn = append(out.WebAuthn, toCredential(c))
		user.HasFactor = true
	}
	if out.RecoveryCodesLeft, err = s.store.RecoveryCodesLeft(ctx, userID); err != nil {
		return Factors{}, err
	}
	out.EnrolmentRequired = s.EnrolmentOnly(user)
	return out, nil
}

// ResetFactors removes every second factor and recovery code of user userID and ends their
// sessions on every instance, audited as mfa.reset by caller (a superuser; the server checks
// that, and step-up). Refusals: ErrNotFound.
func (s *Service) ResetFactors(ctx context.Context, caller Caller, userID int64) error {
	_, err := s.store.ResetFactors(ctx, userID, s.now(), s.callerSource(caller).Event(audit.MFAReset))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
