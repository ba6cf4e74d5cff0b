// Package gen is generated from openapi.yaml by oapi-codegen: the wire models, the strict Echo
// server interface, a Go client and the embedded spec; gen/ts holds the TypeScript client.
// It is the server's side and pulls in Echo and kin-openapi: consumers import gen/client, which
// has the same models and client without them. The models are generated into both packages
// (kept in sync by `make check-gen`) so that the strict server and the server's code and tests
// keep referring to them as gen.X.
// Only this file and the *.cfg.yaml files are written by hand; run `make gen` after changing
// the spec.
package gen

import _ "embed"

//go:generate cp ../openapi.yaml openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config types.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config server.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config client.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config spec.cfg.yaml ../openapi.yaml

// SpecYAML is openapi.yaml exactly as written (copied here by `make gen`), for serving: the
// spec GetSwagger returns has its operationIds rewritten by the generator.
//
//go:embed openapi.yaml
var SpecYAML []byte
