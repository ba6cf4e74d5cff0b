// Package recovery is what a password reset does: the request (by username or email
// address), which answers the same whether or not an account exists; its resolution by the
// mail outbox into a one-time link; and the confirmation, which sets a new password under the
// policy and ends every session of the user.
//
// Enumeration safety is by construction: the request does the same work for every login
// (validate, check the per-IP and per-domain limits, write one request row) and never reads
// the users table. The outbox worker resolves requests later, out of the request's time:
// it finds the account, applies the per-account limit silently, and makes the token and the
// message in one transaction.
package recovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
	"github.com/authapi/authapi/internal/userfields"
)

// Config holds the rules of password reset.
type Config struct {
	mail.Flow
	// Lifetime is how long a reset link works; default 30 minutes.
	Lifetime time.Duration
	// PerIP and PerDomain bound the requests from one client IP and for one email domain
	// within Window (answered 429); PerAccount the links sent to one account (silently: the
	// answer stays 202). Zero takes the default, negative turns a limit off.
	PerIP, PerDomain, PerAccount int
	Window                       time.Duration
	Metrics                      *metrics.Metrics
}

// DefaultConfig holds the defaults of the settings.
func DefaultConfig() Config {
	return Config{Lifetime: 30 * time.Minute, PerIP: 10, PerDomain: 100, PerAccount: 3, Window: time.Hour}
}

// Errors.
var (
	// ErrTokenInvalid refuses a reset token that is unknown, tampered with, used, expired,
	// or whose user is gone or inactive: alike to the client.
	ErrTokenInvalid = errors.New("the reset link is invalid, used or expired")
)

// Service carries out password resets over a store.
type Service struct {
	cfg     Config
	store   *store.Store
	hasher  *password.Hasher
	compose mail.Composer
	log     *slog.Logger
}

// New returns the Service of cfg over st; zero settings take DefaultConfig's.
func New(cfg Config, st *store.Store, hasher *password.Hasher) *Service {
	d := DefaultConfig()
	cfg.Lifetime, cfg.Window = cmp.Or(cfg.Lifetime, d.Lifetime), cmp.Or(cfg.Window, d.Window)
	cfg.PerIP, cfg.PerDomain, cfg.PerAccount = cmp.Or(cfg.PerIP, d.PerIP), cmp.Or(cfg.PerDomain, d.PerDomain), cmp.Or(cfg.PerAccount, d.PerAccount)
	cfg.Flow = cfg.Flow.WithDefaults()
	return &Service{cfg: cfg, store: st, hasher: hasher, log: cfg.Logger, compose: cfg.Composer()}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// limitedWhat names the requests a *mail.LimitedError of this package refuses.
const limitedWhat = "password reset requests"

// maxLogin bounds a login: the longest username or email address accepted.
const maxLogin = 254

// Request accepts a reset request for login (a username or an email address). It returns
// nil whether or not an account exists, having done the same work; refusals:
// *userfields.Errors (login missing, blank or too long), *mail.LimitedError.
func (s *Service) Request(ctx context.Context, login *string, c auth.Client) error {
	switch {
	case login == nil:
		return userfields.Invalid(map[string][]string{"login": {userfields.MsgRequired}})
	case strings.TrimSpace(*login) == "":
		return userfields.Invalid(map[string][]string{"login": {userfields.MsgBlank}})
	case utf8.RuneCountInString(*login) > maxLogin:
		return userfields.Invalid(map[string][]string{"login": {fmt.Sprintf("Ensure this field has no more than %d characters.", maxLogin)}})
	}
	l := strings.TrimSpace(*login)
	now := s.now()
	since := now.Add(-s.cfg.Window)
	domain := mail.Domain(l)
	ipKey := throttle.IPKey(c.IP)
	limits := []store.RequestLimit{
		{Reason: mail.ReasonIP, Column: "ip_key", Key: ipKey, Max: s.cfg.PerIP, Since: since},
		{Reason: mail.ReasonDomain, Column: "domain", Key: domain, Max: s.cfg.PerDomain, Since: since},
	}
	refused, oldest, err := s.store.RecordResetRequest(ctx, store.ResetRequest{
		Login: l, IP: c.IP, IPKey: ipKey, Domain: domain, UserAgent: c.UserAgent, CreatedAt: now,
	}, limits)
	if err != nil {
		return err
	}
	if refused != nil {
		return mail.Limited(limitedWhat, refused.Reason, oldest, s.cfg.Window, now)
	}
	s.cfg.Kick()
	return nil
}

// resolveBatch bounds the requests one round of the outbox resolves.
const resolveBatch = 100

// ResolvePending resolves the pending requests into links and messages: the outbox runs it
// at the start of each round (mail.OutboxConfig.Before).
func (s *Service) ResolvePending(ctx context.Context) error {
	now := s.now()
	_, err := s.store.ResolveResetRequests(ctx, resolveBatch, now, now.Add(-s.cfg.Window),
		func(r store.ResetRequest, accounts []store.ResetCandidate) ([]store.ResetIssue, error) {
			return s.issue(now, r, accounts)
		})
	return err
}

// issue makes a link and its message for each account of a request that has an address and
// is under the per-account limit; the others are skipped silently (logged at debug level).
func (s *Service) issue(now time.Time, r store.ResetRequest, accounts []store.ResetCandidate) ([]store.ResetIssue, error) {
	var out []store.ResetIssue
	for _, a := range accounts {
		u := a.User
		if u.Email == "" {
			s.log.Debug("password reset: the account has no email address", "user_id", u.ID)
			continue
		}
		if s.cfg.PerAccount >= 0 && a.Recent >= int64(s.cfg.PerAccount) {
			s.log.Info("password reset: per-account limit reached; no link sent", "user_id", u.ID)
			continue
		}
		tok := mail.NewToken()
		msg, err := s.compose.Message(mail.KindPasswordReset, u.Email, now, mail.Data{
			Username: u.Username, Email: u.Email,
			Link: s.cfg.Links.Link(mail.RouteResetPassword, tok), ExpiresIn: mail.Words(s.cfg.Lifetime),
			At: r.CreatedAt, IP: r.IP, UserAgent: r.UserAgent,
		})
		if err != nil {
			return nil, err
		}
		msg.UserID = u.ID
		ev := audit.Source{At: r.CreatedAt, IP: r.IP, UserAgent: r.UserAgent}.Event(audit.PasswordResetRequested)
		out = append(out, store.ResetIssue{
			Token: store.EmailToken{Hash: mail.HashToken(s.cfg.Key, tok), Purpose: store.PurposePasswordReset, UserID: u.ID,
				Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetime)},
			Mail:   msg,
			Events: []store.AuditEvent{ev},
		})
	}
	return out, nil
}

// Confirm sets the password of the user of a reset token: the token must be valid and
// unused, the password must pass the policy. Every session of the user ends, on every
// instance; the IPs they logged in from are forgotten; the user is told by mail. Refusals:
// ErrTokenInvalid, *userfields.Errors (fields missing or blank, or the policy's objections
// with Policy set), password.ErrBusy.
func (s *Service) Confirm(ctx context.Context, tok, newPassword *string, c auth.Client) error {
	fields := map[string][]string{}
	for name, v := range map[string]*string{"token": tok, "password": newPassword} {
		switch {
		case v == nil:
			fields[name] = []string{userfields.MsgRequired}
		case *v == "":
			fields[name] = []string{userfields.MsgBlank}
		}
	}
	if len(fields) > 0 {
		return userfields.Invalid(fields)
	}
	hash := mail.HashToken(s.cfg.Key, *tok)
	t, err := s.store.EmailTokenByHash(ctx, hash, store.PurposePasswordReset)
	if errors.Is(err, store.ErrEmailTokenInvalid) {
		return ErrTokenInvalid
	}
	if err != nil {
		return err
	}
	now := s.now()
	if t.UsedAt != nil || !now.Before(t.ExpiresAt) {
		return ErrTokenInvalid
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrTokenInvalid
	}
	if err != nil {
		return fmt.Errorf("get user %d: %w", t.UserID, err)
	}
	if !u.IsActive {
		return ErrTokenInvalid
	}
	if policy := password.Validate(*newPassword, password.Attributes{
		Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
	}); len(policy) > 0 {
		return userfields.PolicyRefused("password", policy)
	}
	newHash, err := s.hasher.Hash(ctx, *newPassword)
	if errors.Is(err, password.ErrBusy) {
		return err
	}
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var notice []store.MailMessage
	if u.Email != "" {
		msg, err := s.compose.Message(mail.KindPasswordChanged, u.Email, now, mail.Data{
			Username: u.Username, Email: u.Email, IP: c.IP, UserAgent: c.UserAgent,
		})
		if err != nil {
			return err
		}
		msg.UserID = u.ID
		notice = append(notice, msg)
	}
	ev := audit.Source{At: now, IP: c.IP, UserAgent: c.UserAgent}.Event(audit.PasswordReset)
	ev.Fields = []string{"password"}
	_, err = s.store.ResetPassword(ctx, store.PasswordReset{
		TokenHash: hash, UserID: u.ID, NewHash: newHash, At: now, Events: []store.AuditEvent{ev}, Mail: notice,
	})
	switch {
	case errors.Is(err, store.ErrEmailTokenInvalid), errors.Is(err, store.ErrNotFound):
		return ErrTokenInvalid
	case err != nil:
		return err
	}
	s.cfg.Metrics.Revoked(metrics.RevokePasswordChange)
	s.cfg.Kick()
	return nil
}
