package users

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
)

// NewUser is what CreateSuperuser needs.
type NewUser struct{ Username, FirstName, LastName, Email, Password string }

// CreateSuperuser creates an active staff superuser with the same rules the API applies
// (username, email, password policy), and records it in the audit log as made by the
// createsuperuser command. Refused input is a *userfields.Errors.
func (s *Service) CreateSuperuser(ctx context.Context, in NewUser) (store.User, error) {
	return s.createSuperuser(ctx, in, audit.CLI("createsuperuser"))
}

// createSuperuser reports a taken username only once the other fields pass, unlike Create:
// the command asks again for each refused field, one refusal at a time.
func (s *Service) createSuperuser(ctx context.Context, in NewUser, by audit.Source) (store.User, error) {
	u := store.User{IsActive: true, IsStaff: true, IsSuperuser: true}
	ch := Changes{Username: &in.Username, FirstName: &in.FirstName, LastName: &in.LastName, Email: &in.Email, Password: &in.Password}
	if err := checkChanges(u, ch, required{profile: true, password: true}); err != nil {
		return store.User{}, err
	}
	return s.insert(ctx, u, ch, by)
}

// Bootstrap creates the first superuser on an empty database, so a fresh `serve` is usable at
// once, and records it in the audit log as made by the serve command. An empty username is
// "admin"; with an empty password it generates one and returns it to be shown once. On a
// database that has users it does nothing and reports created false.
func (s *Service) Bootstrap(ctx context.Context, username, plain string) (created bool, generated string, err error) {
	n, err := s.store.CountUsers(ctx)
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
	_, err = s.createSuperuser(ctx, NewUser{
		Username: username, FirstName: "Admin", LastName: "User", Email: "admin@localhost", Password: plain,
	}, audit.CLI("serve"))
	if err != nil {
		return false, "", fmt.Errorf("bootstrap superuser %q: %w", username, err)
	}
	return true, generated, nil
}
