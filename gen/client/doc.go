// Package client is what a Go consumer of authapi imports: the wire models and a typed client,
// generated from openapi.yaml by oapi-codegen. It depends on no web framework and nothing of
// the server (a test in examples/goclient proves it). The server's package gen speaks these
// same models, and the server's tests call it through this client. Only this file and the
// *.cfg.yaml files are written by hand; run `make gen` after changing the spec.
package client

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config types.cfg.yaml ../../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config client.cfg.yaml ../../openapi.yaml
