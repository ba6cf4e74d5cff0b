package server

import (
	"context"
	"errors"
	"fmt"

	"authapi/gen"
	"authapi/metrics"
	"authapi/store"
)

// ListSessions returns the caller's live sessions, newest first.
func (h handlers) ListSessions(ctx context.Context, _ gen.ListSessionsRequestObject) (gen.ListSessionsResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	sessions, err := h.store.LiveSessions(ctx, caller.user.ID, h.now())
	if err != nil {
		return nil, err
	}
	out := make(gen.ListSessions200JSONResponse, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, gen.Session{
			Id: s.ID, Created: s.CreatedAt, LastUsed: s.LastUsedAt, Expires: s.ExpiresAt,
			UserAgent: s.UserAgent, Ip: s.IP, Current: s.ID == caller.session.ID,
		})
	}
	return out, nil
}

// RevokeSession logs out one of the caller's sessions.
func (h handlers) RevokeSession(ctx context.Context, req gen.RevokeSessionRequestObject) (gen.RevokeSessionResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	err := h.store.RevokeUserSession(ctx, caller.user.ID, req.Id, h.now())
	if errors.Is(err, store.ErrNotFound) {
		return gen.RevokeSession404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	h.metrics.Revoked(metrics.RevokeSession)
	return gen.RevokeSession204Response{}, nil
}
