package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// userChanges are the account fields a request sets; nil means "not given".
type userChanges struct {
	Username, FirstName, LastName, Email, Password *string
	IsActive, IsStaff                              *bool
	// Invalid holds the members the spec validation refused, with its messages (see
	// specFieldErrors): checkChanges reports them with its own findings, and checks them no
	// further.
	Invalid map[string][]string
}

// required names the fields a request must carry.
type required struct{ profile, password bool }

// applyChanges validates ch and applies it to u, hashing a new password with hasher. A
// refusal is an *apiError (see checkChanges); a busy hasher is password.ErrBusy.
func applyChanges(ctx context.Context, hasher *password.Hasher, u *store.User, ch userChanges, req required) error {
	if err := checkChanges(*u, ch, req); err != nil {
		return err
	}
	hash, err := hashPassword(ctx, hasher, ch)
	if err != nil {
		return err
	}
	setChanges(u, ch, hash)
	return nil
}

// checkChanges validates ch for u: each field on its own, and a new password against the
// policy with u's details as ch leaves them. A refusal is an *apiError: 400 invalid with
// fields, or 400 invalid_password when only the password policy refused.
func checkChanges(u store.User, ch userChanges, req required) error {
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
			fields[name] = []string{msgRequired}
		case v == nil:
		case *v == "":
			fields[name] = []string{msgBlank}
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
		return errInvalid(fields)
	case len(policy) > 0:
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_password",
			Detail: strings.Join(policy, " "), Fields: map[string][]string{"password": policy}}
	}
	return nil
}

// policyAttributes are the details of u, as ch leaves them, that the password policy
// compares a new password with.
func policyAttributes(u store.User, ch userChanges) password.Attributes {
	setChanges(&u, ch, "")
	return password.Attributes{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email}
}

// hashPassword hashes the new password ch sets, if any; checkChanges must have accepted ch.
func hashPassword(ctx context.Context, hasher *password.Hasher, ch userChanges) (string, error) {
	if ch.Password == nil {
		return "", nil
	}
	hash, err := hasher.Hash(ctx, *ch.Password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}

// setChanges applies ch, which checkChanges accepted, to u; hash is the new password's hash
// when ch sets a password. A username is stored normalised (see userfields.Username).
func setChanges(u *store.User, ch userChanges, hash string) {
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
func withTakenUsername(ctx context.Context, st *store.Store, err error, ch userChanges, self int64) error {
	var e *apiError
	if !errors.As(err, &e) || e.Fields == nil || ch.Username == nil {
		return err
	}
	if _, reported := e.Fields["username"]; reported {
		return err
	}
	other, lookupErr := st.UserByUsername(ctx, *ch.Username)
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
	return errInvalid(fields)
}

// storeUserError maps the store's refusals to the API's 400s and passes anything else through.
func storeUserError(err error) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return errInvalid(map[string][]string{"username": {msgUsernameTaken}})
	case errors.Is(err, store.ErrLastSuperuser):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid",
			Detail: "The last active superuser cannot be deleted, deactivated or demoted."}
	}
	return err
}

// InvalidUserError tells why CreateSuperuser refused its input, field by field.
type InvalidUserError struct{ Fields map[string][]string }

func (e *InvalidUserError) Error() string {
	names := make([]string, 0, len(e.Fields))
	for name := range e.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, name+": "+strings.Join(e.Fields[name], " "))
	}
	return strings.Join(parts, "; ")
}

// NewUser is what CreateSuperuser needs.
type NewUser struct{ Username, FirstName, LastName, Email, Password string }

// CreateSuperuser creates an active staff superuser with the same rules the API applies
// (username, email, password policy), and records it in the audit log as made by the
// createsuperuser command. Refused input is an *InvalidUserError.
func CreateSuperuser(ctx context.Context, st *store.Store, hasher *password.Hasher, in NewUser) (store.User, error) {
	return createSuperuser(ctx, st, hasher, in, audit.CLI("createsuperuser"))
}

func createSuperuser(ctx context.Context, st *store.Store, hasher *password.Hasher, in NewUser, by audit.Source) (store.User, error) {
	u := store.User{IsActive: true, IsStaff: true, IsSuperuser: true}
	err := applyChanges(ctx, hasher, &u, userChanges{
		Username: &in.Username, FirstName: &in.FirstName, LastName: &in.LastName, Email: &in.Email, Password: &in.Password,
	}, required{profile: true, password: true})
	if err == nil {
		err = storeUserError(st.CreateUser(ctx, &u, by.Event(audit.UserCreated)))
	}
	var ae *apiError
	if errors.As(err, &ae) {
		fields := ae.Fields
		if len(fields) == 0 {
			fields = map[string][]string{"user": {ae.Detail}}
		}
		return store.User{}, &InvalidUserError{Fields: fields}
	}
	return u, err
}

// Bootstrap creates the first superuser on an empty database, so a fresh `serve` is usable at
// once, and records it in the audit log as made by the serve command. With an empty password
// it generates one and returns it to be shown once.
func Bootstrap(ctx context.Context, st *store.Store, hasher *password.Hasher, username, plain string) (created bool, generated string, err error) {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, "", err
	}
	if username == "" {
		username = "admin"
	}
	if plain == "" {
		plain = rand.Text()
		generated = plain
	}
	_, err = createSuperuser(ctx, st, hasher, NewUser{
		Username: username, FirstName: "Admin", LastName: "User", Email: "admin@localhost", Password: plain,
	}, audit.CLI("serve"))
	if err != nil {
		return false, "", fmt.Errorf("bootstrap superuser %q: %w", username, err)
	}
	return true, generated, nil
}
