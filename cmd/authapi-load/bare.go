package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/verifier"
	"github.com/authapi/authapi/verifier/echoverifier"
)

// clientSecretEnv carries the API client's secret to a resource server the benchmark starts.
const clientSecretEnv = "AUTHAPI_LOAD_CLIENT_SECRET"

// serveBare is the reference: a bare Echo v4 handler that answers every request with the
// welcome JSON authapi's GET /api/v1/ returns, with no middleware, database or token check.
// With -verify-issuer it is a resource server instead: the same handler behind the verifier
// package's Echo middleware, following the issuer's revocation stream when given a client.
func serveBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("authapi-load bare", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8001", "address to listen on")
	issuer := fs.String("verify-issuer", "", "verify bearer tokens of this issuer with the verifier package")
	clientID := fs.String("client-id", "", "with -verify-issuer: the API client that follows the revocation stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	welcome := client.Welcome{ApiVersion: "v1", Message: "Welcome!", Name: "My Awesome API"}
	handler := func(c echo.Context) error { return c.JSON(http.StatusOK, welcome) }
	if *issuer == "" {
		e.Any("/*", handler)
	} else {
		v, err := verifier.New(ctx, verifier.Config{
			Issuer: *issuer, Audience: []string{*issuer},
			// The secret comes through the environment, out of ps(1).
			ClientID: *clientID, ClientSecret: os.Getenv(clientSecretEnv),
			StreamName: "authapi-load " + *addr,
		})
		if err != nil {
			return err
		}
		defer v.Close()
		// Ready once the stream is live, so that no run measures the introspection fallback.
		e.GET("/readyz", func(c echo.Context) error {
			if h := v.Health(); h.Stale {
				return c.String(http.StatusServiceUnavailable, fmt.Sprint("stream not live: ", h.LastError))
			}
			return c.NoContent(http.StatusOK)
		})
		e.Any("/*", handler, echoverifier.Middleware(v))
	}
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
