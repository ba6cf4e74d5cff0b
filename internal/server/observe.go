package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
)

// HeaderRequestID carries a request's id: taken from a trusted proxy, or made here, and sent
// back on every response.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLength bounds an id taken from a proxy; a UUID is 36, a W3C traceparent 55.
const maxRequestIDLength = 128

// observe is the outermost middleware: it gives the request its id (in its context, its log
// lines and the response header), closes the connection after the answer while draining, and
// once the answer is written logs one line and records the request's metrics. It answers
// errors itself (as Echo's RequestLogger does) so the status it logs is the one sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		info := &requestInfo{id: s.requestID(req)}
		c.SetRequest(req.WithContext(withRequestInfo(req.Context(), info)))
		h := c.Response().Header()
		info.idHeader[0] = info.id
		h[HeaderRequestID] = info.idHeader[:] // no slice of its own per request
		if s.draining.Load() {
			// Clients reconnect, through the load balancer, to an instance that is not leaving.
			h[echo.HeaderConnection] = connectionClose
		}
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		res := c.Response()
		took := time.Since(start)
		// The id is added here rather than by requestLogHandler: a record grows its attributes
		// once, not twice.
		s.requestLog.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
			slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.Int("status", res.Status), slog.Float64("latency_ms", float64(took.Microseconds())/1000),
			slog.String("ip", c.RealIP()), slog.Int64("bytes", res.Size), slog.String("request_id", info.id))
		s.metrics.Request(req.Method, s.routeLabel(c.Path()), res.Status, took)
		return nil
	}
}

var connectionClose = []string{"close"}

// routeLabel is the route template a request matched, for metrics; "" (Unmatched) when it
// matched none. Echo names a partial match when nothing matched, which is no route.
func (s *Server) routeLabel(path string) string {
	if _, ok := s.knownPaths[path]; ok {
		return path
	}
	return ""
}

// requestID is the X-Request-ID a trusted proxy sent, if well formed, or a new one. Anyone
// else's is ignored: an id chosen by a client could be made to collide with another request's
// in the logs.
func (s *Server) requestID(r *http.Request) string {
	if len(s.cfg.TrustedProxies) > 0 {
		if id := r.Header.Get(HeaderRequestID); id != "" && validRequestID(id) && s.fromTrustedProxy(r) {
			return id
		}
	}
	return newRequestID(time.Now())
}

func (s *Server) fromTrustedProxy(r *http.Request) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(peer.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// validRequestID accepts what proxies send (UUIDs, ULIDs, hex, traceparent, base64) and
// nothing that could break a log line or a header: letters, digits and -_.:+/=@ only.
func validRequestID(id string) bool {
	if len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '-' || ch == '_' || ch == '.' || ch == ':' || ch == '+' || ch == '/' || ch == '=' || ch == '@':
		default:
			return false
		}
	}
	return true
}

// crockford is the ULID alphabet: Crockford's base32, without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newRequestID makes a ULID: 48 bits of milliseconds since the epoch, so ids sort by time,
// then 80 random bits, in 26 characters. The bits need to be unique, not secret.
func newRequestID(now time.Time) string {
	hi := uint64(now.UnixMilli())<<16 | rand.Uint64()>>48
	lo := rand.Uint64()
	var b [26]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// requestIDFromContext returns the id of the request ctx belongs to, or "".
func requestIDFromContext(ctx context.Context) string {
	if info, _ := ctx.Value(requestKey{}).(*requestInfo); info != nil {
		return info.id
	}
	return ""
}

// requestLogHandler adds the request id of a record's context to the record, so that every
// line logged with the request's context names its request.
type requestLogHandler struct{ slog.Handler }

func (h requestLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestLogHandler) WithGroup(name string) slog.Handler {
	return requestLogHandler{h.Handler.WithGroup(name)}
}

// Drain prepares the server to stop: /readyz answers 503 from now on, so that load balancers
// take it out of rotation, and every response closes its connection, so that keep-alive
// clients reconnect elsewhere. Requests are still served; the caller closes the listener after
// its drain delay.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.cfg.SSF.Drain() // long polls end now, not at the shutdown timeout
}

// Starting returns the handler that answers while the process starts (migrations, the first
// superuser, the signing keys), before New can be called: /healthz answers 200, since the
// process is alive, and every other request, /readyz included, 503 unavailable with
// Retry-After. Requests are logged and counted as by the server.
func Starting(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: slog.New(requestLogHandler{cfg.Logger.Handler()}), requestLog: cfg.Logger, metrics: cfg.Metrics}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.HTTPErrorHandler = func(_ error, c echo.Context) { _ = starting(c) }
	e.Pre(headAsGet)
	e.Use(s.observe)
	e.Use(securityHeaders)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, client.Health{Status: "ok"}) })
	e.Any("/*", starting)
	s.knownPaths = knownPaths(e)
	return e
}

func starting(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, "1")
	return c.JSON(http.StatusServiceUnavailable, client.Error{Code: client.ErrorCodeUnavailable, Detail: msgStarting})
}

// knownPaths are the route templates registered on e.
func knownPaths(e *echo.Echo) map[string]struct{} {
	paths := map[string]struct{}{}
	for _, r := range e.Routes() {
		paths[r.Path] = struct{}{}
	}
	return paths
}
