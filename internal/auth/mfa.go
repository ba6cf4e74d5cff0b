package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/passkey"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/totp"
	"github.com/authapi/authapi/internal/userfields"
)

// The refusals of the second factor.
var (
	// ErrChallengeInvalid refuses an answer to a challenge that is unknown, expired or used.
	ErrChallengeInvalid = errors.New("mfa challenge invalid or expired")
	// ErrBadFactorCode refuses a wrong TOTP code, one already used, or a wrong recovery code.
	ErrBadFactorCode = errors.New("invalid second factor code")
	// ErrFactorThrottled comes wrapped in a *ThrottledError.
	ErrFactorThrottled = errors.New("too many failed second factor attempts")
	// ErrFactorExists refuses an enrolment while a TOTP factor is active.
	ErrFactorExists = errors.New("a TOTP factor is active already")
	// ErrNoFactor refuses an activation or removal with no (pending) factor.
	ErrNoFactor = errors.New("no such factor")
	// ErrUnknownMethod refuses a challenge answer by a method this server does not offer.
	ErrUnknownMethod = errors.New("unknown second factor method")
)

// ChallengeLifetime is how long a login's challenge can be answered.
const ChallengeLifetime = 5 * time.Minute

// The methods that answer a challenge (and MethodWebAuthn).
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
)

// amr (RFC 8176) of the second factors by themselves (withFactor adds them to a session's). A
// TOTP code is "otp" (RFC 6238 is named by the RFC); a recovery code is no OTP algorithm, so
// it names no method of its own (the session gets only "mfa").
var (
	totpAMR     = []string{"otp"}
	recoveryAMR []string
)

// withFactor is the amr of a session that authenticated by first (its methods so far) and then
// by a second factor whose own amr is factor: each method once, in order, "mfa" last. It
// never adds a method neither used ("pwd" only when the session began with the password).
func withFactor(first, factor []string) []string {
	var amr []string
	for _, m := range slices.Concat(first, factor) {
		if m != "mfa" && !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	return append(amr, "mfa")
}

// MFARequiredError answers a login whose password was right for an account with a second
// factor: no tokens, but a challenge to answer with one of Methods before ExpiresAt. WebAuthn
// holds the options of the WebAuthn answer when Methods has MethodWebAuthn.
type MFARequiredError struct {
	Challenge string
	ExpiresAt time.Time
	Methods   []string
	WebAuthn  passkey.Options
}

func (e *MFARequiredError) Error() string { return "second factor required" }

var factorEvents = throttle.Events{Failed: audit.MFAFailed, Throttled: audit.MFAThrottled}

// factorAccount is the throttle's account key of userID's factor attempts: apart from their
// password failures (no username holds ':'), sharing the IP's count.
func factorAccount(userID int64) string { return fmt.Sprintf("mfa:%d", userID) }

// challengeFor starts a challenge for user, whose password was checked against passwordHash,
// if they have an active factor; nil if they have none.
func (s *Service) challengeFor(ctx context.Context, user store.User, passwordHash string, client Client) error {
	var methods []string
	f, err := s.store.TOTPFactorOf(ctx, user.ID)
	switch {
	case err == nil && f.Active:
		methods = append(methods, MethodTOTP, MethodRecoveryCode)
	case err != nil && !errors.Is(err, store.ErrTOTPFactorNotFound):
		return err
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, user.ID)
	if err != nil {
		return err
	}
	if len(creds) > 0 {
		methods = append(methods, MethodWebAuthn)
	}
	if len(methods) == 0 {
		return nil
	}
	raw := randomCode(32)
	now := s.now()
	c := store.MFAChallenge{IDHash: hashOf(raw), UserID: user.ID, PasswordHash: passwordHash,
		UserAgent: client.UserAgent, IP: client.IP, CreatedAt: now, ExpiresAt: now.Add(ChallengeLifetime)}
	if err := s.store.CreateMFAChallenge(ctx, c); err != nil {
		return err
	}
	required := &MFARequiredError{Challenge: raw, ExpiresAt: c.ExpiresAt, Methods: methods}
	if len(creds) > 0 {
		if required.WebAuthn, err = s.beginMFAAssertion(ctx, c.IDHash, user, creds); err != nil {
			return err
		}
	}
	return required
}

// ChallengeAnswer answers a login's challenge: Method and its Code, or for MethodWebAuthn
// the assertion (the PublicKeyCredential JSON) in Credential.
type ChallengeAnswer struct {
	Challenge, Method, Code string
	Credential              []byte
	Client                  Client
}

// AnswerChallenge completes a login with its second factor and returns the session's first
// tokens. Refusals: *userfields.Errors, ErrUnknownMethod, ErrChallengeInvalid,
// ErrBadFactorCode, ErrBadAssertion, a *ThrottledError.
func (s *Service) AnswerChallenge(ctx context.Context, in ChallengeAnswer) (TokenPair, error) {
	answer := map[string]string{"challenge": in.Challenge, "method": in.Method}
	switch in.Method {
	case MethodTOTP, MethodRecoveryCode:
		answer["code"] = in.Code
	case MethodWebAuthn:
		answer["credential"] = string(in.Credential)
	}
	if err := required(answer); err != nil {
		return TokenPair{}, err
	}
	if in.Method != MethodTOTP && in.Method != MethodRecoveryCode && in.Method != MethodWebAuthn {
		return TokenPair{}, ErrUnknownMethod
	}
	idHash := hashOf(in.Challenge)
	c, err := s.store.MFAChallengeByHash(ctx, idHash, s.now())
	if errors.Is(err, store.ErrMFAChallengeNotFound) {
		return TokenPair{}, ErrChallengeInvalid
	}
	if err != nil {
		return TokenPair{}, err
	}
	user, err := s.store.UserByID(ctx, c.UserID)
	if err != nil || !user.IsActive {
		return TokenPair{}, ErrChallengeInvalid
	}
	src := s.source(in.Client, nil)
	attempt, wait, err := s.logins.Begin(ctx, factorAccount(user.ID), src, factorEvents)
	if err != nil {
		return TokenPair{}, fmt.Errorf("factor throttle: %w", err)
	}
	if wait > 0 {
		return TokenPair{}, &ThrottledError{Err: ErrFactorThrottled, Wait: wait}
	}
	var proof store.MFAProof
	var amr []string
	var ok bool
	if in.Method == MethodWebAuthn {
		proof, amr, ok, err = s.webauthnProof(ctx, idHash, ceremonyMFA, user, in.Credential)
	} else {
		proof, amr, ok, err = s.proofOf(ctx, user.ID, in.Method, in.Code)
	}
	amr = withFactor(passwordAMR, amr)
	if err == nil && ok {
		var events []store.AuditEvent
		if in.Method == MethodRecoveryCode {
			e := src.Event(audit.RecoveryCodeUsed)
			e.ActorID = user.ID
			events = append(events, e)
		}
		err = s.store.CompleteMFAChallenge(ctx, idHash, s.now(), proof, events...)
		if errors.Is(err, store.ErrFactorRejected) { // the step or code was used meanwhile
			ok, err = false, nil
		}
	}
	if errors.Is(err, store.ErrMFAChallengeNotFound) {
		_ = attempt.Abandon(ctx)
		return TokenPair{}, ErrChallengeInvalid
	}
	if err != nil {
		if aerr := attempt.Abandon(ctx); aerr != nil {
			s.log.WarnContext(ctx, "withdraw factor attempt", "err", aerr)
		}
		return TokenPair{}, err
	}
	if !ok { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return TokenPair{}, fmt.Errorf("record failed factor: %w", err)
		}
		if in.Method == MethodWebAuthn {
			return TokenPair{}, ErrBadAssertion
		}
		return TokenPair{}, ErrBadFactorCode
	}
	if err := attempt.Succeeded(ctx, user.ID, c.PasswordHash); err != nil {
		return TokenPair{}, fmt.Errorf("record factor success: %w", err)
	}
	pair, err := s.startSession(ctx, user, c.PasswordHash, in.Client, amr)
	if errors.Is(err, store.ErrPasswordChanged) {
		return TokenPair{}, ErrChallengeInvalid // the password checked is no longer the password
	}
	return pair, err
}

// proofOf checks code by method for userID: whether it is right now, the proof that uses it
// (the store decides whether it was used already), and the factor's own amr.
func (s *Service) proofOf(ctx context.Context, userID int64, method, code string) (store.MFAProof, []string, bool, error) {
	if method == MethodRecoveryCode {
		return store.MFAProof{RecoveryCodeHash: recoveryHash(code)}, recoveryAMR, true, nil
	}
	f, secret, err := s.totpSecret(ctx, userID)
	if errors.Is(err, ErrNoFactor) || (err == nil && !f.Active) {
		return store.MFAProof{}, nil, false, nil
	}
	if err != nil {
		return store.MFAProof{}, nil, false, err
	}
	step, ok := totp.Check(secret, code, s.now())
	return store.MFAProof{TOTPFactorID: f.ID, Step: step}, totpAMR, ok, nil
}

// totpSecret is userID's factor with its secret opened.
func (s *Service) totpSecret(ctx context.Context, userID int64) (store.TOTPFactor, string, error) {
	f, err := s.store.TOTPFactorOf(ctx, userID)
	if errors.Is(err, store.ErrTOTPFactorNotFound) {
		return store.TOTPFactor{}, "", ErrNoFactor
	}
	if err != nil {
		return store.TOTPFactor{}, "", err
	}
	plain, err := token.OpenBytes(s.cfg.SecretKey, f.Secret, totp.Label(userID))
	if err != nil {
		return store.TOTPFactor{}, "", fmt.Errorf("open totp secret of user %d: %w", userID, err)
	}
	return f, string(plain), nil
}

// TOTPEnrolment is a new, pending TOTP factor: its secret, shown once.
type TOTPEnrolment = totp.Enrolment

// EnrolTOTP makes a pending TOTP factor for the caller, replacing a pending one. Refusals:
// ErrFactorExists, ErrUserNotFound.
func (s *Service) EnrolTOTP(ctx context.Context, caller Caller, issuer string) (TOTPEnrolment, error) {
	user, err := s.store.UserByID(ctx, caller.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return TOTPEnrolment{}, ErrUserNotFound
	}
	if err != nil {
		return TOTPEnrolment{}, err
	}
	e, err := totp.New(issuer, user.Username)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	stored := []byte(e.Secret)
	if len(s.cfg.SecretKey) > 0 {
		if stored, err = token.SealBytes(s.cfg.SecretKey, stored, totp.Label(user.ID)); err != nil {
			return TOTPEnrolment{}, err
		}
	}
	event := s.callerSource(caller).Event(audit.MFAEnrolled)
	_, err = s.store.CreateTOTPFactor(ctx, user.ID, stored, event)
	if errors.Is(err, store.ErrTOTPFactorActive) {
		return TOTPEnrolment{}, ErrFactorExists
	}
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return e, nil
}

// ActivateTOTP activates the caller's pending factor with a code from it, and returns the
// first recovery codes (shown once) when it is their first factor (decided by the store in the
// transaction that activates it); none when a security key came first. Refusals: ErrNoFactor, ErrBadFactorCode, a
// *ThrottledError.
func (s *Service) ActivateTOTP(ctx context.Context, caller Caller, code string) ([]string, error) {
	f, secret, err := s.totpSecret(ctx, caller.UserID)
	if err == nil && f.Active {
		err = ErrNoFactor
	}
	if err != nil {
		return nil, err
	}
	src := s.callerSource(caller)
	attempt, wait, err := s.logins.Begin(ctx, factorAccount(caller.UserID), src, factorEvents)
	if err != nil {
		return nil, fmt.Errorf("factor throttle: %w", err)
	}
	if wait > 0 {
		return nil, &ThrottledError{Err: ErrFactorThrottled, Wait: wait}
	}
	step, ok := totp.Check(secret, code, s.now())
	codes, firstCodes := s.firstFactorCodes(caller)
	first := false
	if ok {
		ok, first, err = s.store.ActivateTOTPFactor(ctx, caller.UserID, f.ID, step, firstCodes, src.Event(audit.MFAActivated))
	}
	if err != nil {
		_ = attempt.Abandon(ctx)
		return nil, err
	}
	if !ok {
		if err := attempt.Failed(ctx, caller.UserID); err != nil {
			return nil, err
		}
		return nil, ErrBadFactorCode
	}
	if err := attempt.Abandon(ctx); err != nil { // a right code: no failure
		s.log.WarnContext(ctx, "withdraw factor attempt", "err", err)
	}
	s.raiseAfterActivation(ctx, caller, totpAMR)
	if !first {
		return []string{}, nil // a security key came first: its codes stay
	}
	return codes, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes; the old set dies. Refusals:
// ErrNoFactor (codes stand in for an active factor: an authenticator app or a WebAuthn
// credential).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, caller Caller) ([]string, error) {
	creds, err := s.store.WebAuthnCredentialsOf(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	if none, err := s.firstFactor(ctx, caller.UserID, creds); err != nil || none {
		if err == nil {
			err = ErrNoFactor
		}
		return nil, err
	}
	return s.newRecoveryCodes(ctx, caller)
}

func (s *Service) newRecoveryCodes(ctx context.Context, caller Caller) ([]string, error) {
	codes, set := s.firstFactorCodes(caller)
	if err := s.store.ReplaceRecoveryCodes(ctx, caller.UserID, set.Hashes, set.Events...); err != nil {
		return nil, err
	}
	return codes, nil
}

// firstFactorCodes makes a new set of recovery codes for caller: the codes, and what the store
// keeps of them (their hashes, audited as regenerated).
func (s *Service) firstFactorCodes(caller Caller) ([]string, store.FirstFactorCodes) {
	codes := make([]string, RecoveryCodes)
	hashes := make([]string, RecoveryCodes)
	for i := range codes {
		c := randomCode(10) // 10 bytes, 80 bits: 16 base32 characters
		codes[i] = c[:8] + "-" + c[8:]
		hashes[i] = recoveryHash(codes[i])
	}
	event := s.callerSource(caller).Event(audit.RecoveryCodesRegenerated)
	return codes, store.FirstFactorCodes{Hashes: hashes, Events: []store.AuditEvent{event}}
}

// RecoveryCodes is how many recovery codes a set has.
const RecoveryCodes = 10

// TOTPStatus is a user's TOTP factor, for listing.
type TOTPStatus struct {
	Active    bool
	CreatedAt time.Time
}

// RemoveTOTP removes the caller's TOTP factor (and recovery codes, unless a security key
// remains) after checking their current password (checkOwnPassword): a stolen access token
// alone cannot take the second factor off, and a user who lost the device (and logged in with
// a recovery code) can still remove it. Refusals: ErrNoFactor, checkOwnPassword's.
func (s *Service) RemoveTOTP(ctx context.Context, caller Caller, currentPassword string) error {
	user, err := s.checkOwnPassword(ctx, caller, currentPassword, passwordChangeEvents)
	if err != nil {
		return err
	}
	err = s.store.DeleteTOTPFactor(ctx, user.ID, s.callerSource(caller).Event(audit.MFARemoved))
	if errors.Is(err, store.ErrTOTPFactorNotFound) {
		return ErrNoFactor
	}
	if err != nil {
		return err
	}
	return s.dropCodesWithoutFactor(ctx, user.ID)
}

// dropCodesWithoutFactor removes userID's recovery codes once they have no factor left (the
// codes stand in for one); a remaining security key keeps them.
func (s *Service) dropCodesWithoutFactor(ctx context.Context, userID int64) error {
	creds, err := s.store.WebAuthnCredentialsOf(ctx, userID)
	if err != nil {
		return err
	}
	none, err := s.firstFactor(ctx, userID, creds)
	if err != nil || !none {
		return err
	}
	return s.store.ReplaceRecoveryCodes(ctx, userID, nil)
}

// hashOf is the stored form of a challenge token: it is random (256 bits), so SHA-256 is
// enough; a database read gives no usable challenge.
func hashOf(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// recoveryHash is the stored form of a recovery code, read the way people type it back
// (any case, with or without the dash and spaces). 80 random bits need no slow hash.
func recoveryHash(code string) string {
	norm := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	return hashOf("recovery:" + norm)
}

// randomCode is n random bytes in unpadded base32.
func randomCode(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// MsgWrongPassword refuses a wrong current password where one confirms an operation.
const MsgWrongPassword = "Your password was entered incorrectly. Please enter it again."

func userfieldsWrongPassword() error {
	return userfields.Invalid(map[string][]string{"password": {MsgWrongPassword}})
}
