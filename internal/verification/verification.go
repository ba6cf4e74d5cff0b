// Package verification is what the address flows do: verifying a user's email address by a
// link mailed to it (on creation, on every change of the address, and when asked again), a
// self-service change of address that takes effect only once the new address confirms it
// (the old one is told), sign-up, and the notice of a login from a new device.
//
// Every message is written to the mail outbox in the transaction of the change that causes
// it (store.UserMail); links carry a one-time token in their fragment, stored only as its
// HMAC (mail.HashToken), which works once and only while the address it was sent to is still
// the one it confirms. Requests for mail are limited per client IP, per account and per
// recipient domain (store.MailLimit); sign-up answers alike whether or not the address is in
// use.
package verification

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/userfields"
	"github.com/authapi/authapi/internal/users"
)

// Kinds of the messages of these flows: templates in internal/mail/templates.
const (
	KindVerifyEmail    = "verify_email"     // a verification link, to the address
	KindChangeEmail    = "change_email"     // a change's link, to the new address
	KindEmailChanged   = "email_changed"    // the old address told of a change
	KindSignUpExisting = "signup_existing"  // a sign-up with an address in use, to its owner
	KindNewDevice      = "new_device_login" // a login from a new device
)

// requestSignUp is the kind of mail request a sign-up records (store.MailRequest).
const requestSignUp = "signup"

// Config holds the rules of the address flows.
type Config struct {
	mail.Flow
	// Lifetime is how long a verification or change link works; default 24 hours.
	Lifetime time.Duration
	// SignUp lets anyone create an account (off by default).
	SignUp bool
	// NewDeviceNotice mails the user at a login from a device their account has not used.
	NewDeviceNotice bool
	// PerIP, PerAccount and PerDomain bound the requests for mail within Window from one
	// client IP, for one account and to one recipient domain. Zero is the default; negative
	// turns a limit off.
	PerIP, PerAccount, PerDomain int
	Window                       time.Duration
}

// DefaultConfig holds the defaults of the settings.
func DefaultConfig() Config {
	return Config{Lifetime: 24 * time.Hour, PerIP: 20, PerAccount: 5, PerDomain: 200, Window: time.Hour}
}

// Errors.
var (
	// ErrTokenInvalid refuses a link's token that is unknown, tampered with, used, expired,
	// or for an address that is no longer the one it confirms.
	ErrTokenInvalid = errors.New("the link is invalid, used or expired")
	// ErrSignUpDisabled refuses a sign-up while sign-up is off.
	ErrSignUpDisabled = errors.New("sign-up is disabled")
	// ErrAlreadyVerified refuses to send a verification link for an address verified already.
	ErrAlreadyVerified = errors.New("the address is verified already")
	// ErrNoAddress refuses to send a verification link to an account with no address.
	ErrNoAddress = errors.New("the account has no email address")
)

// msgSameAddress refuses a change of address to the address in use.
const msgSameAddress = "This is your address already."

// limitedWhat names the requests a *mail.LimitedError of this package refuses.
const limitedWhat = "requests for mail"

// Service carries out the address flows over a store.
type Service struct {
	cfg     Config
	store   *store.Store
	users   *users.Service
	compose mail.Composer
	log     *slog.Logger
}

// New returns the Service of cfg over st; zero settings take DefaultConfig's.
func New(cfg Config, st *store.Store, us *users.Service) *Service {
	d := DefaultConfig()
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = d.Lifetime
	}
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	cfg.PerIP, cfg.PerAccount, cfg.PerDomain = cmp.Or(cfg.PerIP, d.PerIP), cmp.Or(cfg.PerAccount, d.PerAccount), cmp.Or(cfg.PerDomain, d.PerDomain)
	cfg.Flow = cfg.Flow.WithDefaults()
	return &Service{cfg: cfg, store: st, users: us, log: cfg.Logger, compose: cfg.Composer()}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// SignUpEnabled reports whether sign-up is on.
func (s *Service) SignUpEnabled() bool { return s.cfg.SignUp }

// limits are the limits of a request for mail to addr from client, for account userID (0:
// none, or not to be told).
func (s *Service) limits(now time.Time, client auth.Client, userID int64, addr string) []store.MailLimit {
	since := now.Add(-s.cfg.Window)
	out := []store.MailLimit{
		{Reason: mail.ReasonIP, Scope: store.MailLimitIP, Key: throttle.IPKey(client.IP), Max: s.cfg.PerIP, Since: since},
		{Reason: mail.ReasonDomain, Scope: store.MailLimitDomain, Key: mail.Domain(addr), Max: s.cfg.PerDomain, Since: since},
	}
	if userID != 0 {
		// The user's own requests only: sign-up notices to the user (see SignUp) must not use up
		// their allowance.
		out = append(out, store.MailLimit{Reason: mail.ReasonAccount, Scope: store.MailLimitAccount, Key: userID,
			Kinds: []string{KindVerifyEmail, KindChangeEmail}, Max: s.cfg.PerAccount, Since: since})
	}
	return out
}

func request(kind string, now time.Time, client auth.Client, userID int64, addr string) store.MailRequest {
	return store.MailRequest{Kind: kind, UserID: userID, IP: throttle.IPKey(client.IP), Domain: mail.Domain(addr), At: now}
}

// link makes a one-time token of purpose for addr and the mail of kind that carries it.
func (s *Service) link(purpose, kind string, u store.User, addr string, now time.Time, client auth.Client) (store.UserMail, error) {
	tok := mail.NewToken()
	msg, err := s.compose.Message(kind, addr, now, mail.Data{Username: u.Username, Email: addr,
		Link: s.cfg.Links.Link(mail.RouteVerifyEmail, tok), ExpiresIn: mail.Words(s.cfg.Lifetime), IP: client.IP, UserAgent: client.UserAgent})
	if err != nil {
		return store.UserMail{}, err
	}
	t := store.EmailToken{Hash: mail.HashToken(s.cfg.Key, tok), Purpose: purpose, UserID: u.ID, Email: addr,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetime)}
	return store.UserMail{Tokens: []store.EmailToken{t}, Mail: []store.MailMessage{msg}}, nil
}

// verification is the verification link of u's address, none when u has none or it is
// verified.
func (s *Service) verification(u store.User, now time.Time, client auth.Client) (store.UserMail, error) {
	if u.Email == "" || u.EmailVerified {
		return store.UserMail{}, nil
	}
	return s.link(store.PurposeVerifyEmail, KindVerifyEmail, u, u.Email, now, client)
}

// Created is the mail of a user made by a superuser: the verification link (users.Mailer).
func (s *Service) Created(u store.User) (store.UserMail, error) {
	return s.verification(u, s.now(), auth.Client{})
}

// Changed is the mail of a change of a user by a superuser (users.Mailer): a change of the
// address takes effect at once (a superuser is trusted to correct it), unverified, with a
// verification link to the new address and a notice to the old one.
func (s *Service) Changed(before, after store.User) (store.UserMail, error) {
	if before.Email == after.Email {
		return store.UserMail{}, nil
	}
	now := s.now()
	m, err := s.verification(after, now, auth.Client{})
	if err != nil || before.Email == "" {
		return m, err
	}
	notice, err := s.changedNotice(before, after, now)
	m.Mail = append(m.Mail, notice)
	return m, err
}

// changedNotice tells before's address that the user's address became after's.
func (s *Service) changedNotice(before, after store.User, now time.Time) (store.MailMessage, error) {
	return s.compose.Message(KindEmailChanged, before.Email, now, mail.Data{Username: after.Username, Email: before.Email,
		Extra: map[string]string{"NewEmail": after.Email}})
}

// Resend mails a new verification link to the caller's address (earlier links stop working).
// Refusals: ErrNoAddress, ErrAlreadyVerified, *mail.LimitedError.
func (s *Service) Resend(ctx context.Context, u store.User, client auth.Client) error {
	switch {
	case u.Email == "":
		return ErrNoAddress
	case u.EmailVerified:
		return ErrAlreadyVerified
	}
	now := s.now()
	m, err := s.verification(u, now, client)
	if err != nil {
		return err
	}
	ev := audit.Source{At: now, ActorID: u.ID, IP: client.IP, UserAgent: client.UserAgent}.Event(audit.EmailVerificationSent)
	refused, oldest, err := s.store.SendAddressMail(ctx, store.AddressMail{UserID: u.ID, Email: u.Email,
		Limits: s.limits(now, client, u.ID, u.Email), Request: request(KindVerifyEmail, now, client, u.ID, u.Email),
		Mail: m, Events: []store.AuditEvent{ev}})
	switch {
	case errors.Is(err, store.ErrAddressChanged):
		return ErrAlreadyVerified
	case err != nil:
		return err
	case refused != nil:
		return s.limitedAudited(ctx, now, client, u.ID, refused, oldest)
	}
	s.cfg.Kick()
	return nil
}

// RequestChange asks to change u's address to addr (u's password was checked by the caller):
// a link goes to addr, and addr becomes u's pending address. Refusals: *userfields.Errors
// (addr invalid), *mail.LimitedError.
func (s *Service) RequestChange(ctx context.Context, u store.User, addr string, client auth.Client, sessionID string) (store.User, error) {
	if err := users.CheckEmail(addr); err != nil {
		return store.User{}, err
	}
	if addr == u.Email {
		return store.User{}, userfields.Invalid(map[string][]string{"email": {msgSameAddress}})
	}
	now := s.now()
	m, err := s.link(store.PurposeChangeEmail, KindChangeEmail, u, addr, now, client)
	if err != nil {
		return store.User{}, err
	}
	ev := audit.Source{At: now, ActorID: u.ID, SessionID: sessionID, IP: client.IP, UserAgent: client.UserAgent}.Event(audit.EmailChangeRequested)
	ev.Fields = []string{"email"}
	refused, oldest, err := s.store.SendAddressMail(ctx, store.AddressMail{UserID: u.ID, Email: addr, Change: true,
		Limits: s.limits(now, client, u.ID, addr), Request: request(KindChangeEmail, now, client, u.ID, addr),
		Mail: m, Events: []store.AuditEvent{ev}})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, auth.ErrUserNotFound
	case err != nil:
		return store.User{}, err
	case refused != nil:
		return store.User{}, s.limitedAudited(ctx, now, client, u.ID, refused, oldest)
	}
	s.cfg.Kick()
	u.PendingEmail = addr
	return u, nil
}

// limitedAudited records a refusal by limit l and returns it.
func (s *Service) limitedAudited(ctx context.Context, now time.Time, client auth.Client, userID int64, l *store.MailLimit, oldest time.Time) error {
	ev := audit.Source{At: now, IP: client.IP, UserAgent: client.UserAgent}.Event(audit.MailLimited)
	ev.TargetID = userID
	ev.Fields = []string{l.Reason}
	if err := s.store.RecordAuditEvents(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "record mail limit", "err", err)
	}
	return mail.Limited(limitedWhat, l.Reason, oldest, s.cfg.Window, now)
}

// Confirmed is the outcome of Confirm: the address confirmed and whether it became the
// user's (a change) rather than only verified.
type Confirmed struct {
	Email   string
	Changed bool
}

// Confirm confirms an address with the token of a link. Refusals: ErrTokenInvalid.
func (s *Service) Confirm(ctx context.Context, token string, client auth.Client) (Confirmed, error) {
	if token == "" {
		return Confirmed{}, ErrTokenInvalid
	}
	now := s.now()
	src := audit.Source{At: now, IP: client.IP, UserAgent: client.UserAgent}
	changed := src.Event(audit.EmailChanged)
	changed.Fields = []string{"email"}
	u, isChange, err := s.store.ConfirmAddress(ctx, store.AddressConfirmation{
		TokenHash: mail.HashToken(s.cfg.Key, token), At: now,
		Notice: func(before, after store.User) (store.UserMail, error) {
			if before.Email == "" {
				return store.UserMail{}, nil
			}
			msg, err := s.changedNotice(before, after, now)
			return store.UserMail{Mail: []store.MailMessage{msg}}, err
		},
		Verified: []store.AuditEvent{src.Event(audit.EmailVerified)},
		Changed:  []store.AuditEvent{changed},
	})
	if errors.Is(err, store.ErrEmailTokenInvalid) || errors.Is(err, store.ErrNotFound) {
		return Confirmed{}, ErrTokenInvalid
	}
	if err != nil {
		return Confirmed{}, err
	}
	if isChange {
		s.cfg.Kick()
	}
	return Confirmed{Email: u.Email, Changed: isChange}, nil
}

// SignUp is a sign-up's input.
type SignUp struct {
	Username, Email, Password, FirstName, LastName *string
	// Invalid holds the fields the API's validation refused (see users.Changes).
	Invalid map[string][]string
}

// SignUp creates an account of its own for whoever asks, when sign-up is on, and mails its
// address a verification link; for an address in use, no account is made and the address's
// owner is told instead, after the same work (the password is hashed either way), with the
// same answer (nil). Refusals: ErrSignUpDisabled, *userfields.Errors (a taken username among
// them), *mail.LimitedError (per IP and recipient domain only), password.ErrBusy.
func (s *Service) SignUp(ctx context.Context, in SignUp, client auth.Client) error {
	if !s.cfg.SignUp {
		return ErrSignUpDisabled
	}
	ch := users.Changes{Username: in.Username, FirstName: orEmpty(in.FirstName), LastName: orEmpty(in.LastName),
		Email: in.Email, Password: in.Password, Invalid: in.Invalid}
	u, hash, err := s.users.Prepare(ctx, ch)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	now := s.now()
	src := audit.Source{At: now, IP: client.IP, UserAgent: client.UserAgent}
	out, err := s.store.SignUp(ctx, store.SignUp{
		User: &u, Limits: s.limits(now, client, 0, u.Email), Request: request(requestSignUp, now, client, 0, u.Email),
		// Bounds the notices one address's owner gets, silently: the answer must not differ.
		NoticeLimit: store.MailLimit{Reason: mail.ReasonAccount, Scope: store.MailLimitAccount, Kinds: []string{requestSignUp},
			Max: s.cfg.PerAccount, Since: now.Add(-s.cfg.Window)},
		Created: func(nu store.User) (store.UserMail, error) { return s.verification(nu, now, client) },
		Existing: func(owner store.User) (store.UserMail, error) {
			msg, err := s.compose.Message(KindSignUpExisting, owner.Email, now, mail.Data{Username: owner.Username, Email: owner.Email,
				IP: client.IP, UserAgent: client.UserAgent})
			return store.UserMail{Mail: []store.MailMessage{msg}}, err
		},
		CreatedEvents:  []store.AuditEvent{src.Event(audit.SignUpCreated)},
		ExistingEvents: []store.AuditEvent{src.Event(audit.SignUpExistingEmail)},
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return users.UsernameTaken()
	case err != nil:
		return err
	case out.Refused != nil:
		return s.limitedAudited(ctx, now, client, 0, out.Refused, out.Oldest)
	case out.NoticeDropped:
		s.log.InfoContext(ctx, "sign-up with an address in use: per-account limit reached; no notice sent")
		return nil
	}
	s.cfg.Kick()
	return nil
}

func orEmpty(v *string) *string {
	if v == nil {
		e := ""
		return &e
	}
	return v
}

// LoginFrom records the device of a successful login and, when it is new to an account that
// has logged in before and the notice is on, mails the user (auth.DeviceNotices).
func (s *Service) LoginFrom(ctx context.Context, u store.User, d auth.Device) error {
	ev := audit.Source{At: d.At, ActorID: u.ID, IP: d.Client.IP, UserAgent: d.Client.UserAgent}.Event(audit.LoginNewDevice)
	noticed, err := s.store.RecordLoginDevice(ctx, store.LoginDevice{UserID: u.ID, Device: d.Key, At: d.At,
		Notice: func(cur store.User) (store.UserMail, error) {
			if cur.Email == "" {
				return store.UserMail{}, nil
			}
			msg, err := s.compose.Message(KindNewDevice, cur.Email, d.At, mail.Data{Username: cur.Username, Email: cur.Email,
				At: d.At, IP: d.Client.IP, UserAgent: d.Client.UserAgent})
			return store.UserMail{Mail: []store.MailMessage{msg}}, err
		},
		Events: []store.AuditEvent{ev}})
	if noticed {
		s.cfg.Kick()
	}
	return err
}

// NoticesNewDevices reports whether logins from new devices are noticed (the setting).
func (s *Service) NoticesNewDevices() bool { return s.cfg.NewDeviceNotice }
