package server

import (
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// enforceRoute applies what the spec says about the matched operation before its body is
// decoded: the body's media type, authentication and the permission it needs. Requests for
// routes outside the spec (docs, unknown paths) pass through untouched.
func (s *Server) enforceRoute(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, ok := s.ops[routeKey(c.Request().Method, c.Path())]
		if !ok {
			return next(c)
		}
		req := c.Request()
		info := requestInfoFromContext(req.Context()) // observe put it there
		if info == nil {
			info = &requestInfo{}
			c.SetRequest(req.WithContext(withRequestInfo(req.Context(), info)))
		}
		info.client = auth.Client{IP: c.RealIP(), UserAgent: truncate(userfields.MakeStorable(req.UserAgent()), 512)}
		switch {
		case r.public:
		case r.clientScopes != nil || r.clientSecret:
			if err := s.authenticateClient(c, r, info); err != nil {
				return err
			}
		default:
			p, err := s.authenticate(req)
			if err != nil {
				return err
			}
			if !r.enrolment && s.auth.EnrolmentOnly(p.User) {
				return auth.ErrEnrolmentRequired
			}
			if !allowed(p.User, r.permission) {
				return errPermissionDenied
			}
			if r.stepUp && s.auth.StepUpNeeded(p, r.addsFactor) {
				return auth.ErrStepUpRequired
			}
			info.principal, info.authenticated = p, true
		}
		if len(r.mediaTypes) > 0 && hasBody(c.Request()) {
			ct := c.Request().Header.Get(echo.HeaderContentType)
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || !slices.Contains(r.mediaTypes, mt) {
				return errUnsupportedMediaType(ct)
			}
		}
		return next(c)
	}
}

func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// authenticate checks the request's bearer access token and loads its user and session
// (see auth.Service.Authenticate). Its refusals of a token sent are errAccessToken, so that
// the 401 names the token as the fault (handleError).
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	raw, err := bearerToken(r.Header.Get(echo.HeaderAuthorization))
	if err != nil {
		return auth.Principal{}, err
	}
	p, err := s.auth.Authenticate(r.Context(), raw)
	if err != nil {
		return auth.Principal{}, fmt.Errorf("%w: %w", errAccessToken, err)
	}
	return p, nil
}

// bearerToken reads "Authorization: Bearer <token>" the way the demo (simplejwt) did: another
// scheme counts as no credentials, a malformed Bearer header is its own error.
func bearerToken(header string) (string, error) {
	// What clients send: "Bearer " and a token of visible ASCII (no byte of it can be part
	// of a white space character), without splitting the token rune by rune.
	if tok, ok := strings.CutPrefix(header, "Bearer "); ok && visibleASCII(tok) {
		return tok, nil
	}
	var parts [2]string // the first two fields, without building a slice of them all
	n := 0
	for f := range strings.FieldsSeq(header) {
		if n < len(parts) {
			parts[n] = f
		}
		if n++; n > len(parts) {
			break
		}
	}
	if n == 0 || parts[0] != "Bearer" {
		return "", errNotAuthenticated
	}
	if n != 2 {
		return "", errBadAuthHeader
	}
	return parts[1], nil
}

// visibleASCII reports whether s is not empty and only of the bytes 0x21 to 0x7e.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// allowed reports whether u has the permission an operation needs. Staff and superuser are
// read on every request, so promotions and demotions apply at once.
func allowed(u store.User, p permission) bool {
	switch p {
	case staff:
		return u.IsStaff
	case superuser:
		return u.IsSuperuser
	}
	return true
}

// apiCSP lets a response load, run and frame nothing: JSON needs none of it. HTML pages
// replace it with their own.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// hsts tells browsers to use HTTPS only for a year once they have reached the server over it.
const hsts = "max-age=31536000"

// securityHeaders are sent on every response, as Django's defaults did, plus a Content Security
// Policy, over HTTPS HSTS, and the caching rules for credentials.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h[echo.HeaderXContentTypeOptions] = nosniff
		h[echo.HeaderXFrameOptions] = frameDeny
		h[echo.HeaderReferrerPolicy] = sameOrigin
		h[echo.HeaderContentSecurityPolicy] = apiCSPValue
		if c.Request().TLS != nil {
			h[echo.HeaderStrictTransportSecurity] = hstsValue
		}
		if r := c.Request(); r.Header[echo.HeaderAuthorization] != nil || privateAPIPath(r.URL.Path) {
			// Tokens, accounts, sessions, keys, the audit log, anything asked with credentials:
			// never kept by a cache. (A public document, the JWKS, keeps its own max-age.)
			h[echo.HeaderCacheControl] = noStore
		}
		// Where a response may still be cached, a cache keys it by the credentials too, so
		// that no caller is ever served another's.
		h[echo.HeaderVary] = varyAuthorization
		return next(c)
	}
}

// privateAPIPath reports whether path is the API's own (answers for a caller, or about tokens),
// as opposed to its public documents: the Swagger UI, the JWKS, the health checks.
func privateAPIPath(path string) bool {
	return (strings.HasPrefix(path, "/api/v1/") && !strings.HasPrefix(path, swaggerUIPath)) || strings.HasPrefix(path, "/oauth/")
}

// The security headers' values, shared by every response instead of a new slice per header
// per response (Header.Set). The keys above are canonical. Code that changes one of these
// headers replaces the slice (Set) or appends to it (Add, which copies: each has len == cap);
// nothing writes into them.
var (
	nosniff     = []string{"nosniff"}
	frameDeny   = []string{"DENY"}
	sameOrigin  = []string{"same-origin"}
	apiCSPValue = []string{apiCSP}
	hstsValue   = []string{hsts}
	noStore     = []string{"no-store"}

	varyAuthorization = []string{echo.HeaderAuthorization}
)

// headAsGet answers HEAD like GET, as HTTP requires of every GET resource; Echo routes HEAD
// only where it is registered. Echo routes on the request it was given, so that request
// becomes a GET, and the body written for it is dropped.
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodHead {
			c.Request().Method = http.MethodGet
			c.Response().Writer = bodyless{c.Response().Writer}
		}
		return next(c)
	}
}

// bodyless is a ResponseWriter that sends headers and status but no body.
type bodyless struct{ http.ResponseWriter }

func (bodyless) Write(p []byte) (int, error) { return len(p), nil }
