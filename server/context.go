package server

import (
	"context"

	"authapi/store"
)

// principal is the authenticated caller: the user and the session their access token belongs to.
type principal struct {
	user    store.User
	session store.Session
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFromContext returns the caller. Handlers of secured operations can rely on it: the
// authentication middleware refuses the request before the handler runs otherwise.
func principalFromContext(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

// clientInfo describes where a request came from, for the sessions it starts.
type clientInfo struct {
	ip        string
	userAgent string
}

type clientKey struct{}

func withClient(ctx context.Context, c clientInfo) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientFromContext(ctx context.Context) clientInfo {
	c, _ := ctx.Value(clientKey{}).(clientInfo)
	return c
}
