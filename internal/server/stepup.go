package server

import (
	"context"
	"fmt"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/internal/auth"
)

// Reauthenticate raises the caller's current session (step-up) and answers a new access
// token of it.
func (h handlers) Reauthenticate(ctx context.Context, req gen.ReauthenticateRequestObject) (gen.ReauthenticateResponseObject, error) {
	var in auth.Reauthentication
	if b := req.Body; b != nil {
		in.Method = string(b.Method)
		if b.Code != nil {
			in.Code = *b.Code
		}
		if b.Password != nil {
			in.Password = *b.Password
		}
		if b.Ceremony != nil {
			in.Ceremony = *b.Ceremony
		}
		if b.Credential != nil {
			var err error
			if in.Credential, err = credentialJSON(*b.Credential); err != nil {
				return nil, err
			}
		}
	}
	access, err := h.auth.Reauthenticate(ctx, callerFromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	return gen.Reauthenticate200JSONResponse{Access: access}, nil
}

// GetUserMfa lists a user's second factors.
func (h handlers) GetUserMfa(ctx context.Context, req gen.GetUserMfaRequestObject) (gen.GetUserMfaResponseObject, error) {
	f, err := h.auth.FactorsOf(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.GetUserMfa200JSONResponse(toAPIFactors(f)), nil
}

// ResetUserMfa removes a user's second factors and ends their sessions.
func (h handlers) ResetUserMfa(ctx context.Context, req gen.ResetUserMfaRequestObject) (gen.ResetUserMfaResponseObject, error) {
	if err := h.auth.ResetFactors(ctx, callerFromContext(ctx), req.Id); err != nil {
		return nil, err
	}
	return gen.ResetUserMfa204Response{}, nil
}

// stepUpChallenge is the WWW-Authenticate of a step-up refusal (RFC 9470 section 3): the
// level and the maximum age the operation needs.
func (s *Server) stepUpChallenge() string {
	return fmt.Sprintf(`Bearer realm="api", error="insufficient_user_authentication", error_description=%q, acr_values="aal2", max_age=%d`,
		msgStepUp, int64(s.auth.StepUpMaxAge().Seconds()))
}

const (
	msgStepUp         = "A recent sign-in with your second factor is required"
	msgEnrolmentFirst = "Set up a second factor first: your account needs one."
)
