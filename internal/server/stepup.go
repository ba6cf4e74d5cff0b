package server

import (
	"context"
	"errors"

	"github.com/authapi/authapi/gen"
)

// errNotYet answers the operations of step-up whose implementation is under way (500).
var errNotYet = errors.New("not implemented yet")

// Reauthenticate raises the caller's current session.
func (h handlers) Reauthenticate(ctx context.Context, req gen.ReauthenticateRequestObject) (gen.ReauthenticateResponseObject, error) {
	return nil, errNotYet
}

// GetUserMfa lists a user's second factors.
func (h handlers) GetUserMfa(ctx context.Context, req gen.GetUserMfaRequestObject) (gen.GetUserMfaResponseObject, error) {
	return nil, errNotYet
}

// ResetUserMfa removes a user's second factors and ends their sessions.
func (h handlers) ResetUserMfa(ctx context.Context, req gen.ResetUserMfaRequestObject) (gen.ResetUserMfaResponseObject, error) {
	return nil, errNotYet
}
