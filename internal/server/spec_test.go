package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
)

var (
	specRouterOnce sync.Once
	specRouter     routers.Router
	specRouterErr  error
)

// specChecker is an HTTP client that checks every response against the spec: a status
// code, header or body the spec does not describe for the operation fails the test. A 503
// unavailable, which the spec allows on any path while the database is unreachable, passes
// on operations that list no 503.
type specChecker struct {
	t testing.TB
}

func (c specChecker) Do(req *http.Request) (*http.Response, error) {
	specRouterOnce.Do(func() {
		spec, err := gen.GetSpec()
		if err != nil {
			specRouterErr = err
			return
		}
		spec.Servers = nil
		specRouter, specRouterErr = gorillamux.NewRouter(spec)
	})
	if specRouterErr != nil {
		c.t.Fatalf("spec router: %v", specRouterErr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		return resp, nil // not an operation of the spec: unknown path or method
	}
	if resp.StatusCode == http.StatusServiceUnavailable && route.Operation.Responses.Status(http.StatusServiceUnavailable) == nil {
		// The info description's rule for every path: 503 unavailable while the database is
		// unreachable.
		var e client.Error
		if err := json.Unmarshal(body, &e); err != nil || e.Code != client.ErrorCodeUnavailable || e.Detail == "" || resp.Header.Get("Retry-After") == "" {
			c.t.Errorf("%s %s -> 503: not the spec's unavailable answer (Error body, code unavailable, Retry-After): %v\nbody: %.300s",
				req.Method, req.URL.Path, err, body)
		}
		return resp, nil
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// Swagger UI's HTML and the YAML spec have no schema to check.
			ExcludeResponseBody: !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"),
		},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		c.t.Errorf("%s %s -> %d: response not described by the spec: %v\nbody: %.300s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}
