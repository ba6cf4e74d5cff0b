package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/clients"
)

// oauthError is a refusal in the OAuth shape (RFC 6749 5.2, RFC 6750 3.1): what the /oauth/
// endpoints and the clientCredentials middleware answer, instead of the Error schema.
type oauthError struct {
	status      int
	code        client.OAuthErrorError
	description string
	// challenge is the WWW-Authenticate header, "" for none; retryAfter, in seconds, is sent
	// as Retry-After when positive.
	challenge  string
	retryAfter int
}

func (e *oauthError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.description) }

const basicChallenge = `Basic realm="authapi"`

func errOAuthRequest(format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: client.OAuthErrInvalidRequest, description: fmt.Sprintf(format, args...)}
}

var (
	errOAuthInvalidClient = &oauthError{status: http.StatusUnauthorized, code: client.OAuthErrInvalidClient,
		description: "Client authentication failed.", challenge: basicChallenge}
	errOAuthInvalidToken = &oauthError{status: http.StatusUnauthorized, code: client.OAuthErrInvalidToken,
		description: "The client token is invalid, expired, or its client disabled or deleted.",
		challenge:   `Bearer realm="authapi", error="invalid_token"`}
	errOAuthNoToken = &oauthError{status: http.StatusUnauthorized, code: client.OAuthErrInvalidToken,
		description: "A client token is required.", challenge: `Bearer realm="authapi"`}
)

func errOAuthScope(scope string) *oauthError {
	return &oauthError{status: http.StatusForbidden, code: client.OAuthErrInsufficientScope,
		description: fmt.Sprintf("The client lacks scope %s.", scope),
		challenge:   fmt.Sprintf(`Bearer realm="authapi", error="insufficient_scope", scope=%q`, scope)}
}

// clientRefusal is the answer to a failed client authentication.
func clientRefusal(err error) error {
	if t, ok := errors.AsType[*clients.ThrottledError](err); ok {
		return &oauthError{status: http.StatusTooManyRequests, code: client.OAuthErrInvalidClient,
			description: "Too many failed client authentications.", retryAfter: retryAfterSeconds(t.Wait)}
	}
	if errors.Is(err, clients.ErrInvalidClient) {
		return errOAuthInvalidClient
	}
	return err
}

// oauthAnswer is what an error becomes on an operation that answers OAuth errors: itself,
// or the OAuth form of the Error schema's answer (a 4xx invalid_request, a 503
// temporarily_unavailable, else server_error).
func oauthAnswer(err error, e *apiError) *oauthError {
	if oe, ok := errors.AsType[*oauthError](err); ok {
		return oe
	}
	switch {
	case e.Status == http.StatusServiceUnavailable:
		return &oauthError{status: e.Status, code: client.OAuthErrTemporarilyUnavailable, description: e.Detail, retryAfter: e.RetryAfter}
	case e.Status >= http.StatusInternalServerError:
		return &oauthError{status: e.Status, code: client.OAuthErrServerError, description: e.Detail}
	case e.Status == http.StatusUnauthorized:
		return errOAuthInvalidClient
	}
	return &oauthError{status: e.Status, code: client.OAuthErrInvalidRequest, description: e.Detail, retryAfter: e.RetryAfter}
}

func (s *Server) writeOAuthError(c echo.Context, e *oauthError) {
	h := c.Response().Header()
	if e.challenge != "" {
		h.Set(echo.HeaderWWWAuthenticate, e.challenge)
	}
	if e.retryAfter > 0 {
		h.Set(echo.HeaderRetryAfter, strconv.Itoa(e.retryAfter))
	}
	body := client.OAuthError{Error: e.code}
	if e.description != "" {
		body.ErrorDescription = &e.description
	}
	if err := c.JSON(e.status, body); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write oauth error", "err", err)
	}
}

// answersOAuth reports whether the operation of c answers every error in the OAuth shape:
// the /oauth/ endpoints, which authenticate clients by their secrets. The other
// clientCredentials operations (the SSF endpoints) answer authentication refusals in the
// RFC 6750 shape (an *oauthError from authenticateClient) and the rest with the Error body.
func (s *Server) answersOAuth(c echo.Context) bool {
	r, ok := s.ops[routeKey(c.Request().Method, c.Path())]
	return ok && r.clientSecret
}

// authenticateClient is enforceRoute's check of an operation that takes API clients: a
// Bearer client token must carry the operation's scopes, and its client is put into the
// request's context; without one, an operation that takes client secrets leaves them to its
// handler, and one whose requirements are optional passes.
func (s *Server) authenticateClient(c echo.Context, r *operation, info *requestInfo) error {
	req := c.Request()
	header := req.Header.Get(echo.HeaderAuthorization)
	info.authorization = header
	if r.clientSecret && hasBody(req) {
		if err := refuseRepeated(req); err != nil {
			return err
		}
	}
	scheme, raw, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || r.clientScopes == nil {
		if r.clientSecret || r.optional {
			return nil
		}
		return errOAuthNoToken
	}
	p, err := s.clients.AuthenticateToken(req.Context(), strings.TrimSpace(raw))
	if errors.Is(err, clients.ErrInvalidClient) {
		return errOAuthInvalidToken
	}
	if err != nil {
		return err
	}
	if missing := missingScope(p, r.clientScopes); missing != "" {
		return errOAuthScope(missing)
	}
	info.apiClient = &p
	return nil
}

// refuseRepeated refuses a form that sends a parameter twice (RFC 6749 3.2, 7662 2.1, 7009
// 2.1 forbid it), or that url.ParseQuery would refuse. It reads the body (BodyLimit bounds
// it) and puts it back for the validator and the handler. Only the names are unescaped: the
// validator and the handler decode the values (a token is most of the body), so decoding
// them here too would cost every introspection a third decoding.
func refuseRepeated(req *http.Request) error {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	var names []string
	for pair := range strings.SplitSeq(string(b), "&") {
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(key)
		if err != nil || strings.Contains(pair, ";") || !validEscapes(value) {
			return errOAuthRequest("The body is not a valid form.")
		}
		if slices.Contains(names, name) {
			return errOAuthRequest("Parameter %s is repeated.", name)
		}
		names = append(names, name)
	}
	return nil
}

// clientCredentials is how a client authenticated on an /oauth/ request: the client token
// the middleware checked, else the secret in the Authorization header (client_secret_basic)
// or in the body (client_secret_post), never two of them. public is true for the
// first-party public client (client_id=authapi, no secret) where publicOK.
func (s *Server) clientCredentials(ctx context.Context, formID, formSecret *string, publicOK bool) (p clients.Principal, public bool, err error) {
	id, secret := deref(formID), deref(formSecret)
	if p, ok := apiClientFromContext(ctx); ok {
		if id != "" || secret != "" {
			return clients.Principal{}, false, errOAuthRequest("Use one client authentication method, not several.")
		}
		return p, false, nil
	}
	info := requestInfoFromContext(ctx)
	scheme, encoded, _ := strings.Cut(info.authorization, " ")
	if strings.EqualFold(scheme, "Basic") {
		basicID, basicSecret, ok := parseBasic(strings.TrimSpace(encoded))
		switch {
		case !ok:
			return clients.Principal{}, false, errOAuthInvalidClient
		case secret != "" || (id != "" && id != basicID):
			return clients.Principal{}, false, errOAuthRequest("Use one client authentication method, not several.")
		}
		id, secret = basicID, basicSecret
	} else if info.authorization != "" && !strings.EqualFold(scheme, "Bearer") {
		return clients.Principal{}, false, errOAuthInvalidClient
	}
	switch {
	case id == auth.FirstPartyClientID && secret == "" && publicOK:
		return clients.Principal{}, true, nil
	case id == "" || secret == "":
		return clients.Principal{}, false, errOAuthInvalidClient
	}
	p, err = s.clients.AuthenticateSecret(ctx, s.auditSource(ctx), id, secret)
	if err != nil {
		return clients.Principal{}, false, clientRefusal(err)
	}
	return p, false, nil
}

// parseBasic decodes client_secret_basic: base64 of id:secret, each form-encoded first (RFC
// 6749 2.3.1).
func parseBasic(encoded string) (id, secret string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	return id, secret, id != ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// OauthToken is the client credentials grant (RFC 6749 4.4).
func (h handlers) OauthToken(ctx context.Context, req gen.OauthTokenRequestObject) (gen.OauthTokenResponseObject, error) {
	body := req.Body
	if body == nil {
		body = &client.OAuthTokenRequest{}
	}
	p, _, err := h.clientCredentials(ctx, body.ClientId, body.ClientSecret, false)
	if err != nil {
		return nil, err
	}
	switch gt := deref(body.GrantType); gt {
	case "":
		return nil, errOAuthRequest("Parameter grant_type is required.")
	case "client_credentials":
	default:
		return nil, &oauthError{status: http.StatusBadRequest, code: client.OAuthErrUnsupportedGrantType,
			description: "Only client_credentials is supported."}
	}
	var requested []string
	if body.Scope != nil {
		requested = clients.ParseScope(*body.Scope)
	}
	issued, err := h.clients.IssueToken(p, requested)
	switch {
	case errors.Is(err, clients.ErrInvalidScope):
		return nil, &oauthError{status: http.StatusBadRequest, code: client.OAuthErrInvalidScope,
			description: "A requested scope is unknown or not held by the client."}
	case err != nil:
		return nil, clientRefusal(err)
	}
	out := gen.OauthToken200JSONResponse{AccessToken: issued.Token, TokenType: client.OAuthTokenResponseTokenTypeBearer,
		ExpiresIn: int64(issued.ExpiresIn.Seconds())}
	if len(issued.Scopes) > 0 {
		scope := strings.Join(issued.Scopes, " ")
		out.Scope = &scope
	}
	return out, nil
}

// needScope refuses a client authenticated by its secret that lacks scope. A client token's
// scopes were checked by the middleware, the one guard of the operations that take only
// client tokens.
func needScope(ctx context.Context, p clients.Principal, scope string) error {
	if _, byToken := apiClientFromContext(ctx); !byToken && !p.Has(scope) {
		return errOAuthScope(scope)
	}
	return nil
}

// OauthRevoke is token revocation (RFC 7009).
func (h handlers) OauthRevoke(ctx context.Context, req gen.OauthRevokeRequestObject) (gen.OauthRevokeResponseObject, error) {
	body := req.Body
	if body == nil {
		body = &client.OAuthRevokeRequest{}
	}
	p, public, err := h.clientCredentials(ctx, body.ClientId, body.ClientSecret, true)
	if err != nil {
		return nil, err
	}
	if !public {
		if err := needScope(ctx, p, clients.ScopeRevoke); err != nil {
			return nil, err
		}
	}
	raw := deref(body.Token)
	if raw == "" {
		return nil, errOAuthRequest("Parameter token is required.")
	}
	if _, err := h.clients.ParseToken(raw); err == nil {
		return nil, &oauthError{status: http.StatusBadRequest, code: client.OAuthErrUnsupportedTokenType,
			description: "Client tokens cannot be revoked: disable or rotate the client."}
	}
	ev := auth.RevokedEvent(h.auditSource(ctx))
	ev.ClientID = auth.FirstPartyClientID
	if !public {
		ev.ClientID = p.Client.ID
	}
	if _, err := h.auth.RevokeToken(ctx, raw, ev); err != nil {
		return nil, err
	}
	return gen.OauthRevoke200Response{}, nil
}

// missingScope is "" when p carries every scope of one of the alternatives, else the first
// scope the first alternative lacks (named in the refusal).
func missingScope(p clients.Principal, alternatives [][]string) string {
	first := ""
	for _, scopes := range alternatives {
		lacking := ""
		for _, sc := range scopes {
			if !p.Has(sc) {
				lacking = sc
				break
			}
		}
		if lacking == "" {
			return ""
		}
		if first == "" {
			first = lacking
		}
	}
	return first
}
