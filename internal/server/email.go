package server

import (
	"context"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/verification"
)

// Messages of the address flows' answers.
const (
	msgCheckMailbox = "Check your mailbox for a link."
	msgChangeSent   = "A link is on its way to the new address: the change takes effect when it is followed."
)

// SignUp creates an account of its own for whoever asks, when sign-up is on.
func (h handlers) SignUp(ctx context.Context, req gen.SignUpRequestObject) (gen.SignUpResponseObject, error) {
	var in verification.SignUp
	if req.Body != nil {
		b := req.Body
		in = verification.SignUp{Username: orNil(b.Username), Email: orNil(b.Email), Password: orNil(b.Password),
			FirstName: b.FirstName, LastName: b.LastName}
	}
	in.Invalid = specFieldErrors(ctx)
	if err := h.verify.SignUp(ctx, in, clientFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.SignUp202JSONResponse{Detail: msgCheckMailbox}, nil
}

// ConfirmEmail confirms an address with the token of a link.
func (h handlers) ConfirmEmail(ctx context.Context, req gen.ConfirmEmailRequestObject) (gen.ConfirmEmailResponseObject, error) {
	var token string
	if req.Body != nil {
		token = req.Body.Token
	}
	c, err := h.verify.Confirm(ctx, token, clientFromContext(ctx))
	if err != nil {
		return nil, err
	}
	return gen.ConfirmEmail200JSONResponse{Email: c.Email, Changed: c.Changed}, nil
}

// ChangeEmail asks to change the caller's address; it changes when the new one confirms.
func (h handlers) ChangeEmail(ctx context.Context, req gen.ChangeEmailRequestObject) (gen.ChangeEmailResponseObject, error) {
	var in client.EmailChange
	if req.Body != nil {
		in = *req.Body
	}
	caller := callerFromContext(ctx)
	u, err := h.auth.CheckOwnPassword(ctx, caller, in.Password)
	if err != nil {
		return nil, err
	}
	u, err = h.verify.RequestChange(ctx, u, in.Email, caller.Client, caller.SessionID)
	if err != nil {
		return nil, err
	}
	return gen.ChangeEmail202JSONResponse(toAPIAccount(u)), nil
}

// ResendEmailVerification mails a new verification link to the caller's address.
func (h handlers) ResendEmailVerification(ctx context.Context, _ gen.ResendEmailVerificationRequestObject) (gen.ResendEmailVerificationResponseObject, error) {
	p, _ := principalFromContext(ctx)
	if err := h.verify.Resend(ctx, p.User, clientFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.ResendEmailVerification202JSONResponse{Detail: msgCheckMailbox}, nil
}

// toAPIAccount is the caller's own account on the wire.
func toAPIAccount(u store.User) client.Account {
	a := client.Account{Id: u.ID, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName,
		Email: u.Email, LastLogin: u.LastLogin, EmailVerified: u.EmailVerified, EmailVerifiedAt: u.EmailVerifiedAt}
	if u.PendingEmail != "" {
		a.PendingEmail = &u.PendingEmail
	}
	return a
}

// GetSignUpSettings tells whether sign-up is on.
func (h handlers) GetSignUpSettings(ctx context.Context, _ gen.GetSignUpSettingsRequestObject) (gen.GetSignUpSettingsResponseObject, error) {
	return gen.GetSignUpSettings200JSONResponse{Enabled: h.verify.SignUpEnabled(), RequireVerifiedEmail: h.cfg.RequireVerifiedEmail}, nil
}
