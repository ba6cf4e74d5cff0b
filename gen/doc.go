// Package gen is the server's side of the spec: the strict Echo server interface generated
// from openapi.yaml by oapi-codegen, and the spec itself, parsed. It pulls in Echo and
// kin-openapi. The wire models it speaks are gen/client's, which consumers import, so that each
// generated thing exists once. Only this file and server.cfg.yaml are written by hand; run
// `make gen` after changing the spec.
package gen

import (
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authapi/authapi"
)

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config server.cfg.yaml ../openapi.yaml

// SpecYAML is openapi.yaml exactly as written, for serving.
var SpecYAML = authapi.OpenAPIYAML

// GetSpec parses openapi.yaml, operationIds as written (obtainToken, not the generated method
// name ObtainToken). Each call returns a new document the caller may keep.
func GetSpec() (*openapi3.T, error) {
	return openapi3.NewLoader().LoadFromData(SpecYAML)
}
