package server

import (
	"context"
	"errors"

	"github.com/authapi/authapi/gen"
)

// errNoRecovery fails the password reset operations of a server built without them.
var errNoRecovery = errors.New("server: no password reset (Config.Recovery)")

// msgResetAccepted is the one answer to every accepted reset request.
const msgResetAccepted = "If this account exists and has an email address, a link to reset its password is on its way."

// RequestPasswordReset accepts a password reset request: the same answer whether or not the
// account exists (see recovery.Service.Request).
func (h handlers) RequestPasswordReset(ctx context.Context, req gen.RequestPasswordResetRequestObject) (gen.RequestPasswordResetResponseObject, error) {
	if h.cfg.Recovery == nil {
		return nil, errNoRecovery
	}
	var login *string
	if req.Body != nil {
		login = &req.Body.Login
	}
	if err := h.cfg.Recovery.Request(ctx, login, clientFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.RequestPasswordReset202JSONResponse{Detail: msgResetAccepted}, nil
}

// ConfirmPasswordReset sets a new password with a reset link's token.
func (h handlers) ConfirmPasswordReset(ctx context.Context, req gen.ConfirmPasswordResetRequestObject) (gen.ConfirmPasswordResetResponseObject, error) {
	if h.cfg.Recovery == nil {
		return nil, errNoRecovery
	}
	var tok, pw *string
	if req.Body != nil {
		tok, pw = &req.Body.Token, &req.Body.Password
	}
	if err := h.cfg.Recovery.Confirm(ctx, tok, pw, clientFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.ConfirmPasswordReset204Response{}, nil
}
