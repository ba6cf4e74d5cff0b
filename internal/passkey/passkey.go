// Package passkey is the WebAuthn relying party: the options of registrations and logins, and
// the verification of what authenticators answer (attestations, assertions). It is the only
// importer of go-webauthn. It keeps nothing: the use-case stores each ceremony's Session and
// each credential's Record, and hands them back.
//
// A ceremony's expiry is the caller's (the database's rows expire by the service's clock); the
// library's own session expiry is not used.
package passkey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Config is the relying party: its id (a registrable domain, the host of the public URL), the
// origins the browser may report, and the name authenticators show.
type Config struct {
	RPID    string
	RPName  string
	Origins []string
	// Timeout is what the options suggest to the browser for the user to answer.
	Timeout time.Duration
}

// RP carries out the ceremonies of one relying party.
type RP struct{ w *webauthn.WebAuthn }

// New checks cfg and returns its RP.
func New(cfg Config) (*RP, error) {
	t := webauthn.TimeoutConfig{Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout}
	w, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: cfg.RPName, RPOrigins: cfg.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: t, Registration: t},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party: %w", err)
	}
	return &RP{w: w}, nil
}

// ErrInvalid refuses an authenticator's answer that does not parse or does not verify (wrong
// challenge, origin, relying party, signature, flags). Its text is safe to show.
var ErrInvalid = errors.New("the authenticator's answer was not accepted")

// ErrCloned refuses an assertion whose signature counter did not move past the stored one.
var ErrCloned = errors.New("signature counter did not increase")

// User is a user as the ceremonies see them: Handle is the random user handle their
// credentials are registered under; Credentials their Records.
type User struct {
	Handle      []byte
	Name        string
	Credentials [][]byte
}

type rpUser struct {
	u     User
	creds []webauthn.Credential
}

func (r rpUser) WebAuthnID() []byte                         { return r.u.Handle }
func (r rpUser) WebAuthnName() string                       { return r.u.Name }
func (r rpUser) WebAuthnDisplayName() string                { return r.u.Name }
func (r rpUser) WebAuthnCredentials() []webauthn.Credential { return r.creds }

func (u User) rp() (rpUser, error) {
	out := rpUser{u: u}
	for _, data := range u.Credentials {
		var c webauthn.Credential
		if err := json.Unmarshal(data, &c); err != nil {
			return rpUser{}, fmt.Errorf("stored webauthn credential: %w", err)
		}
		out.creds = append(out.creds, c)
	}
	return out, nil
}

// Options are what the browser passes to navigator.credentials.create or .get, in JSON form
// ({"publicKey": {...}}, binary values base64url).
type Options map[string]any

// Session is a ceremony's state, to keep until its answer arrives (it holds the challenge:
// store it, never log it).
type Session []byte

func ceremony(options any, session *webauthn.SessionData) (Options, Session, error) {
	raw, err := json.Marshal(options)
	if err != nil {
		return nil, nil, err
	}
	var out Options
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, nil, err
	}
	s, err := json.Marshal(session)
	return out, s, err
}

func (s Session) data() (webauthn.SessionData, error) {
	var d webauthn.SessionData
	err := json.Unmarshal(s, &d)
	d.Expires = time.Time{} // the caller's rows expire, by its clock
	return d, err
}

// BeginRegistration starts the registration of a credential for u; passkey asks for a
// discoverable credential with user verification, else any security key will do. u's
// credentials are excluded (an authenticator is registered once).
func (rp *RP) BeginRegistration(u User, passkey bool) (Options, Session, error) {
	ru, err := u.rp()
	if err != nil {
		return nil, nil, err
	}
	sel := protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementDiscouraged,
		UserVerification: protocol.VerificationPreferred}
	if passkey {
		sel = protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired}
	}
	exclude := make([]protocol.CredentialDescriptor, len(ru.creds))
	for i := range ru.creds {
		exclude[i] = ru.creds[i].Descriptor()
	}
	opts, session, err := rp.w.BeginRegistration(ru, webauthn.WithAuthenticatorSelection(sel), webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, nil, err
	}
	return ceremony(opts, session)
}

// Record is a verified credential: its authenticator's id, the Data to store and hand back
// (in User.Credentials), and what a listing shows.
type Record struct {
	ID             []byte
	Data           []byte
	SignCount      uint32
	Discoverable   bool
	BackupEligible bool
	UserVerified   bool
}

// FinishRegistration verifies the attestation answer (the PublicKeyCredential as JSON) to the
// registration session of u (begun with passkey), and returns the credential. Refusals:
// ErrInvalid.
func (rp *RP) FinishRegistration(u User, s Session, answer []byte, passkey bool) (Record, error) {
	ru, err := u.rp()
	if err != nil {
		return Record{}, err
	}
	data, err := s.data()
	if err != nil {
		return Record{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c, err := rp.w.CreateCredential(ru, data, parsed)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if passkey && !c.Flags.UserVerified {
		return Record{}, fmt.Errorf("%w: user not verified", ErrInvalid)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return Record{}, err
	}
	return Record{ID: c.ID, Data: raw, SignCount: c.Authenticator.SignCount, Discoverable: passkey,
		BackupEligible: c.Flags.BackupEligible, UserVerified: c.Flags.UserVerified}, nil
}

// BeginLogin starts the assertion of one of u's credentials, as a second factor (user
// verification preferred: presence is enough after a password).
func (rp *RP) BeginLogin(u User) (Options, Session, error) {
	ru, err := u.rp()
	if err != nil {
		return nil, nil, err
	}
	opts, session, err := rp.w.BeginLogin(ru, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, nil, err
	}
	return ceremony(opts, session)
}

// BeginPasskeyLogin starts a login by any discoverable credential, with user verification.
func (rp *RP) BeginPasskeyLogin() (Options, Session, error) {
	opts, session, err := rp.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, err
	}
	return ceremony(opts, session)
}

// Assertion is a parsed assertion answer, not yet verified: which credential it names.
type Assertion struct {
	CredentialID []byte
	parsed       *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses the assertion answer (the PublicKeyCredential as JSON). Refusals:
// ErrInvalid.
func ParseAssertion(answer []byte) (Assertion, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Assertion{CredentialID: p.RawID, parsed: p}, nil
}

// Use is a verified assertion: the credential's new signature counter and what the
// authenticator tested.
type Use struct {
	SignCount      uint32
	UserVerified   bool
	BackupEligible bool
}

// FinishLogin verifies a against the login session s of u (a second-factor login or, with
// passkey, a passkey login). Refusals: ErrInvalid, ErrCloned.
func (rp *RP) FinishLogin(u User, s Session, a Assertion, passkey bool) (Use, error) {
	ru, err := u.rp()
	if err != nil {
		return Use{}, err
	}
	data, err := s.data()
	if err != nil {
		return Use{}, err
	}
	var c *webauthn.Credential
	if passkey {
		_, c, err = rp.w.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return ru, nil }, data, a.parsed)
	} else {
		c, err = rp.w.ValidateLogin(ru, data, a.parsed)
	}
	if err != nil {
		return Use{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Authenticator.CloneWarning {
		return Use{}, ErrCloned
	}
	flags := a.parsed.Response.AuthenticatorData.Flags
	return Use{SignCount: c.Authenticator.SignCount,
		UserVerified: flags.HasUserVerified(), BackupEligible: flags.HasBackupEligible()}, nil
}

// Encode is the text form of credential ids and user handles: base64url, unpadded, as the
// browser shows them.
func Encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Decode reverses Encode.
func Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// SessionUserID is the user handle the registration session s was begun for.
func SessionUserID(s Session) ([]byte, error) {
	d, err := s.data()
	return d.UserID, err
}
