package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
)

// ListSessions returns the caller's live sessions, newest first.
func (h handlers) ListSessions(ctx context.Context, _ gen.ListSessionsRequestObject) (gen.ListSessionsResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	sessions, err := h.store.LiveSessions(ctx, caller.user.ID, h.now())
	if err != nil {
		return nil, err
	}
	return gen.ListSessions200JSONResponse(toAPISessions(sessions, caller.session.ID)), nil
}

// RevokeSession logs out one of the caller's sessions.
func (h handlers) RevokeSession(ctx context.Context, req gen.RevokeSessionRequestObject) (gen.RevokeSessionResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	err := h.store.RevokeUserSession(ctx, caller.user.ID, req.Id, h.now(), h.auditSource(ctx).Event(audit.SessionRevoked))
	if errors.Is(err, store.ErrNotFound) {
		return gen.RevokeSession404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	h.metrics.Revoked(metrics.RevokeSession)
	return gen.RevokeSession204Response{}, nil
}

// ListUserSessions returns a user's live sessions, newest first, for staff.
func (h handlers) ListUserSessions(ctx context.Context, req gen.ListUserSessionsRequestObject) (gen.ListUserSessionsResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	if _, err := h.store.UserByID(ctx, req.Id); errors.Is(err, store.ErrNotFound) {
		return gen.ListUserSessions404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	} else if err != nil {
		return nil, fmt.Errorf("get user %d: %w", req.Id, err)
	}
	sessions, err := h.store.LiveSessions(ctx, req.Id, h.now())
	if err != nil {
		return nil, err
	}
	return gen.ListUserSessions200JSONResponse(toAPISessions(sessions, caller.session.ID)), nil
}

// RevokeUserSession revokes one live session of a user, for superusers, and records the
// superuser as the actor. An unknown user and another user's session are not found alike.
func (h handlers) RevokeUserSession(ctx context.Context, req gen.RevokeUserSessionRequestObject) (gen.RevokeUserSessionResponseObject, error) {
	err := h.store.RevokeUserSession(ctx, req.Id, req.Sid, h.now(), h.auditSource(ctx).Event(audit.SessionRevoked))
	if errors.Is(err, store.ErrNotFound) {
		return gen.RevokeUserSession404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session of user %d: %w", req.Id, err)
	}
	h.metrics.Revoked(metrics.RevokeUserSession)
	return gen.RevokeUserSession204Response{}, nil
}

// LogoutUserEverywhere revokes every live session of a user, for superusers, and records the
// superuser as the actor (no event when the user had no live session).
func (h handlers) LogoutUserEverywhere(ctx context.Context, req gen.LogoutUserEverywhereRequestObject) (gen.LogoutUserEverywhereResponseObject, error) {
	// A user deleted between the two calls has no sessions left: the revocation finds none.
	if _, err := h.store.UserByID(ctx, req.Id); errors.Is(err, store.ErrNotFound) {
		return gen.LogoutUserEverywhere404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	} else if err != nil {
		return nil, fmt.Errorf("get user %d: %w", req.Id, err)
	}
	if _, err := h.store.RevokeUserSessions(ctx, req.Id, h.now(), h.auditSource(ctx).Event(audit.LogoutAll)); err != nil {
		return nil, err
	}
	h.metrics.Revoked(metrics.RevokeUserEverywhere)
	return gen.LogoutUserEverywhere204Response{}, nil
}

// toAPISessions converts sessions for the wire; current names the caller's own session.
func toAPISessions(sessions []store.Session, current string) []client.Session {
	out := make([]client.Session, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, client.Session{
			Id: s.ID, Created: s.CreatedAt, LastUsed: s.LastUsedAt, Expires: s.ExpiresAt,
			UserAgent: s.UserAgent, Ip: s.IP, Current: s.ID == current,
		})
	}
	return out
}
