// Package authapi holds the contract of the API, openapi.yaml, embedded as written: the server
// serves it and checks every request against it, and a consumer may read it too.
package authapi

import _ "embed"

// OpenAPIYAML is openapi.yaml exactly as written. It is the one embedded copy of the spec.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
