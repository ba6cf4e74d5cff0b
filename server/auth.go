package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"authapi/gen"
	"authapi/store"
	"authapi/token"
)

// ObtainToken logs a user in: it checks the password, starts a session and returns its tokens.
func (h handlers) ObtainToken(ctx context.Context, req gen.ObtainTokenRequestObject) (gen.ObtainTokenResponseObject, error) {
	var in gen.TokenObtainRequest
	switch {
	case req.JSONBody != nil:
		in = *req.JSONBody
	case req.FormdataBody != nil:
		in = *req.FormdataBody
	}
	if fields := requireFields(map[string]string{"username": in.Username, "password": in.Password}); fields != nil {
		return gen.ObtainToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	user, ok, err := h.checkCredentials(ctx, in.Username, in.Password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return gen.ObtainToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("authentication_failed", msgBadCredentials)}, nil
	}
	pair, err := h.startSession(ctx, user)
	if err != nil {
		return nil, err
	}
	return gen.ObtainToken200JSONResponse(pair), nil
}

// checkCredentials reports whether username and password name an active user. Unknown users,
// wrong passwords and inactive users take the same path and about the same time.
func (h handlers) checkCredentials(ctx context.Context, username, plain string) (store.User, bool, error) {
	user, err := h.store.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		h.hasher.VerifyDummy(plain)
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, fmt.Errorf("find user: %w", err)
	}
	match, err := h.hasher.Verify(plain, user.PasswordHash)
	if err != nil {
		h.log.Warn("unreadable password hash", "user_id", user.ID, "err", err)
	}
	return user, match && user.IsActive, nil
}

// startSession records a new session for user and issues its first token pair.
func (h handlers) startSession(ctx context.Context, user store.User) (gen.TokenPair, error) {
	now := h.now()
	client := clientFromContext(ctx)
	sess := store.Session{
		ID:         newSessionID(),
		UserID:     user.ID,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(h.cfg.RefreshTokenLifetime),
		UserAgent:  client.userAgent,
		IP:         client.ip,
	}
	if err := h.store.CreateSession(ctx, &sess); err != nil {
		return gen.TokenPair{}, fmt.Errorf("create session: %w", err)
	}
	if err := h.store.SetLastLogin(ctx, user.ID, now); err != nil {
		return gen.TokenPair{}, fmt.Errorf("set last login: %w", err)
	}
	access, err := h.sign(token.Access, user.ID, sess.ID, now, h.cfg.AccessTokenLifetime)
	if err != nil {
		return gen.TokenPair{}, err
	}
	refresh, err := h.sign(token.Refresh, user.ID, sess.ID, now, h.cfg.RefreshTokenLifetime)
	if err != nil {
		return gen.TokenPair{}, err
	}
	return gen.TokenPair{Access: access, Refresh: refresh}, nil
}

func (h handlers) sign(typ token.Type, userID int64, sessionID string, now time.Time, lifetime time.Duration) (string, error) {
	raw, err := h.tokens.Sign(token.Claims{Type: typ, UserID: userID, SessionID: sessionID, IssuedAt: now, ExpiresAt: now.Add(lifetime)})
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", typ, err)
	}
	return raw, nil
}

// RefreshToken issues a new access token for a live session.
func (h handlers) RefreshToken(ctx context.Context, req gen.RefreshTokenRequestObject) (gen.RefreshTokenResponseObject, error) {
	var in gen.TokenRefreshRequest
	if req.Body != nil {
		in = *req.Body
	}
	if fields := requireFields(map[string]string{"refresh": in.Refresh}); fields != nil {
		return gen.RefreshToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	p, err := h.checkToken(ctx, in.Refresh, token.Refresh)
	if rejected, ok := asUnauthorized(err); ok {
		return gen.RefreshToken401JSONResponse{UnauthorizedJSONResponse: rejected}, nil
	} else if err != nil {
		return nil, err
	}
	if err := h.store.TouchSession(ctx, p.session.ID, h.now()); err != nil {
		return nil, fmt.Errorf("touch session: %w", err)
	}
	access, err := h.sign(token.Access, p.user.ID, p.session.ID, h.now(), h.cfg.AccessTokenLifetime)
	if err != nil {
		return nil, err
	}
	return gen.RefreshToken200JSONResponse{Access: access}, nil
}

// VerifyToken answers whether a token (access or refresh) is valid and its session live.
func (h handlers) VerifyToken(ctx context.Context, req gen.VerifyTokenRequestObject) (gen.VerifyTokenResponseObject, error) {
	var in gen.TokenVerifyRequest
	if req.Body != nil {
		in = *req.Body
	}
	if fields := requireFields(map[string]string{"token": in.Token}); fields != nil {
		return gen.VerifyToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	typ := token.Access
	if _, err := h.tokens.Parse(in.Token, token.Access); errors.Is(err, token.ErrWrongType) {
		typ = token.Refresh
	}
	_, err := h.checkToken(ctx, in.Token, typ)
	if rejected, ok := asUnauthorized(err); ok {
		return gen.VerifyToken401JSONResponse{UnauthorizedJSONResponse: rejected}, nil
	} else if err != nil {
		return nil, err
	}
	return gen.VerifyToken200JSONResponse{}, nil
}

// Logout revokes the session of the caller's own refresh token.
func (h handlers) Logout(ctx context.Context, req gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	var in gen.LogoutRequest
	if req.Body != nil {
		in = *req.Body
	}
	if fields := requireFields(map[string]string{"refresh": in.Refresh}); fields != nil {
		return gen.Logout400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	claims, err := h.tokens.Parse(in.Refresh, token.Refresh)
	if err != nil {
		return gen.Logout401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", tokenErrorDetail(err))}, nil
	}
	if claims.UserID != caller.user.ID {
		return gen.Logout403JSONResponse{ForbiddenJSONResponse: forbidden()}, nil
	}
	revoked, err := h.store.RevokeSession(ctx, claims.SessionID, h.now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !revoked) {
		return gen.Logout401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", msgSessionRevoked)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	return gen.Logout200JSONResponse{}, nil
}

// LogoutAll revokes every session of the caller.
func (h handlers) LogoutAll(ctx context.Context, _ gen.LogoutAllRequestObject) (gen.LogoutAllResponseObject, error) {
	if err := h.logoutAll(ctx); err != nil {
		return nil, err
	}
	return gen.LogoutAll205Response{}, nil
}

// LogoutAllPost is LogoutAll for clients that will not change state with GET.
func (h handlers) LogoutAllPost(ctx context.Context, _ gen.LogoutAllPostRequestObject) (gen.LogoutAllPostResponseObject, error) {
	if err := h.logoutAll(ctx); err != nil {
		return nil, err
	}
	return gen.LogoutAllPost205Response{}, nil
}

func (h handlers) logoutAll(ctx context.Context) error {
	caller, _ := principalFromContext(ctx)
	if _, err := h.store.RevokeUserSessions(ctx, caller.user.ID, h.now()); err != nil {
		return fmt.Errorf("revoke sessions of user %d: %w", caller.user.ID, err)
	}
	return nil
}

// checkToken verifies raw as a token of type typ and loads its user and live session.
// The error is an *apiError when the token is refused, anything else when the check failed.
func (h handlers) checkToken(ctx context.Context, raw string, typ token.Type) (principal, error) {
	claims, err := h.tokens.Parse(raw, typ)
	if err != nil {
		return principal{}, errUnauthorized("token_not_valid", tokenErrorDetail(err))
	}
	return h.loadSession(ctx, claims)
}

// asUnauthorized turns a refusal from checkToken into the typed 401 body.
func asUnauthorized(err error) (gen.UnauthorizedJSONResponse, bool) {
	var e *apiError
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		return unauthorized(e.Code, e.Detail), true
	}
	return gen.UnauthorizedJSONResponse{}, false
}
