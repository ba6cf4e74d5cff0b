package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/throttle"
)

// ipExtractor reads the client IP from the socket, or from X-Forwarded-For when the peer is
// a trusted proxy. Echo's own defaults would trust private networks; none are trusted here
// unless configured, so a spoofed header never changes whose limit a request counts against.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(prefixToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// throttledAnswer is the detail of a 429 refusing for detail, and its Retry-After in
// seconds: when to try again, wait from now.
func throttledAnswer(detail string, wait time.Duration) (string, int) {
	seconds := retryAfterSeconds(wait)
	return fmt.Sprintf("%s Try again in %d seconds.", detail, seconds), seconds
}

// limitRefreshes rate-limits the refresh endpoint per client IP (see limitPerIP): refreshes
// are cheap to attempt and must not become a way to grind through stolen tokens.
func (s *Server) limitRefreshes() echo.MiddlewareFunc {
	return s.limitPerIP("/api/v1/auth/token/refresh/", s.cfg.RefreshesPerIPPerMinute, "Too many token refreshes.",
		func() { s.metrics.Refresh(metrics.RefreshThrottled) })
}

// limitPasskeyBegins rate-limits the start of passkey logins per client IP (see limitPerIP):
// anyone may call it, and each call stores a ceremony.
func (s *Server) limitPasskeyBegins() echo.MiddlewareFunc {
	return s.limitPerIP("/api/v1/auth/passkey/begin/", s.cfg.PasskeyBeginsPerIPPerMinute, "Too many passkey logins begun.", nil)
}

// limitPerIP rate-limits POSTs to path to perMinute per client IP (an IPv6 client by its /64,
// see throttle.IPKey; -1: no limit), in memory and for at most throttle.MaxRateKeys IPs; a
// refusal is 429 throttled with Retry-After, after denied (when given).
func (s *Server) limitPerIP(path string, perMinute int, detail string, denied func()) echo.MiddlewareFunc {
	if perMinute < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	limit := rate.Limit(float64(perMinute) / 60)
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Skipper: func(c echo.Context) bool {
			return c.Request().Method != http.MethodPost || c.Path() != path
		},
		Store:               throttle.NewRate(limit, perMinute, throttle.MaxRateKeys, s.now),
		IdentifierExtractor: func(c echo.Context) (string, error) { return throttle.IPKey(c.RealIP()), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			if denied != nil {
				denied()
			}
			wait := time.Duration(float64(time.Second) / float64(limit))
			detail, seconds := throttledAnswer(detail, wait)
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(seconds))
			return c.JSON(http.StatusTooManyRequests, client.Error{Code: client.ErrorCodeThrottled, Detail: detail})
		},
	})
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
