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

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
)

// Messages the demo API answered with; clients may match on them, so they stay word for word.
const (
	msgNotAuthenticated = "Authentication credentials were not provided."
	msgBadCredentials   = "No active account found with the given credentials"
	msgPermissionDenied = "You do not have permission to perform this action."
	msgNotFound         = "Not found."
	msgUsernameTaken    = "A user with that username already exists."
	msgRequired         = "This field is required."
	msgBlank            = "This field may not be blank."
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

// apiError is an error that renders as the spec's Error body. Middleware and the binder
// return it; handlers return the generated typed responses instead.
type apiError struct {
	Status int
	Code   client.ErrorCode
	Detail string
	Fields map[string][]string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

func (e *apiError) body() client.Error {
	out := client.Error{Code: e.Code, Detail: e.Detail}
	if len(e.Fields) > 0 {
		out.Fields = &e.Fields
	}
	return out
}

func errUnauthorized(code client.ErrorCode, detail string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: code, Detail: detail}
}

func errInvalid(fields map[string][]string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid", Detail: invalidDetail(fields), Fields: fields}
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

// Typed bodies for handlers; the generated response types wrap them.

func unauthorized(code client.ErrorCode, detail string) gen.UnauthorizedJSONResponse {
	return gen.UnauthorizedJSONResponse{
		Body:    client.Error{Code: code, Detail: detail},
		Headers: gen.UnauthorizedResponseHeaders{WWWAuthenticate: wwwAuthenticate},
	}
}

func badRequest(e *apiError) gen.BadRequestJSONResponse { return gen.BadRequestJSONResponse(e.body()) }

func forbidden() gen.ForbiddenJSONResponse {
	return gen.ForbiddenJSONResponse{Code: "permission_denied", Detail: msgPermissionDenied}
}

func notFound() gen.NotFoundJSONResponse {
	return gen.NotFoundJSONResponse{Code: "not_found", Detail: msgNotFound}
}

// busy answers a request whose password hashing found no free slot within the hasher's wait
// (password.ErrBusy): try again once another wait has passed.
func busy(wait time.Duration) gen.BusyJSONResponse {
	return gen.BusyJSONResponse{
		Body:    client.Error{Code: "busy", Detail: msgBusy},
		Headers: gen.BusyResponseHeaders{RetryAfter: retryAfterSeconds(wait)},
	}
}

func retryAfterSeconds(wait time.Duration) int { return max(1, int(math.Ceil(wait.Seconds()))) }

const wwwAuthenticate = `Bearer realm="api"`

// statusClientClosedRequest is nginx's status for a request whose client hung up before the
// answer: no response reaches anyone, and nothing failed on the server's side.
const statusClientClosedRequest = 499

// clientGone reports whether the client of c has hung up: the server cancels the request's
// context when the connection closes. A handler that stopped early because of it (a query
// cancelled with its context) did not fail.
func clientGone(c echo.Context) bool {
	return errors.Is(c.Request().Context().Err(), context.Canceled)
}

// handleError renders every error that reaches Echo (framework errors, middleware errors and
// unexpected handler failures) as the spec's Error body. Unexpected causes are logged, never sent.
// A request whose client has gone gets status 499 and no body; the request log records it at
// INFO. Its error is the cancellation of its context, or, if not, is logged at WARN (it may
// be a bug, but no client saw a failure).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
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
	e := s.toAPIError(err, c)
	switch {
	case e.Status == http.StatusUnauthorized:
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, wwwAuthenticate)
	case e.Code == client.ErrorCodeBusy:
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(s.hasher.Wait())))
	case e.Code == client.ErrorCodeUnavailable:
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(unavailableRetryAfter))
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
	if _, ok := s.routes[routeKey(http.MethodGet, probe.Path())]; !ok {
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
	if errors.Is(err, password.ErrBusy) { // handlers answer it typed; this is the safety net
		return &apiError{Status: http.StatusServiceUnavailable, Code: "busy", Detail: msgBusy}
	}
	if errors.Is(err, store.ErrUnavailable) {
		// Not logged: availabilityChanged logs the outage once, not each request it refuses.
		s.refusedUnavailable.Add(1)
		s.metrics.DatabaseUnavailable()
		return &apiError{Status: http.StatusServiceUnavailable, Code: client.ErrorCodeUnavailable, Detail: msgUnavailable}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &apiError{Status: he.Code, Code: "not_found", Detail: msgNotFound}
		case http.StatusMethodNotAllowed:
			return &apiError{Status: he.Code, Code: "method_not_allowed",
				Detail: fmt.Sprintf("Method %q not allowed.", c.Request().Method)}
		case http.StatusRequestEntityTooLarge:
			return &apiError{Status: he.Code, Code: "request_too_large", Detail: "Request body too large."}
		case http.StatusUnsupportedMediaType:
			return errUnsupportedMediaType(c.Request().Header.Get(echo.HeaderContentType))
		case http.StatusBadRequest:
			// Parameter binding in the generated wrappers: "Invalid format for parameter id: ...".
			return &apiError{Status: he.Code, Code: "invalid", Detail: paramErrorDetail(he)}
		}
		if he.Code < http.StatusInternalServerError {
			return &apiError{Status: he.Code, Code: "invalid", Detail: http.StatusText(he.Code)}
		}
	}
	s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Detail: "Internal error."}
}

func errUnsupportedMediaType(contentType string) *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
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
