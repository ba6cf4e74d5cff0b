package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type claimsKey struct{}

// WithClaims returns ctx carrying c, as Middleware passes it to the handler.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims Middleware verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header (RFC 6750 2.1).
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Middleware lets through only requests carrying a valid access token, with its claims in the
// request's context (ClaimsFromContext). It answers 401 with an RFC 6750 WWW-Authenticate
// challenge for a missing or refused token, and 503 with Retry-After when the token's status
// cannot be confirmed (ErrUnavailable).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := BearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			writeError(w, http.StatusUnauthorized, "invalid_request", "bearer token required")
			return
		}
		c, err := v.Verify(r.Context(), raw)
		if err != nil {
			status, code, desc := Refusal(err)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			} else {
				w.Header().Set("Retry-After", "1")
			}
			writeError(w, status, code, desc)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// Refusal maps an error of Verify to the status, RFC 6750 error code and description to answer.
// Descriptions name the class of refusal only: why a token failed is for the server's log.
func Refusal(err error) (status int, code, description string) {
	switch {
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "temporarily_unavailable", "token status cannot be confirmed now"
	case errors.Is(err, ErrRevoked):
		return http.StatusUnauthorized, "invalid_token", "token revoked"
	default:
		return http.StatusUnauthorized, "invalid_token", "token invalid or expired"
	}
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
