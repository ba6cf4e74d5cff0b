package server

import (
	"context"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
)

// ListSessions returns the caller's live sessions, newest first.
func (h handlers) ListSessions(ctx context.Context, _ gen.ListSessionsRequestObject) (gen.ListSessionsResponseObject, error) {
	caller := callerFromContext(ctx)
	sessions, err := h.auth.Sessions(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	return gen.ListSessions200JSONResponse(toAPISessions(sessions, caller.SessionID)), nil
}

// RevokeSession logs out one of the caller's sessions.
func (h handlers) RevokeSession(ctx context.Context, req gen.RevokeSessionRequestObject) (gen.RevokeSessionResponseObject, error) {
	if err := h.auth.RevokeSession(ctx, callerFromContext(ctx), req.Id); err != nil {
		return nil, err
	}
	return gen.RevokeSession204Response{}, nil
}

// ListUserSessions returns a user's live sessions, newest first, for staff.
func (h handlers) ListUserSessions(ctx context.Context, req gen.ListUserSessionsRequestObject) (gen.ListUserSessionsResponseObject, error) {
	sessions, err := h.auth.UserSessions(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.ListUserSessions200JSONResponse(toAPISessions(sessions, callerFromContext(ctx).SessionID)), nil
}

// RevokeUserSession revokes one live session of a user, for superusers, and records the
// superuser as the actor.
func (h handlers) RevokeUserSession(ctx context.Context, req gen.RevokeUserSessionRequestObject) (gen.RevokeUserSessionResponseObject, error) {
	if err := h.auth.RevokeUserSession(ctx, callerFromContext(ctx), req.Id, req.Sid); err != nil {
		return nil, err
	}
	return gen.RevokeUserSession204Response{}, nil
}

// LogoutUserEverywhere revokes every live session of a user, for superusers, and records the
// superuser as the actor.
func (h handlers) LogoutUserEverywhere(ctx context.Context, req gen.LogoutUserEverywhereRequestObject) (gen.LogoutUserEverywhereResponseObject, error) {
	if err := h.auth.LogoutUser(ctx, callerFromContext(ctx), req.Id); err != nil {
		return nil, err
	}
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
