package server

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"authapi/gen"
	"authapi/store"
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

// throttled is the 429 body and its Retry-After.
func throttled(detail string, wait time.Duration) gen.ThrottledJSONResponse {
	seconds := max(1, int(math.Ceil(wait.Seconds())))
	return gen.ThrottledJSONResponse{
		Body:    gen.Error{Code: "throttled", Detail: fmt.Sprintf("%s Try again in %d seconds.", detail, seconds)},
		Headers: gen.ThrottledResponseHeaders{RetryAfter: seconds},
	}
}

// loginThrottle reports how long the account or the IP must wait before another login
// attempt, or zero. It counts failures within the window, per account and per IP.
func (s *Server) loginThrottle(ctx context.Context, account, ip string) (time.Duration, error) {
	now := s.now()
	since := now.Add(-s.cfg.LoginFailureWindow)
	var wait time.Duration
	for _, c := range []struct {
		scope, key string
		limit      int
	}{{store.ScopeAccount, account, s.cfg.LoginFailuresPerAccount}, {store.ScopeIP, ip, s.cfg.LoginFailuresPerIP}} {
		if c.limit < 0 {
			continue
		}
		recent, err := s.store.LoginFailures(ctx, c.scope, c.key, since, c.limit)
		if err != nil {
			return 0, err
		}
		if len(recent) == c.limit {
			// Allowed again once fewer than limit failures are left in the window: when the
			// limit-th most recent one leaves it.
			wait = max(wait, recent[c.limit-1].Add(s.cfg.LoginFailureWindow).Sub(now))
		}
	}
	return wait, nil
}

// accountKey is the throttling key of a username: the same for every spelling that names
// the same account, known or not.
func accountKey(username string) string { return strings.ToLower(cleanText(username)) }

// limitRefreshes rate-limits the refresh endpoint per client IP, in memory: refreshes are
// cheap to attempt and must not become a way to grind through stolen tokens.
func (s *Server) limitRefreshes() echo.MiddlewareFunc {
	perMinute := s.cfg.RefreshesPerIPPerMinute
	if perMinute < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	limit := rate.Limit(float64(perMinute) / 60)
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Skipper: func(c echo.Context) bool {
			return c.Request().Method != http.MethodPost || c.Path() != "/api/v1/auth/token/refresh/"
		},
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: limit, Burst: perMinute, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			wait := time.Duration(float64(time.Second) / float64(limit))
			body := throttled("Too many token refreshes.", wait)
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(body.Headers.RetryAfter))
			return c.JSON(http.StatusTooManyRequests, body.Body)
		},
	})
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
