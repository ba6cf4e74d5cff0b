// Package server is authapi's HTTP adapter: it implements the generated strict server
// interface over the store and the token manager, and renders every error in the spec's
// Error schema.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"authapi/gen"
	"authapi/password"
	"authapi/store"
	"authapi/token"
)

// Config holds the server's settings. cmd/authapi builds it from flags and the environment.
type Config struct {
	APIName              string        // the welcome message's "name"
	AccessTokenLifetime  time.Duration // default 15 minutes
	RefreshTokenLifetime time.Duration // default 1 hour; also the session's lifetime
	Now                  func() time.Time
	Logger               *slog.Logger
}

// MaxBodyBytes is the largest request body accepted; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Server serves the API. It is an http.Handler.
type Server struct {
	cfg    Config
	store  *store.Store
	tokens *token.Manager
	hasher *password.Hasher
	log    *slog.Logger
	routes map[string]route
	echo   *echo.Echo
}

var _ gen.StrictServerInterface = (*handlers)(nil)

// handlers implements the generated strict interface; it is the Server seen from the spec.
type handlers struct{ *Server }

// New builds the API over st, signing and verifying with tokens and hashing with hasher.
func New(cfg Config, st *store.Store, tokens *token.Manager, hasher *password.Hasher) (*Server, error) {
	if cfg.APIName == "" {
		cfg.APIName = "My Awesome API"
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = 15 * time.Minute
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	routes, err := routeTable()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, tokens: tokens, hasher: hasher, log: cfg.Logger, routes: routes}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Binder = jsonBinder{}
	e.IPExtractor = echo.ExtractIPDirect() // never trust client-sent X-Forwarded-For
	e.Use(requestLogger(s.log))
	e.Use(middleware.Recover())
	e.Use(securityHeaders)
	e.Use(middleware.BodyLimit(fmt.Sprint(MaxBodyBytes/1024, "K")))
	e.Use(s.enforceRoute)

	gen.RegisterHandlers(e, gen.NewStrictHandler(handlers{s}, nil))
	if err := registerDocs(e, cfg.APIName); err != nil {
		return nil, err
	}
	s.echo = e
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }
