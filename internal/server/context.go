package server

import (
	"context"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/clients"
)

// requestInfo is what middleware learned about a request: its id (observe) and, for a spec
// operation, where it came from and, for a secured operation, who is calling (enforceRoute).
// It goes into the request's context once, as one value; enforceRoute fills it in before the
// handler runs, and nothing changes it afterwards.
type requestInfo struct {
	id            string
	idHeader      [1]string // the X-Request-ID header's value
	client        auth.Client
	principal     auth.Principal // the caller's user and the session of their access token
	authenticated bool
	// apiClient is the API client of a client token (clientCredentials), nil for none.
	apiClient *clients.Principal
	// authorization is the Authorization header, for handlers that authenticate a client by
	// its secret (clientSecretBasic).
	authorization string
}

type requestKey struct{}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

func requestInfoFromContext(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	return info
}

// principalFromContext returns the caller. Handlers of secured operations can rely on it: the
// authentication middleware refuses the request before the handler runs otherwise.
func principalFromContext(ctx context.Context) (auth.Principal, bool) {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil || !info.authenticated {
		return auth.Principal{}, false
	}
	return info.principal, true
}

// apiClientFromContext returns the API client whose client token authorised the request
// (operations secured by clientCredentials), false when none did.
func apiClientFromContext(ctx context.Context) (clients.Principal, bool) {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil || info.apiClient == nil {
		return clients.Principal{}, false
	}
	return *info.apiClient, true
}

// auditSource is the common part of the audit events of the request in ctx: its time on the
// server's clock, its caller and session (when authenticated) and its client.
func (s *Server) auditSource(ctx context.Context) audit.Source {
	src := audit.Source{At: s.now()}
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil {
		return src
	}
	src.IP, src.UserAgent = info.client.IP, info.client.UserAgent
	if info.authenticated {
		src.ActorID, src.SessionID = info.principal.User.ID, info.principal.Session.ID
	}
	return src
}

// clientFromContext is where the request in ctx comes from, for the use-cases.
func clientFromContext(ctx context.Context) auth.Client {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil {
		return auth.Client{}
	}
	return info.client
}

// callerFromContext is the caller of the request in ctx, for the use-cases: zero but its
// client when the request is not authenticated.
func callerFromContext(ctx context.Context) auth.Caller {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	if info == nil {
		return auth.Caller{}
	}
	c := auth.Caller{Client: info.client}
	if info.authenticated {
		c.UserID, c.SessionID = info.principal.User.ID, info.principal.Session.ID
	}
	return c
}

type specFieldsKey struct{}

// withSpecFieldErrors records the body members the spec validation found invalid, for a
// handler that reports them with its own findings (see handlerMergesFields).
func withSpecFieldErrors(ctx context.Context, fields map[string][]string) context.Context {
	return context.WithValue(ctx, specFieldsKey{}, fields)
}

// specFieldErrors returns what withSpecFieldErrors recorded, nil when the body conformed.
func specFieldErrors(ctx context.Context) map[string][]string {
	fields, _ := ctx.Value(specFieldsKey{}).(map[string][]string)
	return fields
}
