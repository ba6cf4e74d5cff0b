package verifier

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Assurance is what an operation demands of how its caller authenticated, as RFC 9470 (OAuth
// 2.0 Step Up Authentication Challenge) lets a resource server demand it of a token: a level
// (acr) and a maximum age of the authentication (auth_time). authapi's levels are "aal1" (a
// password) and "aal2" (a second factor).
type Assurance struct {
	// ACR is the least level, "aal2" for a second factor; "" asks for none.
	ACR string
	// MaxAge is the longest time since the user authenticated (auth_time); 0 asks for none.
	MaxAge time.Duration
	// Now is the clock MaxAge is measured by; nil is time.Now.
	Now func() time.Time
}

// AAL2 is the assurance of a second factor used within maxAge (0: at any time).
func AAL2(maxAge time.Duration) Assurance { return Assurance{ACR: "aal2", MaxAge: maxAge} }

// MeetsACR reports whether the token's acr is level or above ("aal2" meets "aal1"). Levels
// that are not "aal<n>" only meet themselves.
func (c *Claims) MeetsACR(level string) bool {
	if level == "" || c.ACR == level {
		return true
	}
	have, ok1 := aalLevel(c.ACR)
	want, ok2 := aalLevel(level)
	return ok1 && ok2 && have >= want
}

// AuthenticatedWithin reports whether the user authenticated (auth_time) at most maxAge
// before now. A token without auth_time never is.
func (c *Claims) AuthenticatedWithin(maxAge time.Duration, now time.Time) bool {
	return !c.AuthTime.IsZero() && now.Sub(c.AuthTime) <= maxAge
}

// Satisfies reports whether the token meets a.
func (c *Claims) Satisfies(a Assurance) bool {
	if !c.MeetsACR(a.ACR) {
		return false
	}
	if a.MaxAge > 0 {
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		return c.AuthenticatedWithin(a.MaxAge, now())
	}
	return true
}

func aalLevel(acr string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(acr, "aal"))
	return n, err == nil && strings.HasPrefix(acr, "aal")
}

// Challenge is the WWW-Authenticate value of a refusal for a (RFC 9470 section 3): error
// insufficient_user_authentication with the acr_values and max_age the client should ask the
// user to meet, e.g. by authapi's POST /api/v1/auth/reauthenticate/.
func (a Assurance) Challenge() string {
	var b strings.Builder
	b.WriteString(`Bearer realm="api", error="insufficient_user_authentication", error_description="`)
	b.WriteString(a.description())
	b.WriteString(`"`)
	if a.ACR != "" {
		fmt.Fprintf(&b, `, acr_values="%s"`, a.ACR)
	}
	if a.MaxAge > 0 {
		fmt.Fprintf(&b, `, max_age=%d`, int64(a.MaxAge/time.Second))
	}
	return b.String()
}

func (a Assurance) description() string {
	switch {
	case a.ACR != "" && a.MaxAge > 0:
		return "a more recent authentication at " + a.ACR + " is required"
	case a.ACR != "":
		return "authentication at " + a.ACR + " is required"
	}
	return "a more recent authentication is required"
}

// RequireAssurance lets through requests whose claims (put there by Middleware) meet a; it
// answers others 401 with a's Challenge and an RFC 6750 error body. It goes inside
// Middleware: v.Middleware(verifier.RequireAssurance(verifier.AAL2(10*time.Minute), h)).
func RequireAssurance(a Assurance, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			writeError(w, http.StatusUnauthorized, "invalid_request", "bearer token required")
			return
		}
		if !c.Satisfies(a) {
			WriteInsufficientUserAuthentication(w, a)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteInsufficientUserAuthentication answers a request whose token does not meet a: 401,
// a's Challenge, and an RFC 6750 error body.
func WriteInsufficientUserAuthentication(w http.ResponseWriter, a Assurance) {
	w.Header().Set("WWW-Authenticate", a.Challenge())
	writeError(w, http.StatusUnauthorized, "insufficient_user_authentication", a.description())
}
