// Package users is what creating, changing and deleting a user does, once, wherever the
// request comes from: the API (through server), and the createsuperuser and serve commands.
// It validates with userfields and the password policy, hashes before any transaction, and
// answers refusals as domain errors (*userfields.Errors, ErrNotFound, ErrLastSuperuser; a busy
// hasher is password.ErrBusy) that the caller words for its audience.
package users

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// Errors the use-cases return besides *userfields.Errors.
var (
	// ErrNotFound: no user has the given id.
	ErrNotFound = errors.New("user not found")
	// ErrLastSuperuser refuses to delete, deactivate or demote the last active superuser, who
	// alone could manage the others.
	ErrLastSuperuser = errors.New("the last active superuser cannot be deleted, deactivated or demoted")
)

// Messages of refused fields, in the API's words (clients may match on them).
const (
	msgUsernameTaken = "A user with that username already exists."
	msgOwnPassword   = "Change your own password with POST /api/v1/account/password/, which asks for the current one."
	msgOwnDeactivate = "You cannot deactivate your own account."
)

// Config holds what a Service needs besides the store and the hasher.
type Config struct {
	Metrics *metrics.Metrics // counts the sessions changes revoke; nil records nothing
	Now     func() time.Time // when sessions are revoked; default time.Now
	// Mailer makes the mail of a new user and of a change of a user (their address's
	// verification link); nil mails nothing.
	Mailer Mailer
}

// Mailer makes the mail a creation or a change of a user sends, written in its transaction.
type Mailer interface {
	Created(u store.User) (store.UserMail, error)
	Changed(before, after store.User) (store.UserMail, error)
}

// Service creates, changes and deletes users.
type Service struct {
	store   *store.Store
	hasher  *password.Hasher
	metrics *metrics.Metrics
	now     func() time.Time
	mailer  Mailer
}

// New returns a Service over st hashing with hasher.
func New(st *store.Store, hasher *password.Hasher, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: st, hasher: hasher, metrics: cfg.Metrics, now: cfg.Now, mailer: cfg.Mailer}
}

// SetMailer sets the Mailer of later creations and changes (it is built over the Service).
func (s *Service) SetMailer(m Mailer) { s.mailer = m }

// Prepare checks a sign-up's ch, which must set the username, the email and the password
// (names may be empty), and returns the active non-staff user it makes with the password's
// hash, not stored. Refusals as Create's.
func (s *Service) Prepare(ctx context.Context, ch Changes) (store.User, string, error) {
	u := store.User{IsActive: true}
	ch.IsActive, ch.IsStaff = nil, nil
	first, last := ch.FirstName, ch.LastName
	ch.FirstName, ch.LastName = nil, nil // optional, and may be empty
	fields := map[string]string{}
	for name, v := range map[string]*string{"first_name": first, "last_name": last} {
		if v != nil && *v != "" {
			if msg := userfields.Name(*v); msg != "" {
				fields[name] = msg
			}
		}
	}
	for name, v := range map[string]*string{"username": ch.Username, "email": ch.Email} {
		if v == nil {
			fields[name] = userfields.MsgRequired
		}
	}
	if len(fields) > 0 {
		if ch.Invalid == nil {
			ch.Invalid = map[string][]string{}
		} else {
			ch.Invalid = maps.Clone(ch.Invalid)
		}
		for name, msg := range fields {
			if _, ok := ch.Invalid[name]; !ok {
				ch.Invalid[name] = []string{msg}
			}
		}
	}
	if err := checkChanges(u, ch, required{password: true}); err != nil {
		return store.User{}, "", s.withTakenUsername(ctx, err, ch, 0)
	}
	hash, err := s.hashPassword(ctx, ch)
	if err != nil {
		return store.User{}, "", err
	}
	setChanges(&u, ch, hash)
	setIf(&u.FirstName, first)
	setIf(&u.LastName, last)
	return u, hash, nil
}

// CheckEmail refuses, as *userfields.Errors, an address that is not one.
func CheckEmail(addr string) error {
	if addr == "" {
		return userfields.Invalid(map[string][]string{"email": {userfields.MsgBlank}})
	}
	if msg := userfields.Email(addr); msg != "" {
		return userfields.Invalid(map[string][]string{"email": {msg}})
	}
	return nil
}

// UsernameTaken is the refusal of a username in use.
func UsernameTaken() error {
	return userfields.Invalid(map[string][]string{"username": {msgUsernameTaken}})
}

// Changes are the account fields a request sets; nil means "not given".
type Changes struct {
	Username, FirstName, LastName, Email, Password *string
	IsActive, IsStaff                              *bool
	// Invalid holds the fields the caller already refused (the API's spec validation), with
	// their messages: they are reported with the use-case's own findings and checked no
	// further.
	Invalid map[string][]string
}

// required names the fields a request must carry.
type required struct{ profile, password bool }

// Create creates an active user (never a superuser) from ch, which must set every profile
// field and the password, and records it as made by by. A refusal is a *userfields.Errors that
// names a taken username with the other refused fields.
func (s *Service) Create(ctx context.Context, ch Changes, by audit.Source) (store.User, error) {
	u := store.User{IsActive: true}
	if err := checkChanges(u, ch, required{profile: true, password: true}); err != nil {
		return store.User{}, s.withTakenUsername(ctx, err, ch, 0)
	}
	return s.insert(ctx, u, ch, by)
}

// insert hashes the password ch sets, applies ch, which checkChanges accepted, to u and
// stores u as a new user.
func (s *Service) insert(ctx context.Context, u store.User, ch Changes, by audit.Source) (store.User, error) {
	hash, err := s.hashPassword(ctx, ch)
	if err != nil {
		return store.User{}, err
	}
	setChanges(&u, ch, hash)
	var m store.UserMail
	if s.mailer != nil {
		if m, err = s.mailer.Created(u); err != nil {
			return store.User{}, err
		}
	}
	if err := s.store.CreateUserMail(ctx, &u, m, by.Event(audit.UserCreated)); err != nil {
		return store.User{}, storeError(err)
	}
	return u, nil
}

// Replace sets every profile field of user id (PUT); see update.
func (s *Service) Replace(ctx context.Context, id int64, ch Changes, by audit.Source) (store.User, error) {
	return s.update(ctx, id, ch, required{profile: true}, by)
}

// Patch sets the fields ch gives of user id (PATCH); see update.
func (s *Service) Patch(ctx context.Context, id int64, ch Changes, by audit.Source) (store.User, error) {
	return s.update(ctx, id, ch, required{}, by)
}

// update applies ch to user id on its current data, in one transaction that changes only what
// ch sets, so a concurrent edit neither undoes ch nor is undone by it. A new password or a
// deactivation revokes every session of the user in the same transaction. by.ActorID is the
// caller, who may not set their own password or deactivate themselves here.
func (s *Service) update(ctx context.Context, id int64, ch Changes, req required, by audit.Source) (store.User, error) {
	// Check ch against the user as they are now, so that a refused request costs no hash, and
	// hash before the transaction: hashing is slow and must not hold the user's row.
	cur, err := s.store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	if err := checkOwnChanges(by.ActorID, cur, ch); err != nil {
		return store.User{}, err
	}
	if err := checkChanges(cur, ch, req); err != nil {
		return store.User{}, s.withTakenUsername(ctx, err, ch, id)
	}
	hash, err := s.hashPassword(ctx, ch)
	if err != nil {
		return store.User{}, err
	}
	checked := policyAttributes(cur, ch)
	revoke := ch.Password != nil || ch.IsActive != nil && !*ch.IsActive
	var mailer store.UserMailer
	if s.mailer != nil {
		mailer = s.mailer.Changed
	}
	u, err := s.store.UpdateUserMail(ctx, id, func(u *store.User) error {
		// The fields were checked on their own; the password policy depends on the user's
		// details too, so check it again if a concurrent edit changed them (rare).
		if ch.Password != nil && policyAttributes(*u, ch) != checked {
			if err := checkChanges(*u, ch, req); err != nil {
				return err
			}
		}
		setChanges(u, ch, hash)
		return nil
	}, revoke, s.now().UTC(), mailer, by.UserUpdate())
	if err != nil {
		return store.User{}, storeError(fmt.Errorf("update user %d: %w", id, err))
	}
	if ch.Password != nil {
		s.metrics.Revoked(metrics.RevokePasswordChange)
	}
	if ch.IsActive != nil && !*ch.IsActive && cur.IsActive {
		s.metrics.Revoked(metrics.RevokeDeactivation)
	}
	return u, nil
}

// checkOwnChanges refuses what would let a stolen access token lock the caller out of their
// own account for good: setting their password without the current one, or deactivating
// themselves (both end every session of theirs).
func checkOwnChanges(caller int64, cur store.User, ch Changes) error {
	if caller != cur.ID {
		return nil
	}
	fields := map[string][]string{}
	if ch.Password != nil {
		fields["password"] = []string{msgOwnPassword}
	}
	if ch.IsActive != nil && !*ch.IsActive {
		fields["is_active"] = []string{msgOwnDeactivate}
	}
	if len(fields) > 0 {
		return userfields.Invalid(fields)
	}
	return nil
}

// Delete deletes user id and their sessions, recorded as done by by.
func (s *Service) Delete(ctx context.Context, id int64, by audit.Source) error {
	if err := s.store.DeleteUser(ctx, id, by.Event(audit.UserDeleted)); err != nil {
		return storeError(fmt.Errorf("delete user %d: %w", id, err))
	}
	s.metrics.Revoked(metrics.RevokeDeletion)
	return nil
}

// checkChanges validates ch for u: each field on its own, and a new password against the
// policy with u's details as ch leaves them. A refusal is a *userfields.Errors, Policy
// when only the password policy refused.
func checkChanges(u store.User, ch Changes, req required) error {
	fields := maps.Clone(ch.Invalid)
	if fields == nil {
		fields = map[string][]string{}
	}
	check := func(name string, v *string, must bool, validate func(string) string) {
		if _, reported := fields[name]; reported {
			return
		}
		switch {
		case v == nil && must:
			fields[name] = []string{userfields.MsgRequired}
		case v == nil:
		case *v == "":
			fields[name] = []string{userfields.MsgBlank}
		default:
			if msg := validate(*v); msg != "" {
				fields[name] = []string{msg}
			}
		}
	}
	check("username", ch.Username, req.profile, func(v string) string { _, msg := userfields.Username(v); return msg })
	check("first_name", ch.FirstName, req.profile, userfields.Name)
	check("last_name", ch.LastName, req.profile, userfields.Name)
	check("email", ch.Email, req.profile, userfields.Email)
	check("password", ch.Password, req.password, func(string) string { return "" })

	var policy []string
	if _, reported := fields["password"]; !reported && ch.Password != nil && *ch.Password != "" {
		policy = password.Validate(*ch.Password, policyAttributes(u, ch))
	}
	switch {
	case len(fields) > 0:
		if len(policy) > 0 {
			fields["password"] = policy
		}
		return userfields.Invalid(fields)
	case len(policy) > 0:
		return userfields.PolicyRefused("password", policy)
	}
	return nil
}

// policyAttributes are the details of u, as ch leaves them, that the password policy
// compares a new password with.
func policyAttributes(u store.User, ch Changes) password.Attributes {
	setChanges(&u, ch, "")
	return password.Attributes{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email}
}

// hashPassword hashes the new password ch sets, if any; checkChanges must have accepted ch.
// A busy hasher is password.ErrBusy.
func (s *Service) hashPassword(ctx context.Context, ch Changes) (string, error) {
	if ch.Password == nil {
		return "", nil
	}
	hash, err := s.hasher.Hash(ctx, *ch.Password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}

// setChanges applies ch, which checkChanges accepted, to u; hash is the new password's hash
// when ch sets a password. A username is stored normalised (see userfields.Username).
func setChanges(u *store.User, ch Changes, hash string) {
	if ch.Username != nil {
		u.Username, _ = userfields.Username(*ch.Username)
	}
	setIf(&u.FirstName, ch.FirstName)
	setIf(&u.LastName, ch.LastName)
	setIf(&u.Email, ch.Email)
	setIf(&u.IsActive, ch.IsActive)
	setIf(&u.IsStaff, ch.IsStaff)
	if ch.Password != nil {
		u.PasswordHash = hash
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// withTakenUsername adds to a refusal of fields (err, from checkChanges) that the username
// ch sets is taken by a user other than self, which the insert or update would otherwise
// report only once the other fields are fixed. Other errors pass through.
func (s *Service) withTakenUsername(ctx context.Context, err error, ch Changes, self int64) error {
	var e *userfields.Errors
	if !errors.As(err, &e) || ch.Username == nil {
		return err
	}
	if _, reported := e.Fields["username"]; reported {
		return err
	}
	other, lookupErr := s.store.UserByUsername(ctx, *ch.Username)
	switch {
	case errors.Is(lookupErr, store.ErrNotFound):
		return err
	case lookupErr != nil:
		return fmt.Errorf("check username: %w", lookupErr)
	case other.ID == self:
		return err
	}
	fields := maps.Clone(e.Fields)
	fields["username"] = []string{msgUsernameTaken}
	return userfields.Invalid(fields)
}

// storeError turns the store's refusals into the use-case's and passes anything else through.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return userfields.Invalid(map[string][]string{"username": {msgUsernameTaken}})
	case errors.Is(err, store.ErrLastSuperuser):
		return ErrLastSuperuser
	}
	return err
}
