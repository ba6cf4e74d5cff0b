package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
)

// serveBare is the reference: a bare Echo v4 handler that answers every request with the
// welcome JSON authapi's GET /api/v1/ returns, with no middleware, database or token check.
func serveBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("authapi-load bare", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8001", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	welcome := client.Welcome{ApiVersion: "v1", Message: "Welcome!", Name: "My Awesome API"}
	e.Any("/*", func(c echo.Context) error { return c.JSON(http.StatusOK, welcome) })
	e.Server.ReadHeaderTimeout = 10 * time.Second

	served := make(chan error, 1)
	go func() { served <- e.Start(*addr) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
