package server

import (
	"cmp"
	"context"
	"strconv"
	"strings"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/token"
)

// inactive is the whole answer for any token that is not live (RFC 7662 2.2): nothing tells
// why.
var inactive = gen.OauthIntrospect200JSONResponse{Active: false}

// OauthIntrospect is token introspection (RFC 7662). Kinds are tried cheapest first: an
// access token through the auth cache (as an authenticated request), then a client token,
// then a refresh token. Only a failure to judge (the database away) is an error; every
// refusal is inactive.
func (h handlers) OauthIntrospect(ctx context.Context, req gen.OauthIntrospectRequestObject) (gen.OauthIntrospectResponseObject, error) {
	body := req.Body
	if body == nil {
		body = &client.OAuthIntrospectRequest{}
	}
	caller, _, err := h.clientCredentials(ctx, body.ClientId, body.ClientSecret, false)
	if err != nil {
		return nil, err
	}
	if err := needScope(ctx, caller, clients.ScopeIntrospect); err != nil {
		return nil, err
	}
	raw := deref(body.Token)
	if raw == "" {
		return nil, errOAuthRequest("Parameter token is required.")
	}
	p, claims, err := h.auth.Inspect(ctx, raw)
	if err == nil {
		return h.userIntrospection(p, claims, client.AccessToken), nil
	}
	if !auth.IsRefusal(err) {
		return nil, err
	}
	if cc, err := h.clients.ParseToken(raw); err == nil {
		if cc.ClientID != caller.Client.ID {
			return inactive, nil // another client's token: not this caller's to learn about
		}
		if _, err := h.clients.Check(ctx, cc); err != nil {
			return inactive, nil
		}
		return h.clientIntrospection(cc), nil
	}
	p, claims, err = h.auth.InspectRefresh(ctx, raw)
	if err == nil {
		return h.userIntrospection(p, claims, client.RefreshToken), nil
	}
	if !auth.IsRefusal(err) {
		return nil, err
	}
	return inactive, nil
}

// userIntrospection is the active answer for a user's access or refresh token: its claims,
// and the username. A refresh token (no aud, client_id, auth_time or amr of its own) gets
// its session's auth_time (its start, or its last re-authentication).
func (h handlers) userIntrospection(p auth.Principal, c token.Claims, use client.OAuthIntrospectionTokenUse) gen.OauthIntrospect200JSONResponse {
	sub := strconv.FormatInt(c.UserID, 10)
	exp, iat := c.ExpiresAt.Unix(), c.IssuedAt.Unix()
	authTime := p.Session.AuthTime.Unix()
	if !c.AuthTime.IsZero() {
		authTime = c.AuthTime.Unix()
	}
	out := gen.OauthIntrospect200JSONResponse{
		Active: true, TokenUse: &use, Username: &p.User.Username, Sub: &sub, Iss: &c.Issuer,
		Exp: &exp, Iat: &iat, Jti: &c.ID, Sid: &c.SessionID, AuthTime: &authTime, UserId: &c.UserID,
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		out.Aud = c.Audience[0]
	default:
		out.Aud = c.Audience
	}
	if len(c.AMR) > 0 {
		out.Amr = &c.AMR
	}
	if c.ACR != "" {
		out.Acr = &c.ACR
	}
	if use == client.AccessToken {
		bearer, cid := client.OAuthIntrospectionTokenTypeBearer, cmp.Or(c.ClientID, auth.FirstPartyClientID)
		out.TokenType, out.ClientId = &bearer, &cid
	}
	return out
}

// clientIntrospection is the active answer for the caller's own client token.
func (h handlers) clientIntrospection(c token.ClientClaims) gen.OauthIntrospect200JSONResponse {
	iss := h.tokens.Issuer()
	exp, iat := c.ExpiresAt.Unix(), c.IssuedAt.Unix()
	bearer, use := client.OAuthIntrospectionTokenTypeBearer, client.ClientToken
	out := gen.OauthIntrospect200JSONResponse{
		Active: true, TokenType: &bearer, TokenUse: &use, ClientId: &c.ClientID, Sub: &c.ClientID,
		Aud: iss, Iss: &iss, Exp: &exp, Iat: &iat, Jti: &c.ID,
	}
	if len(c.Scopes) > 0 {
		scope := strings.Join(c.Scopes, " ")
		out.Scope = &scope
	}
	return out
}
