// Package client is what a Go consumer of authapi imports: the wire models and a typed client,
// generated from openapi.yaml by oapi-codegen. It depends on no web framework and nothing of
// the server (a test in examples/goclient proves it). Only this file and the *.cfg.yaml files
// are written by hand; run `make gen` after changing the spec.
//
// The server's package gen holds its own copy of the models: its strict server refers to them
// unqualified, and server/ and its tests use them as gen.X in hundreds of places.
package client

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config types.cfg.yaml ../../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config client.cfg.yaml ../../openapi.yaml
