package server

import (
	"context"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/users"
)

// The wire's user bodies as the users use-case's changes; Invalid carries the members the
// spec validation refused (see handlerMergesFields), reported with the use-case's findings.

func createChanges(ctx context.Context, in client.UserCreate) users.Changes {
	return users.Changes{
		Username: orNil(in.Username), FirstName: orNil(in.FirstName), LastName: orNil(in.LastName),
		Email: orNil(in.Email), Password: orNil(in.Password), IsActive: in.IsActive, IsStaff: in.IsStaff,
		Invalid: specFieldErrors(ctx),
	}
}

func updateChanges(ctx context.Context, in client.UserUpdate) users.Changes {
	return users.Changes{
		Username: orNil(in.Username), FirstName: orNil(in.FirstName), LastName: orNil(in.LastName),
		Email: orNil(in.Email), Password: in.Password, IsActive: in.IsActive, IsStaff: in.IsStaff,
		Invalid: specFieldErrors(ctx),
	}
}

func patchChanges(ctx context.Context, in client.UserPatch) users.Changes {
	return users.Changes{
		Username: in.Username, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email,
		Password: in.Password, IsActive: in.IsActive, IsStaff: in.IsStaff, Invalid: specFieldErrors(ctx),
	}
}

// orNil treats an empty required field as missing: the generated types hold required fields
// by value, so a missing one and an empty one look alike.
func orNil(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func toAPIPreview(u store.User) client.UserPreview {
	return client.UserPreview{
		Id: u.ID, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName,
		Email: u.Email, IsActive: u.IsActive, IsStaff: u.IsStaff, IsSuperuser: u.IsSuperuser,
		LastLogin: u.LastLogin, DateJoined: u.DateJoined, EmailVerified: u.EmailVerified, EmailVerifiedAt: u.EmailVerifiedAt,
	}
}
