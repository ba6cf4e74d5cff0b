package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/passkey"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/userfields"
)

// The refusals of WebAuthn.
var (
	// ErrBadAssertion refuses an assertion that does not verify: wrong challenge, origin,
	// relying party, signature, an unknown credential, or a counter that went backwards.
	ErrBadAssertion = errors.New("webauthn assertion not accepted")
	// ErrCeremonyInvalid refuses an answer to a WebAuthn ceremony that is unknown, expired,
	// used, or another user's.
	ErrCeremonyInvalid = errors.New("webauthn ceremony invalid or expired")
	// ErrCredentialExists refuses the registration of an authenticator registered already.
	ErrCredentialExists = errors.New("webauthn credential registered already")
)

// MethodWebAuthn answers a challenge with a WebAuthn assertion.
const MethodWebAuthn = "webauthn"

// The kinds of WebAuthn ceremonies kept in the store.
const (
	ceremonyRegister        = "register"
	ceremonyRegisterPasskey = "register_passkey"
	ceremonyPasskeyLogin    = "passkey"
	ceremonyMFA             = "mfa"    // keyed by the login challenge's own hash
	ceremonyReauth          = "reauth" // keyed by the hash of the session and the token
)

// MaxCredentialName is the longest name of a WebAuthn credential, in characters.
const MaxCredentialName = 64

// Ceremony is a WebAuthn ceremony begun: the token the client sends back with the
// authenticator's answer, and the options for the browser.
type Ceremony struct {
	Token   string
	Options passkey.Options
}

// WebAuthnCredential is one of a user's security keys or passkeys, for listing.
type WebAuthnCredential struct {
	ID         int64
	Name       string
	Passkey    bool // discoverable: signs in without a password
	Synced     bool // backup eligible
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

func toCredential(c store.WebAuthnCredential) WebAuthnCredential {
	return WebAuthnCredential{ID: c.ID, Name: c.Name, Passkey: c.Discoverable, Synced: c.BackupEligible,
		CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
}

// webauthnUser is user as the relying party sees them, with creds: the handle their
// credentials are registered under (a new random one for a first credential).
func webauthnUser(user store.User, creds []store.WebAuthnCredential) (passkey.User, error) {
	u := passkey.User{Name: user.Username}
	for _, c := range creds {
		u.Credentials = append(u.Credentials, c.Data)
	}
	if len(creds) > 0 {
		h, err := passkey.Decode(creds[0].UserHandle)
		if err != nil {
			return passkey.User{}, fmt.Errorf("user handle of user %d: %w", user.ID, err)
		}
		u.Handle = h
		return u, nil
	}
	u.Handle = make([]byte, 32)
	_, _ = rand.Read(u.Handle)
	return u, nil
}

// beginCeremony stores the session of a ceremony of kind for userID (0 for none) under a new
// token's hash, or under idHash when given, and returns the token.
func (s *Service) beginCeremony(ctx context.Context, kind, idHash string, userID int64, session passkey.Session) (string, error) {
	token := ""
	if idHash == "" {
		token = randomCode(32)
		idHash = hashOf(token)
	}
	now := s.now()
	err := s.store.CreateWebAuthnCeremony(ctx, store.WebAuthnCeremony{IDHash: idHash, Kind: kind, UserID: userID,
		Data: session, CreatedAt: now, ExpiresAt: now.Add(ChallengeLifetime)})
	return token, err
}

// BeginWebAuthnRegistration starts the registration of a security key (or, with asPasskey, a
// passkey) for the caller.
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, caller Caller, asPasskey bool) (Ceremony, error) {
	user, err := s.store.UserByID(ctx, caller.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return Ceremony{}, ErrUserNotFound
	}
	if err != nil {
		return Ceremony{}, err
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, user.ID)
	if err != nil {
		return Ceremony{}, err
	}
	u, err := webauthnUser(user, creds)
	if err != nil {
		return Ceremony{}, err
	}
	opts, session, err := s.cfg.WebAuthn.BeginRegistration(u, asPasskey)
	if err != nil {
		return Ceremony{}, err
	}
	kind := ceremonyRegister
	if asPasskey {
		kind = ceremonyRegisterPasskey
	}
	// The handle of a first credential is kept in the session: the credential stores it.
	token, err := s.beginCeremony(ctx, kind, "", user.ID, session)
	return Ceremony{Token: token, Options: opts}, err
}

// WebAuthnRegistration is the answer to a registration: the ceremony's token, the name the
// user gives the credential, and the authenticator's answer (the PublicKeyCredential JSON).
type WebAuthnRegistration struct {
	Ceremony, Name string
	Credential     []byte
}

// FinishWebAuthnRegistration verifies the authenticator's answer to the caller's registration
// and stores the credential. When it is the caller's first factor (decided by the store in
// the transaction that adds it) it raises their session and returns their first recovery
// codes (shown once), as a TOTP activation does; otherwise no codes. Refusals: *userfields.Errors (a missing name or credential, an answer that does not
// verify), ErrCeremonyInvalid, ErrCredentialExists.
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, caller Caller, in WebAuthnRegistration) (WebAuthnCredential, []string, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := required(map[string]string{"ceremony": in.Ceremony, "name": in.Name, "credential": string(in.Credential)}); err != nil {
		return WebAuthnCredential{}, nil, err
	}
	if len([]rune(in.Name)) > MaxCredentialName {
		return WebAuthnCredential{}, nil, userfields.Invalid(map[string][]string{"name": {fmt.Sprintf("Ensure this field has no more than %d characters.", MaxCredentialName)}})
	}
	idHash := hashOf(in.Ceremony)
	c, err := s.liveCeremony(ctx, idHash, ceremonyRegister, ceremonyRegisterPasskey)
	if err != nil {
		return WebAuthnCredential{}, nil, err
	}
	if c.UserID != caller.UserID {
		return WebAuthnCredential{}, nil, ErrCeremonyInvalid
	}
	user, err := s.store.UserByID(ctx, caller.UserID)
	if err != nil {
		return WebAuthnCredential{}, nil, err
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, user.ID)
	if err != nil {
		return WebAuthnCredential{}, nil, err
	}
	u, err := webauthnUser(user, creds)
	if err != nil {
		return WebAuthnCredential{}, nil, err
	}
	// The handle the options named: the session's (a first credential's is new).
	if u.Handle, err = passkey.SessionUserID(c.Data); err != nil {
		return WebAuthnCredential{}, nil, err
	}
	rec, err := s.cfg.WebAuthn.FinishRegistration(u, c.Data, in.Credential, c.Kind == ceremonyRegisterPasskey)
	if errors.Is(err, passkey.ErrInvalid) {
		return WebAuthnCredential{}, nil, userfields.Invalid(map[string][]string{"credential": {"The authenticator's answer was not accepted."}})
	}
	if err != nil {
		return WebAuthnCredential{}, nil, err
	}
	event := s.callerSource(caller).Event(audit.MFAEnrolled)
	codes, firstCodes := s.firstFactorCodes(caller)
	stored, first, err := s.store.CreateWebAuthnCredential(ctx, idHash, c.Kind, s.now(), store.WebAuthnCredential{
		UserID: user.ID, CredentialID: passkey.Encode(rec.ID), UserHandle: passkey.Encode(u.Handle), Name: in.Name,
		Data: rec.Data, SignCount: int64(rec.SignCount), Discoverable: rec.Discoverable, BackupEligible: rec.BackupEligible,
	}, firstCodes, event)
	switch {
	case errors.Is(err, store.ErrWebAuthnCeremonyNotFound):
		return WebAuthnCredential{}, nil, ErrCeremonyInvalid
	case errors.Is(err, store.ErrWebAuthnCredentialExists):
		return WebAuthnCredential{}, nil, ErrCredentialExists
	case err != nil:
		return WebAuthnCredential{}, nil, err
	}
	if !first {
		return toCredential(stored), nil, nil
	}
	s.raiseAfterActivation(ctx, caller, webauthnAMR(passkey.Use{UserVerified: rec.UserVerified, BackupEligible: rec.BackupEligible}))
	return toCredential(stored), codes, nil
}

// firstFactor reports whether userID, whose WebAuthn credentials were creds before one was
// added, had no active factor: then the new one raises the session as a TOTP activation does.
func (s *Service) firstFactor(ctx context.Context, userID int64, creds []store.WebAuthnCredential) (bool, error) {
	if len(creds) > 0 {
		return false, nil
	}
	f, err := s.store.TOTPFactorOf(ctx, userID)
	if errors.Is(err, store.ErrTOTPFactorNotFound) {
		return true, nil
	}
	return err == nil && !f.Active, err
}

// liveCeremony is the live ceremony idHash of one of kinds, or ErrCeremonyInvalid.
func (s *Service) liveCeremony(ctx context.Context, idHash string, kinds ...string) (store.WebAuthnCeremony, error) {
	for _, kind := range kinds {
		c, err := s.store.WebAuthnCeremonyByHash(ctx, idHash, kind, s.now())
		if errors.Is(err, store.ErrWebAuthnCeremonyNotFound) {
			continue
		}
		return c, err
	}
	return store.WebAuthnCeremony{}, ErrCeremonyInvalid
}

// WebAuthnCredentials lists the caller's credentials, oldest first.
func (s *Service) WebAuthnCredentials(ctx context.Context, caller Caller) ([]WebAuthnCredential, error) {
	creds, err := s.store.WebAuthnCredentialsOf(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]WebAuthnCredential, len(creds))
	for i, c := range creds {
		out[i] = toCredential(c)
	}
	return out, nil
}

// RenameWebAuthnCredential renames the caller's credential id. Refusals: *userfields.Errors,
// ErrNoFactor.
func (s *Service) RenameWebAuthnCredential(ctx context.Context, caller Caller, id int64, name string) (WebAuthnCredential, error) {
	name = strings.TrimSpace(name)
	if err := required(map[string]string{"name": name}); err != nil {
		return WebAuthnCredential{}, err
	}
	if len([]rune(name)) > MaxCredentialName {
		return WebAuthnCredential{}, userfields.Invalid(map[string][]string{"name": {fmt.Sprintf("Ensure this field has no more than %d characters.", MaxCredentialName)}})
	}
	c, err := s.store.RenameWebAuthnCredential(ctx, caller.UserID, id, name)
	if errors.Is(err, store.ErrWebAuthnCredentialNotFound) {
		return WebAuthnCredential{}, ErrNoFactor
	}
	if err != nil {
		return WebAuthnCredential{}, err
	}
	return toCredential(c), nil
}

// RemoveWebAuthnCredential removes the caller's credential id, and their recovery codes with
// their last factor. Refusals: ErrNoFactor.
func (s *Service) RemoveWebAuthnCredential(ctx context.Context, caller Caller, id int64) error {
	err := s.store.DeleteWebAuthnCredential(ctx, caller.UserID, id, s.callerSource(caller).Event(audit.MFARemoved))
	if errors.Is(err, store.ErrWebAuthnCredentialNotFound) {
		return ErrNoFactor
	}
	if err != nil {
		return err
	}
	return s.dropCodesWithoutFactor(ctx, caller.UserID)
}

// beginMFAAssertion starts the WebAuthn answer of the login challenge idHash of user, whose
// credentials are creds, and returns its options.
func (s *Service) beginMFAAssertion(ctx context.Context, idHash string, user store.User, creds []store.WebAuthnCredential) (passkey.Options, error) {
	u, err := webauthnUser(user, creds)
	if err != nil {
		return nil, err
	}
	opts, session, err := s.cfg.WebAuthn.BeginLogin(u)
	if err != nil {
		return nil, err
	}
	_, err = s.beginCeremony(ctx, ceremonyMFA, idHash, user.ID, session)
	return opts, err
}

// webauthnProof verifies the assertion answer to user's ceremony idHash of kind (a login
// challenge's, or a re-authentication's): the proof that uses it (the store advances the
// counter, once), the key's own amr, and whether it verified. A ceremony of another user
// verifies nothing.
func (s *Service) webauthnProof(ctx context.Context, idHash, kind string, user store.User, answer []byte) (store.MFAProof, []string, bool, error) {
	c, err := s.store.WebAuthnCeremonyByHash(ctx, idHash, kind, s.now())
	if errors.Is(err, store.ErrWebAuthnCeremonyNotFound) || (err == nil && c.UserID != user.ID) {
		return store.MFAProof{}, nil, false, nil
	}
	if err != nil {
		return store.MFAProof{}, nil, false, err
	}
	a, err := passkey.ParseAssertion(answer)
	if err != nil {
		return store.MFAProof{}, nil, false, nil
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, user.ID)
	if err != nil {
		return store.MFAProof{}, nil, false, err
	}
	i := slices.IndexFunc(creds, func(c store.WebAuthnCredential) bool { return c.CredentialID == passkey.Encode(a.CredentialID) })
	if i < 0 {
		return store.MFAProof{}, nil, false, nil
	}
	use, err := s.verifyAssertion(user, creds, c.Data, a, false)
	if errors.Is(err, ErrBadAssertion) {
		return store.MFAProof{}, nil, false, nil
	}
	if err != nil {
		return store.MFAProof{}, nil, false, err
	}
	return store.MFAProof{WebAuthnID: creds[i].ID, SignCount: int64(use.SignCount)}, webauthnAMR(use), true, nil
}

// BeginWebAuthnReauthentication starts the re-authentication of the caller's session by one
// of their security keys or passkeys: the options list their credentials; the ceremony is
// kept under the hash of the session and its token, so that only this session can answer it
// (Reauthenticate with MethodWebAuthn), once, on any instance. Refusals: *userfields.Errors
// (no WebAuthn credential), loadSession's.
func (s *Service) BeginWebAuthnReauthentication(ctx context.Context, caller Caller) (Ceremony, error) {
	p, err := s.loadSession(ctx, token.Claims{UserID: caller.UserID, SessionID: caller.SessionID})
	if err != nil {
		return Ceremony{}, err
	}
	creds, err := s.store.WebAuthnCredentialsOf(ctx, p.User.ID)
	if err != nil {
		return Ceremony{}, err
	}
	if len(creds) == 0 {
		return Ceremony{}, userfields.Invalid(map[string][]string{"method": {"Your account has no security key or passkey."}})
	}
	u, err := webauthnUser(p.User, creds)
	if err != nil {
		return Ceremony{}, err
	}
	opts, session, err := s.cfg.WebAuthn.BeginLogin(u)
	if err != nil {
		return Ceremony{}, err
	}
	raw := randomCode(32)
	if _, err := s.beginCeremony(ctx, ceremonyReauth, reauthCeremonyHash(caller.SessionID, raw), p.User.ID, session); err != nil {
		return Ceremony{}, err
	}
	return Ceremony{Token: raw, Options: opts}, nil
}

// reauthCeremonyHash is the key of the re-authentication ceremony raw of session sid.
func reauthCeremonyHash(sid, raw string) string { return hashOf(sid + "\x00" + raw) }

// webauthnAMR is the amr (RFC 8176) of the WebAuthn use by itself (withFactor adds it to a
// session's): "hwk" (a hardware-bound key; "swk" for a synced, backup-eligible one), and
// "user" when the authenticator tested only presence.
func webauthnAMR(use passkey.Use) []string {
	amr := []string{"hwk"}
	if use.BackupEligible {
		amr = []string{"swk"}
	}
	if !use.UserVerified {
		amr = append(amr, "user")
	}
	return amr
}

// BeginPasskeyLogin starts a login by a passkey: no user is named; the authenticator offers
// its discoverable credentials.
func (s *Service) BeginPasskeyLogin(ctx context.Context) (Ceremony, error) {
	opts, session, err := s.cfg.WebAuthn.BeginPasskeyLogin()
	if err != nil {
		return Ceremony{}, err
	}
	token, err := s.beginCeremony(ctx, ceremonyPasskeyLogin, "", 0, session)
	return Ceremony{Token: token, Options: opts}, err
}

// PasskeyLogin is the answer to a passkey login: the ceremony's token and the assertion.
type PasskeyLogin struct {
	Ceremony   string
	Credential []byte
	Client     Client
}

// unknownPasskey is the throttle's account key of passkey logins by a credential no account
// has: their failures count against the client IP, and this shared key.
const unknownPasskey = "passkey:unknown"

// FinishPasskeyLogin completes a passkey login and returns the session's first tokens: the
// ceremony works once, on any instance; the credential's counter must move forward. Refusals:
// *userfields.Errors, ErrCeremonyInvalid, ErrBadAssertion, a *ThrottledError.
func (s *Service) FinishPasskeyLogin(ctx context.Context, in PasskeyLogin) (TokenPair, error) {
	if err := required(map[string]string{"ceremony": in.Ceremony, "credential": string(in.Credential)}); err != nil {
		return TokenPair{}, err
	}
	idHash := hashOf(in.Ceremony)
	c, err := s.liveCeremony(ctx, idHash, ceremonyPasskeyLogin)
	if err != nil {
		return TokenPair{}, err
	}
	src := s.source(in.Client, nil)
	a, err := passkey.ParseAssertion(in.Credential)
	var cred store.WebAuthnCredential
	if err == nil {
		cred, err = s.store.WebAuthnCredentialByCredentialID(ctx, passkey.Encode(a.CredentialID))
		if err != nil && !errors.Is(err, store.ErrWebAuthnCredentialNotFound) {
			return TokenPair{}, err
		}
	}
	var user store.User
	if err == nil {
		user, err = s.store.UserByID(ctx, cred.UserID)
		if err == nil && !user.IsActive {
			err = ErrBadAssertion
		}
	}
	if err != nil { // no account to check the assertion against: a failure of the IP
		attempt, wait, terr := s.logins.Begin(ctx, unknownPasskey, src, factorEvents)
		if terr != nil {
			return TokenPair{}, fmt.Errorf("factor throttle: %w", terr)
		}
		if wait > 0 {
			return TokenPair{}, &ThrottledError{Err: ErrFactorThrottled, Wait: wait}
		}
		if err := attempt.Failed(ctx, 0); err != nil {
			return TokenPair{}, fmt.Errorf("record failed factor: %w", err)
		}
		return TokenPair{}, ErrBadAssertion
	}
	attempt, wait, err := s.logins.Begin(ctx, factorAccount(user.ID), src, factorEvents)
	if err != nil {
		return TokenPair{}, fmt.Errorf("factor throttle: %w", err)
	}
	if wait > 0 {
		return TokenPair{}, &ThrottledError{Err: ErrFactorThrottled, Wait: wait}
	}
	// Only a passkey signs in alone: not a security key registered as a second factor, even
	// when a client sends its assertion with the user handle added (the handle is not signed).
	use, err := passkey.Use{}, error(ErrBadAssertion)
	if cred.Discoverable {
		use, err = s.verifyAssertion(user, []store.WebAuthnCredential{cred}, c.Data, a, true)
	}
	if err == nil {
		err = s.store.UseWebAuthnCeremony(ctx, idHash, ceremonyPasskeyLogin, s.now(), user.ID, cred.ID, int64(use.SignCount))
	}
	switch {
	case errors.Is(err, store.ErrWebAuthnCeremonyNotFound): // used meanwhile: no guess of this client
		_ = attempt.Abandon(ctx)
		return TokenPair{}, ErrCeremonyInvalid
	case errors.Is(err, ErrBadAssertion), errors.Is(err, store.ErrSignCountRegressed):
		if err := attempt.Failed(ctx, user.ID); err != nil { // the reservation stays, as the failure
			return TokenPair{}, fmt.Errorf("record failed factor: %w", err)
		}
		return TokenPair{}, ErrBadAssertion
	case err != nil:
		if aerr := attempt.Abandon(ctx); aerr != nil {
			s.log.WarnContext(ctx, "withdraw factor attempt", "err", aerr)
		}
		return TokenPair{}, err
	}
	if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return TokenPair{}, fmt.Errorf("record factor success: %w", err)
	}
	pair, err := s.startSession(ctx, user, user.PasswordHash, in.Client, withFactor(nil, webauthnAMR(use)))
	if errors.Is(err, store.ErrPasswordChanged) {
		return TokenPair{}, ErrCeremonyInvalid // the account changed meanwhile: begin again
	}
	return pair, err
}

// verifyAssertion checks the assertion a of one of user's credentials creds against the
// ceremony's session (of a passkey login with asPasskey, else of a second factor): the
// authenticator's use, or ErrBadAssertion for an answer that does not verify, a counter that
// did not move forward, or a passkey login without user verification.
func (s *Service) verifyAssertion(user store.User, creds []store.WebAuthnCredential, session passkey.Session, a passkey.Assertion, asPasskey bool) (passkey.Use, error) {
	u, err := webauthnUser(user, creds)
	if err != nil {
		return passkey.Use{}, err
	}
	use, err := s.cfg.WebAuthn.FinishLogin(u, session, a, asPasskey)
	if errors.Is(err, passkey.ErrInvalid) || errors.Is(err, passkey.ErrCloned) || (err == nil && asPasskey && !use.UserVerified) {
		return passkey.Use{}, ErrBadAssertion // a passkey signs in alone only with the user verified
	}
	return use, err
}
