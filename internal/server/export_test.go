package server

import (
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"
)

// Page bounds, for TestPageBounds.
const (
	DefaultPageSize = defaultPageSize
	MaxPageSize     = maxPageSize
)

// AddClientTokenRoute serves GET path as an operation whose spec security would be
// clientCredentials with scopes (as the SSF endpoints are): it answers the id of the client in
// the request's context. For the middleware's tests, before the server takes requests.
func AddClientTokenRoute(s *Server, path string, scopes ...string) {
	s.echo.GET(path, func(c echo.Context) error {
		p, ok := apiClientFromContext(c.Request().Context())
		if !ok {
			return c.String(500, "no client in the context")
		}
		return c.String(200, p.Client.ID)
	})
	s.ops[routeKey("GET", path)] = &operation{clientScopes: [][]string{scopes}, route: &routers.Route{Operation: &openapi3.Operation{}}}
}
