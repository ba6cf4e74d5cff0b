// Package echoverifier adapts the verifier's middleware to Echo v4.
package echoverifier

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/verifier"
)

// Middleware lets through only requests with a valid access token; the handler finds the
// claims with verifier.ClaimsFromContext(c.Request().Context()) or Claims(c). Refusals are
// answered as verifier.Middleware answers them.
func Middleware(v *verifier.Verifier) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var err error
			v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.SetRequest(r)
				err = next(c)
			})).ServeHTTP(c.Response(), c.Request())
			return err
		}
	}
}

// Claims returns the claims Middleware verified for this request.
func Claims(c echo.Context) (*verifier.Claims, bool) {
	return verifier.ClaimsFromContext(c.Request().Context())
}

// RequireAssurance lets through requests whose claims (put there by Middleware, which must
// run first) meet a, as verifier.RequireAssurance does, and answers others as it does: 401
// with RFC 9470's challenge.
func RequireAssurance(a verifier.Assurance) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var err error
			verifier.RequireAssurance(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				err = next(c)
			})).ServeHTTP(c.Response(), c.Request())
			return err
		}
	}
}
