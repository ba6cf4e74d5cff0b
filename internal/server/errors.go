package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/recovery"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/userfields"
	"github.com/authapi/authapi/internal/users"
	"github.com/authapi/authapi/internal/verification"
)

// Messages the demo API answered with; clients may match on them, so they stay word for word.
const (
	msgNotAuthenticated = "Authentication credentials were not provided."
	msgBadCredentials   = "No active account found with the given credentials"
	msgPermissionDenied = "You do not have permission to perform this action."
	msgNotFound         = "Not found."
	msgRequired         = userfields.MsgRequired
	msgBlank            = userfields.MsgBlank
	msgBadAuthHeader    = "Authorization header must contain two space-delimited values"
	msgUserNotFound     = "User not found"
	msgUserInactive     = "User is inactive"
	msgSessionRevoked   = "Token is blacklisted"
	msgInvalid          = "Invalid input."
	msgBusy             = "The server is busy checking passwords. Try again in a moment."
	msgStarting         = "The server is starting. Try again in a moment."
	msgShuttingDown     = "The server is shutting down."
	msgDatabaseDown     = "Database unavailable."
	msgUnavailable      = "The database is unavailable. Try again in a moment."
)

// unavailableRetryAfter is the Retry-After, in seconds, of a request refused because the
// database was unreachable: a PostgreSQL restart or failover takes seconds, and a client
// asked to wait less would mostly be refused again.
const unavailableRetryAfter = 2

// apiError is an error that renders as the spec's Error body: what middleware, the binder
// and the validator refuse a request with, and what the table below makes of a domain error.
type apiError struct {
	Status int
	Code   client.ErrorCode
	Detail string
	Fields map[string][]string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// MFA is the challenge of a login that needs a second factor (code mfa_required).
	MFA *client.MfaChallenge
	// Reason is the limit a mail_rate_limited refusal reached.
	Reason *client.ErrorReason
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

func (e *apiError) body() client.Error {
	out := client.Error{Code: e.Code, Detail: e.Detail}
	if len(e.Fields) > 0 {
		out.Fields = &e.Fields
	}
	out.Mfa, out.Reason = e.MFA, e.Reason
	return out
}

// The adapter's own refusals, answered by the table below.
var (
	errNotAuthenticated = errors.New("no bearer credentials")
	errBadAuthHeader    = errors.New("malformed bearer authorization header")
	errPermissionDenied = errors.New("permission denied")
	// errAccessToken wraps the refusal of the bearer token a request sent (invalid, expired,
	// its session or user gone), as opposed to a refusal of what the request carried.
	errAccessToken = errors.New("bearer access token")
)

// codes is the one table of refusals: each domain error, and the adapter's own, with the
// status, code and detail it is answered with (as benbjohnson/wtf's codes map). A 401 also
// carries WWW-Authenticate, a 429 or 503 Retry-After (see handleError). Typed domain errors
// (*userfields.Errors) are answered in refusal, below.
var codes = []struct {
	err    error
	status int
	code   client.ErrorCode
	detail string
}{
	{errNotAuthenticated, http.StatusUnauthorized, client.ErrorCodeNotAuthenticated, msgNotAuthenticated},
	{errBadAuthHeader, http.StatusUnauthorized, client.ErrorCodeBadAuthorizationHeader, msgBadAuthHeader},
	{errPermissionDenied, http.StatusForbidden, client.ErrorCodePermissionDenied, msgPermissionDenied},

	{auth.ErrBadCredentials, http.StatusUnauthorized, client.ErrorCodeAuthenticationFailed, msgBadCredentials},
	// A *auth.ThrottledError wraps these; refusal adds when to try again.
	{auth.ErrLoginThrottled, http.StatusTooManyRequests, client.ErrorCodeThrottled, "Too many failed login attempts."},
	{auth.ErrPasswordChangeThrottled, http.StatusTooManyRequests, client.ErrorCodeThrottled, "Too many failed password attempts."},
	{auth.ErrFactorThrottled, http.StatusTooManyRequests, client.ErrorCodeThrottled, "Too many failed second factor attempts."},
	{auth.ErrChallengeInvalid, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, "The challenge is invalid, used or expired: log in again."},
	{auth.ErrBadFactorCode, http.StatusUnauthorized, client.ErrorCodeInvalidMfaCode, "Invalid or already used code."},
	{auth.ErrFactorExists, http.StatusConflict, client.ErrorCodeConflict, "An authenticator app is active already: remove it first."},
	{auth.ErrNoFactor, http.StatusNotFound, client.ErrorCodeNotFound, msgNotFound},
	{auth.ErrBadAssertion, http.StatusUnauthorized, client.ErrorCodeInvalidMfaCode, "The security key or passkey was not accepted."},
	{auth.ErrCeremonyInvalid, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, "The ceremony is invalid, used or expired: begin again."},
	{auth.ErrCredentialExists, http.StatusConflict, client.ErrorCodeConflict, "This security key or passkey is registered already."},
	{auth.ErrStepUpRequired, http.StatusUnauthorized, client.ErrorCodeInsufficientUserAuthentication, msgStepUp + ": re-authenticate."},
	{auth.ErrEnrolmentRequired, http.StatusForbidden, client.ErrorCodeMfaEnrolmentRequired, msgEnrolmentFirst},
	{password.ErrBusy, http.StatusServiceUnavailable, client.ErrorCodeBusy, msgBusy},

	{auth.ErrTokenInvalid, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, token.ErrInvalid.Error()},
	{auth.ErrTokenWrongType, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, token.ErrWrongType.Error()},
	{auth.ErrTokenNoUser, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, token.ErrNoUser.Error()},
	{auth.ErrSessionRevoked, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, msgSessionRevoked},
	{auth.ErrSessionTooOld, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, "Session has reached its maximum lifetime"},
	{auth.ErrRefreshReused, http.StatusUnauthorized, client.ErrorCodeTokenNotValid, "Token has already been used; the session is revoked"},
	{auth.ErrUserNotFound, http.StatusUnauthorized, client.ErrorCodeUserNotFound, msgUserNotFound},
	{auth.ErrUserInactive, http.StatusUnauthorized, client.ErrorCodeUserInactive, msgUserInactive},
	{auth.ErrNotOwnToken, http.StatusForbidden, client.ErrorCodePermissionDenied, msgPermissionDenied},
	{auth.ErrNotFound, http.StatusNotFound, client.ErrorCodeNotFound, msgNotFound},

	{auth.ErrEmailNotVerified, http.StatusForbidden, client.ErrorCodeEmailNotVerified, "Confirm your email address first: follow the link mailed to it."},
	{verification.ErrTokenInvalid, http.StatusBadRequest, client.ErrorCodeEmailTokenInvalid, "The link is invalid, used or expired."},
	{verification.ErrSignUpDisabled, http.StatusForbidden, client.ErrorCodeSignupDisabled, "Sign-up is disabled."},
	{verification.ErrAlreadyVerified, http.StatusBadRequest, client.ErrorCodeInvalid, "The address is verified already."},
	{verification.ErrNoAddress, http.StatusBadRequest, client.ErrorCodeInvalid, "The account has no email address."},

	{users.ErrNotFound, http.StatusNotFound, client.ErrorCodeNotFound, msgNotFound},
	{clients.ErrNotFound, http.StatusNotFound, client.ErrorCodeNotFound, msgNotFound},

	{ssf.ErrNotFound, http.StatusNotFound, client.ErrorCodeNotFound, msgNotFound},
	{ssf.ErrTooManyStreams, http.StatusConflict, client.ErrorCodeConflict, "Too many streams for this client: delete one first."},
	{recovery.ErrTokenInvalid, http.StatusBadRequest, client.ErrorCodeEmailTokenInvalid, "The link is invalid, used or expired. Ask for a new one."},

	{users.ErrLastSuperuser, http.StatusBadRequest, client.ErrorCodeInvalid, "The last active superuser cannot be deleted, deactivated or demoted."},
}

// refusal is the answer to err when it is a domain refusal (see codes); false otherwise.
func (s *Server) refusal(err error) (*apiError, bool) {
	if m, ok := errors.AsType[*auth.MFARequiredError](err); ok {
		return errMFARequired(m), true
	}
	if le, ok := errors.AsType[*mail.LimitedError](err); ok {
		return errMailLimited(le), true
	}
	if ie, ok := errors.AsType[*ssf.InvalidError](err); ok {
		return errInvalid(map[string][]string{ie.Field: {ie.Reason}}), true
	}
	if fe, ok := errors.AsType[*userfields.Errors](err); ok {
		if fe.Policy { // only the password policy refused: its one field
			for field, reasons := range fe.Fields {
				return errInvalidPassword(field, reasons), true
			}
		}
		return errInvalid(fe.Fields), true
	}
	for _, c := range codes {
		if !errors.Is(err, c.err) {
			continue
		}
		e := &apiError{Status: c.status, Code: c.code, Detail: c.detail}
		var throttled *auth.ThrottledError
		switch {
		case errors.As(err, &throttled):
			e.Detail, e.RetryAfter = throttledAnswer(c.detail, throttled.Wait)
		case c.code == client.ErrorCodeBusy:
			e.RetryAfter = retryAfterSeconds(s.hasher.Wait())
		}
		return e, true
	}
	return nil, false
}

// errMFARequired answers a right password of an account with a second factor: no tokens,
// the challenge (see the spec's obtainToken for why 401).
func errMFARequired(m *auth.MFARequiredError) *apiError {
	methods := make([]client.MfaMethod, len(m.Methods))
	for i, v := range m.Methods {
		methods[i] = client.MfaMethod(v)
	}
	return &apiError{Status: http.StatusUnauthorized, Code: client.ErrorCodeMfaRequired,
		Detail: "A second factor is required to complete the login.",
		MFA:    &client.MfaChallenge{Challenge: m.Challenge, ExpiresAt: m.ExpiresAt, Methods: methods, Webauthn: webauthnOptions(m.WebAuthn)}}
}

// webauthnOptions is o as the challenge carries it: absent when empty.
func webauthnOptions(o map[string]any) *map[string]any {
	if len(o) == 0 {
		return nil
	}
	return &o
}

// mailLimitedWhere says, by the reason of a *mail.LimitedError, what the limit counts by.
var mailLimitedWhere = map[string]string{
	mail.ReasonIP:      "from this IP address",
	mail.ReasonDomain:  "for addresses of this domain",
	mail.ReasonAccount: "for this account",
}

// errMailLimited refuses a request for mail (a password reset, a sign-up, a link) over a
// limit.
func errMailLimited(le *mail.LimitedError) *apiError {
	reason := client.ErrorReason(le.Reason) // the same words: ip, recipient_domain, account
	retry := retryAfterSeconds(le.Wait)
	return &apiError{Status: http.StatusTooManyRequests, Code: client.ErrorCodeMailRateLimited,
		Detail:     fmt.Sprintf("Too many %s %s. Try again in %d seconds.", le.What, mailLimitedWhere[le.Reason], retry),
		RetryAfter: retry, Reason: &reason}
}

func errInvalid(fields map[string][]string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: client.ErrorCodeInvalid, Detail: invalidDetail(fields), Fields: fields}
}

// errInvalidPassword refuses a new password, in field, that only the password policy
// refused, for reasons.
func errInvalidPassword(field string, reasons []string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: client.ErrorCodeInvalidPassword,
		Detail: strings.Join(reasons, " "), Fields: map[string][]string{field: reasons}}
}

// invalidDetail summarises field errors in one line, so a client that only shows detail still
// tells the user what to fix.
func invalidDetail(fields map[string][]string) string {
	if len(fields) == 1 {
		for name, msgs := range fields {
			if len(msgs) > 0 {
				return name + ": " + msgs[0]
			}
		}
	}
	return msgInvalid
}

func retryAfterSeconds(wait time.Duration) int { return max(1, int(math.Ceil(wait.Seconds()))) }

const wwwAuthenticate = `Bearer realm="api"`

// wwwAuthenticateInvalidToken answers a refused access token (RFC 6750 section 3.1): a client
// refreshes then, and only then; a 401 for a wrong code or a used ceremony carries no error.
const wwwAuthenticateInvalidToken = `Bearer realm="api", error="invalid_token"`

// statusClientClosedRequest is nginx's status for a request whose client hung up before the
// answer: no response reaches anyone, and nothing failed on the server's side.
const statusClientClosedRequest = 499

// clientGone reports whether the client of c has hung up: the server cancels the request's
// context when the connection closes. A handler that stopped early because of it (a query
// cancelled with its context) did not fail.
func clientGone(c echo.Context) bool {
	return errors.Is(c.Request().Context().Err(), context.Canceled)
}

// handleError renders every error that reaches Echo (domain refusals, framework errors,
// middleware errors and unexpected handler failures) as the spec's Error body. Unexpected
// causes are logged, never sent.
// A domain refusal is an answer, sent (and logged) as such even when the client has gone, as
// a success is. Otherwise a request whose client has gone gets status 499 and no body; the
// request log records it at INFO. Its error is the cancellation of its context, or, if not,
// is logged at WARN (it may be a bug, but no client saw a failure).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if oe, ok := errors.AsType[*oauthError](err); ok {
		s.writeOAuthError(c, oe)
		return
	}
	e, refused := s.refusal(err)
	if !refused {
		if clientGone(c) {
			if !errors.Is(err, context.Canceled) {
				s.log.WarnContext(c.Request().Context(), "request failed after the client hung up", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
			}
			c.Response().WriteHeader(statusClientClosedRequest)
			return
		}
		if to, ok := s.withSlash(err, c); ok {
			if werr := c.Redirect(http.StatusPermanentRedirect, to); werr != nil {
				s.log.ErrorContext(c.Request().Context(), "write redirect", "err", werr)
			}
			return
		}
		e = s.toAPIError(err, c)
	}
	if s.answersOAuth(c) {
		s.writeOAuthError(c, oauthAnswer(err, e))
		return
	}
	h := c.Response().Header()
	switch {
	case e.Code == client.ErrorCodeInsufficientUserAuthentication:
		h.Set(echo.HeaderWWWAuthenticate, s.stepUpChallenge())
	case e.Status == http.StatusUnauthorized && errors.Is(err, errAccessToken):
		h.Set(echo.HeaderWWWAuthenticate, wwwAuthenticateInvalidToken)
	case e.Status == http.StatusUnauthorized:
		h.Set(echo.HeaderWWWAuthenticate, wwwAuthenticate)
	case e.RetryAfter > 0:
		h.Set(echo.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
	}
	if werr := c.JSON(e.Status, e.body()); werr != nil {
		s.log.ErrorContext(c.Request().Context(), "write error response", "err", werr)
	}
}

// withSlash is where a GET or HEAD that matched no route belongs when its path lacks only the
// trailing slash, as Django's APPEND_SLASH redirects. Checking only after a miss keeps the
// lookup off every routed request.
func (s *Server) withSlash(err error, c echo.Context) (string, bool) {
	var he *echo.HTTPError
	r := c.Request()
	path := r.URL.Path
	if !errors.As(err, &he) || he.Code != http.StatusNotFound || r.Method != http.MethodGet ||
		strings.HasSuffix(path, "/") || strings.HasPrefix(path, "//") || !strings.HasPrefix(path, "/") {
		return "", false
	}
	probe := s.echo.NewContext(r, nil)
	s.echo.Router().Find(http.MethodGet, path+"/", probe)
	if _, ok := s.ops[routeKey(http.MethodGet, probe.Path())]; !ok {
		return "", false
	}
	to := (&url.URL{Path: path + "/", RawQuery: r.URL.RawQuery}).String()
	return to, true
}

func (s *Server) toAPIError(err error, c echo.Context) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, store.ErrUnavailable) {
		// Not logged: availabilityChanged logs the outage once, not each request it refuses.
		s.refusedUnavailable.Add(1)
		s.metrics.DatabaseUnavailable()
		return &apiError{Status: http.StatusServiceUnavailable, Code: client.ErrorCodeUnavailable, Detail: msgUnavailable,
			RetryAfter: unavailableRetryAfter}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &apiError{Status: he.Code, Code: client.ErrorCodeNotFound, Detail: msgNotFound}
		case http.StatusMethodNotAllowed:
			return &apiError{Status: he.Code, Code: client.ErrorCodeMethodNotAllowed,
				Detail: fmt.Sprintf("Method %q not allowed.", c.Request().Method)}
		case http.StatusRequestEntityTooLarge:
			return &apiError{Status: he.Code, Code: client.ErrorCodeRequestTooLarge, Detail: "Request body too large."}
		case http.StatusUnsupportedMediaType:
			return errUnsupportedMediaType(c.Request().Header.Get(echo.HeaderContentType))
		case http.StatusBadRequest:
			// Parameter binding in the generated wrappers: "Invalid format for parameter id: ...".
			return &apiError{Status: he.Code, Code: client.ErrorCodeInvalid, Detail: paramErrorDetail(he)}
		}
		if he.Code < http.StatusInternalServerError {
			return &apiError{Status: he.Code, Code: client.ErrorCodeInvalid, Detail: http.StatusText(he.Code)}
		}
	}
	s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: client.ErrorCodeInternalError, Detail: "Internal error."}
}

func errUnsupportedMediaType(contentType string) *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Code: client.ErrorCodeUnsupportedMediaType,
		Detail: fmt.Sprintf("Unsupported media type %q in request.", contentType)}
}

// paramErrorDetail keeps the generated wrapper's first sentence and drops the parser internals.
func paramErrorDetail(he *echo.HTTPError) string {
	msg := fmt.Sprint(he.Message)
	if name, _, ok := strings.Cut(strings.TrimPrefix(msg, "Invalid format for parameter "), ":"); ok && name != msg {
		return fmt.Sprintf("Invalid value for parameter %s.", name)
	}
	return msg
}

// availabilityChanged logs the store's database going away and coming back: one line each
// per outage, however many requests it refuses meanwhile (they are counted in the metrics,
// and in the line that ends the outage).
func (s *Server) availabilityChanged(c store.AvailabilityChange) {
	if !c.Available {
		s.log.Error("database unavailable: requests that need it answer 503 until it is back", "err", c.Err)
		return
	}
	s.log.Info("database available again", "down_for", c.Down.Round(time.Millisecond).String(),
		"requests_refused", s.refusedUnavailable.Swap(0))
}
