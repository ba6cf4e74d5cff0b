package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
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
	if fields := requireFields(map[string]string{"username": in.Username, "password": in.Password}); fields != nil {
		return gen.ObtainToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	// The attempt is recorded as a failure before the password is hashed, so that however
	// many arrive at once, no more are checked than the limits allow.
	attempt, wait, err := h.logins.Begin(ctx, in.Username, h.auditSource(ctx))
	if err != nil {
		return nil, fmt.Errorf("login throttle: %w", err)
	}
	if wait > 0 {
		h.metrics.Login(metrics.LoginThrottled)
		return gen.ObtainToken429JSONResponse{ThrottledJSONResponse: throttled("Too many failed login attempts.", wait)}, nil
	}
	user, ok, err := h.checkCredentials(ctx, in.Username, in.Password)
	if err != nil {
		// The password was not checked (the hasher was busy, or a failure): the attempt is no
		// failure.
		if err := attempt.Abandon(ctx); err != nil {
			h.log.WarnContext(ctx, "withdraw login attempt", "err", err)
		}
		if errors.Is(err, password.ErrBusy) {
			h.metrics.Login(metrics.LoginBusy)
			return gen.ObtainToken503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
		}
		return nil, err
	}
	if !ok { // the reservation stays, as the failure
		if err := attempt.Failed(ctx, user.ID); err != nil {
			return nil, fmt.Errorf("record failed login: %w", err)
		}
		h.metrics.Login(metrics.LoginFailed)
		return gen.ObtainToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("authentication_failed", msgBadCredentials)}, nil
	}
	if err := attempt.Succeeded(ctx, user.ID, user.PasswordHash); err != nil {
		return nil, fmt.Errorf("record successful login: %w", err)
	}
	hash := h.upgradeHash(ctx, user, in.Password)
	pair, err := h.startSession(ctx, user, hash)
	if errors.Is(err, store.ErrPasswordChanged) {
		// The password was changed after it was checked: it may no longer be the password.
		// The attempt was withdrawn as a success, so the refusal is recorded here.
		failed := h.auditSource(ctx).Event(audit.LoginFailed)
		failed.TargetID = user.ID
		if err := h.store.RecordAuditEvents(ctx, failed); err != nil {
			return nil, fmt.Errorf("record failed login: %w", err)
		}
		return gen.ObtainToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("authentication_failed", msgBadCredentials)}, nil
	}
	if err != nil {
		return nil, err
	}
	h.metrics.Login(metrics.LoginOK)
	return gen.ObtainToken200JSONResponse(pair), nil
}

// checkCredentials reports whether username and password name an active user. Unknown users,
// wrong passwords and inactive users take the same path and about the same time, and are
// refused alike with password.ErrBusy when no hashing slot comes free in time.
func (h handlers) checkCredentials(ctx context.Context, username, plain string) (store.User, bool, error) {
	user, err := store.User{}, store.ErrNotFound
	if storable(username) { // no stored username is otherwise; the database may refuse the query
		user, err = h.store.UserByUsername(ctx, username)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, h.hasher.VerifyDummy(ctx, plain)
	}
	if err != nil {
		return store.User{}, false, fmt.Errorf("find user: %w", err)
	}
	match, err := h.checkPassword(ctx, user, plain)
	if err != nil {
		return store.User{}, false, err
	}
	return user, match && user.IsActive, nil
}

// upgradeHash rehashes a just-verified password whose hash uses another algorithm (users
// imported from Django) or older costs, and returns the user's hash as it now stands (the new
// one if it replaced it). Failing to upgrade does not fail the login, and a busy hasher skips
// it: the next login upgrades.
func (h handlers) upgradeHash(ctx context.Context, user store.User, plain string) string {
	if !h.hasher.NeedsRehash(user.PasswordHash) {
		return user.PasswordHash
	}
	hash, err := h.hasher.Hash(ctx, plain)
	if errors.Is(err, password.ErrBusy) {
		h.log.InfoContext(ctx, "password hash upgrade skipped: hasher busy", "user_id", user.ID)
		return user.PasswordHash
	}
	replaced := false
	if err == nil {
		replaced, err = h.store.UpgradePasswordHash(ctx, user.ID, user.PasswordHash, hash)
	}
	if err != nil {
		h.log.WarnContext(ctx, "upgrade password hash", "user_id", user.ID, "err", err)
	}
	if replaced {
		return hash
	}
	return user.PasswordHash
}

// startSession records a new session for user, whose password was checked against
// passwordHash, and issues its first token pair. It fails with store.ErrPasswordChanged when
// the user's hash has changed since.
func (h handlers) startSession(ctx context.Context, user store.User, passwordHash string) (client.TokenPair, error) {
	sess, refresh := h.newSession(ctx, user.ID)
	event := h.auditSource(ctx).Event(audit.LoginSucceeded)
	event.ActorID = user.ID
	if err := h.store.StartSession(ctx, &sess, refresh, passwordHash, event); err != nil {
		return client.TokenPair{}, fmt.Errorf("start session: %w", err)
	}
	refresh.SessionID = sess.ID
	return h.signPair(user.ID, refresh)
}

// newSession is a session of user userID starting now, from the request's client, and its
// first refresh token, to record.
func (h handlers) newSession(ctx context.Context, userID int64) (store.Session, store.RefreshToken) {
	now := h.now()
	client := clientFromContext(ctx)
	sess := store.Session{
		ID:         newSessionID(),
		UserID:     userID,
		CreatedAt:  now,
		LastUsedAt: now,
		UserAgent:  client.userAgent,
		IP:         client.ip,
	}
	refresh := store.RefreshToken{ID: newTokenID(), AccessID: newTokenID(), IssuedAt: now, ExpiresAt: h.refreshExpiry(sess.CreatedAt, now)}
	sess.ExpiresAt = refresh.ExpiresAt
	return sess, refresh
}

// refreshExpiry is when a refresh token issued at now for a session created at created
// expires: its lifetime later, but never past the session's absolute lifetime.
func (h handlers) refreshExpiry(created, now time.Time) time.Time {
	return minTime(now.Add(h.cfg.RefreshTokenLifetime), created.Add(h.cfg.SessionMaxLifetime))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// signPair signs the refresh token rt and the access token issued with it. Everything comes
// from rt, so the same pair can be signed again for a client within the reuse grace window.
func (h handlers) signPair(userID int64, rt store.RefreshToken) (client.TokenPair, error) {
	access, err := h.sign(token.Claims{Type: token.Access, UserID: userID, SessionID: rt.SessionID, ID: rt.AccessID,
		IssuedAt: rt.IssuedAt, ExpiresAt: rt.IssuedAt.Add(h.cfg.AccessTokenLifetime)})
	if err != nil {
		return client.TokenPair{}, err
	}
	refresh, err := h.sign(token.Claims{Type: token.Refresh, UserID: userID, SessionID: rt.SessionID, ID: rt.ID,
		IssuedAt: rt.IssuedAt, ExpiresAt: rt.ExpiresAt})
	if err != nil {
		return client.TokenPair{}, err
	}
	return client.TokenPair{Access: access, Refresh: refresh}, nil
}

func (h handlers) sign(c token.Claims) (string, error) {
	raw, err := h.tokens.Sign(c)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", c.Type, err)
	}
	return raw, nil
}

// RefreshToken issues a new access token for a live session and, with rotation on, a new
// refresh token in place of the one presented.
func (h handlers) RefreshToken(ctx context.Context, req gen.RefreshTokenRequestObject) (gen.RefreshTokenResponseObject, error) {
	var in client.TokenRefreshRequest
	if req.Body != nil {
		in = *req.Body
	}
	if fields := requireFields(map[string]string{"refresh": in.Refresh}); fields != nil {
		return gen.RefreshToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	refused := func(code client.ErrorCode, detail string) (gen.RefreshTokenResponseObject, error) {
		h.metrics.Refresh(metrics.RefreshInvalid)
		return gen.RefreshToken401JSONResponse{UnauthorizedJSONResponse: unauthorized(code, detail)}, nil
	}
	claims, err := h.tokens.Parse(in.Refresh, token.Refresh)
	if err != nil {
		return refused("token_not_valid", tokenErrorDetail(err))
	}
	now := h.now()
	var next store.RefreshToken // the replacement, when rotating
	if h.cfg.RotateRefreshTokens {
		// The common case in one statement where the store can (PostgreSQL); anything it
		// does not rotate takes the path below, which tells why.
		next = store.RefreshToken{ID: newTokenID(), AccessID: newTokenID(), IssuedAt: now}
		rot, ok, err := h.store.RotateLiveRefreshToken(ctx, claims.ID, next, now, store.LiveSession{
			UserID: claims.UserID, SessionID: claims.SessionID,
			RefreshLifetime: h.cfg.RefreshTokenLifetime, MaxLifetime: h.cfg.SessionMaxLifetime,
		})
		if err != nil {
			return nil, err
		}
		if ok {
			return h.rotated(claims.UserID, rot.Replacement, metrics.RefreshRotated)
		}
	}
	p, err := h.loadSession(ctx, claims)
	if rejected, ok := asUnauthorized(err); ok {
		h.metrics.Refresh(metrics.RefreshInvalid)
		return gen.RefreshToken401JSONResponse{UnauthorizedJSONResponse: rejected}, nil
	} else if err != nil {
		return nil, err
	}
	if !h.cfg.RotateRefreshTokens {
		if err := h.store.TouchSession(ctx, p.session.ID, now); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
		access, err := h.sign(token.Claims{Type: token.Access, UserID: p.user.ID, SessionID: p.session.ID,
			ID: newTokenID(), IssuedAt: now, ExpiresAt: now.Add(h.cfg.AccessTokenLifetime)})
		if err != nil {
			return nil, err
		}
		h.metrics.Refresh(metrics.RefreshAccessOnly)
		return gen.RefreshToken200JSONResponse{Access: access}, nil
	}

	expires := h.refreshExpiry(p.session.CreatedAt, now)
	if !expires.After(now) { // a session from before SessionMaxLifetime was lowered
		return refused("token_not_valid", "Session has reached its maximum lifetime")
	}
	next.ExpiresAt = expires
	rot, err := h.store.RotateRefreshToken(ctx, claims.ID, next, now)
	if errors.Is(err, store.ErrNotFound) {
		return refused("token_not_valid", token.ErrInvalid.Error())
	}
	if err != nil {
		return nil, err
	}
	inGrace := h.cfg.RefreshReuseGrace > 0 && rot.Old.UsedAt != nil && now.Sub(*rot.Old.UsedAt) <= h.cfg.RefreshReuseGrace
	if !rot.Rotated && !(inGrace && rot.Replacement.ID != "") {
		// A retired token came back: it was copied. Kill the whole session, thief and owner alike.
		if _, err := h.store.RevokeSession(ctx, p.session.ID, now, h.auditSource(ctx).Event(audit.RefreshReuseDetected)); err != nil {
			return nil, fmt.Errorf("revoke session after refresh token reuse: %w", err)
		}
		h.log.WarnContext(ctx, "refresh token reuse: session revoked", "user_id", p.user.ID, "session_id", p.session.ID)
		h.metrics.Revoked(metrics.RevokeReuse)
		h.metrics.Refresh(metrics.RefreshReuseDetected)
		return gen.RefreshToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid",
			"Token has already been used; the session is revoked")}, nil
	}
	outcome := metrics.RefreshRotated
	if !rot.Rotated {
		outcome = metrics.RefreshGrace
	}
	return h.rotated(p.user.ID, rot.Replacement, outcome)
}

// rotated answers a refresh with the pair of the refresh token rt.
func (h handlers) rotated(userID int64, rt store.RefreshToken, outcome metrics.RefreshOutcome) (gen.RefreshTokenResponseObject, error) {
	pair, err := h.signPair(userID, rt)
	if err != nil {
		return nil, err
	}
	h.metrics.Refresh(outcome)
	return gen.RefreshToken200JSONResponse{Access: pair.Access, Refresh: &pair.Refresh}, nil
}

// VerifyToken answers whether a token (access or refresh) is valid and its session live.
func (h handlers) VerifyToken(ctx context.Context, req gen.VerifyTokenRequestObject) (gen.VerifyTokenResponseObject, error) {
	var in client.TokenVerifyRequest
	if req.Body != nil {
		in = *req.Body
	}
	if fields := requireFields(map[string]string{"token": in.Token}); fields != nil {
		return gen.VerifyToken400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	claims, err := h.tokens.Parse(in.Token, token.Access)
	if errors.Is(err, token.ErrWrongType) {
		claims, err = h.tokens.Parse(in.Token, token.Refresh)
	}
	if err != nil {
		return gen.VerifyToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", tokenErrorDetail(err))}, nil
	}
	_, err = h.loadSession(ctx, claims)
	if rejected, ok := asUnauthorized(err); ok {
		return gen.VerifyToken401JSONResponse{UnauthorizedJSONResponse: rejected}, nil
	} else if err != nil {
		return nil, err
	}
	if claims.Type == token.Refresh {
		// A refresh token is valid while it can still be exchanged: recorded and not retired.
		rt, err := h.store.RefreshTokenByID(ctx, claims.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rt.UsedAt != nil) {
			return gen.VerifyToken401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", token.ErrInvalid.Error())}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return gen.VerifyToken200JSONResponse{}, nil
}

// Logout revokes the session of the caller's own refresh token.
func (h handlers) Logout(ctx context.Context, req gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	var in client.LogoutRequest
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
	revoked, err := h.store.RevokeSession(ctx, claims.SessionID, h.now(), h.auditSource(ctx).Event(audit.Logout))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !revoked) {
		return gen.Logout401JSONResponse{UnauthorizedJSONResponse: unauthorized("token_not_valid", msgSessionRevoked)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	h.metrics.Revoked(metrics.RevokeLogout)
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
	if _, err := h.store.RevokeUserSessions(ctx, caller.user.ID, h.now(), h.auditSource(ctx).Event(audit.LogoutAll)); err != nil {
		return fmt.Errorf("revoke sessions of user %d: %w", caller.user.ID, err)
	}
	h.metrics.Revoked(metrics.RevokeLogoutAll)
	return nil
}

// asUnauthorized turns a refusal from loadSession into the typed 401 body.
func asUnauthorized(err error) (gen.UnauthorizedJSONResponse, bool) {
	var e *apiError
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		return unauthorized(e.Code, e.Detail), true
	}
	return gen.UnauthorizedJSONResponse{}, false
}
