package server

import (
	"context"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
)

// ObtainToken logs a user in: it checks the password, starts a session and returns its tokens.
func (h handlers) ObtainToken(ctx context.Context, req gen.ObtainTokenRequestObject) (gen.ObtainTokenResponseObject, error) {
	var in client.TokenObtainRequest
	switch {
	case req.JSONBody != nil:
		in = *req.JSONBody
	case req.FormdataBody != nil:
		in = *req.FormdataBody
	}
	pair, err := h.auth.Login(ctx, auth.Login{Username: in.Username, Password: in.Password, Client: clientFromContext(ctx)})
	if err != nil {
		return nil, err
	}
	return gen.ObtainToken200JSONResponse(toAPIPair(pair)), nil
}

// RefreshToken issues a new access token for a live session and, with rotation on, a new
// refresh token in place of the one presented.
func (h handlers) RefreshToken(ctx context.Context, req gen.RefreshTokenRequestObject) (gen.RefreshTokenResponseObject, error) {
	var in client.TokenRefreshRequest
	if req.Body != nil {
		in = *req.Body
	}
	pair, err := h.auth.Refresh(ctx, in.Refresh, clientFromContext(ctx))
	if err != nil {
		return nil, err
	}
	out := gen.RefreshToken200JSONResponse{Access: pair.Access}
	if pair.Refresh != "" {
		out.Refresh = &pair.Refresh
	}
	return out, nil
}

// VerifyToken answers whether a token (access or refresh) is valid and its session live.
func (h handlers) VerifyToken(ctx context.Context, req gen.VerifyTokenRequestObject) (gen.VerifyTokenResponseObject, error) {
	var in client.TokenVerifyRequest
	if req.Body != nil {
		in = *req.Body
	}
	if err := h.auth.Verify(ctx, in.Token); err != nil {
		return nil, err
	}
	return gen.VerifyToken200JSONResponse{}, nil
}

// Logout revokes the session of the caller's own refresh token.
func (h handlers) Logout(ctx context.Context, req gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	var in client.LogoutRequest
	if req.Body != nil {
		in = *req.Body
	}
	if err := h.auth.Logout(ctx, callerFromContext(ctx), in.Refresh); err != nil {
		return nil, err
	}
	return gen.Logout200JSONResponse{}, nil
}

// LogoutAll revokes every session of the caller.
func (h handlers) LogoutAll(ctx context.Context, _ gen.LogoutAllRequestObject) (gen.LogoutAllResponseObject, error) {
	if err := h.auth.LogoutAll(ctx, callerFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.LogoutAll205Response{}, nil
}

// LogoutAllPost is LogoutAll for clients that will not change state with GET.
func (h handlers) LogoutAllPost(ctx context.Context, _ gen.LogoutAllPostRequestObject) (gen.LogoutAllPostResponseObject, error) {
	if err := h.auth.LogoutAll(ctx, callerFromContext(ctx)); err != nil {
		return nil, err
	}
	return gen.LogoutAllPost205Response{}, nil
}

// ChangePassword changes the caller's password and answers with the token pair of the new
// session the caller continues with (every other one ends: see auth.Service.ChangePassword).
func (h handlers) ChangePassword(ctx context.Context, req gen.ChangePasswordRequestObject) (gen.ChangePasswordResponseObject, error) {
	var in auth.PasswordChange
	if req.Body != nil {
		in.Old, in.New = &req.Body.OldPassword, &req.Body.NewPassword
	}
	pair, err := h.auth.ChangePassword(ctx, callerFromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	return gen.ChangePassword200JSONResponse(toAPIPair(pair)), nil
}

func toAPIPair(p auth.TokenPair) client.TokenPair {
	return client.TokenPair{Access: p.Access, Refresh: p.Refresh}
}
