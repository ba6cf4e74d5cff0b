//go:build tools

// This file pins the versions of the code generator, the linter and the mail server of the
// end-to-end tests (mailpit, built by .ci/run and the Makefile) the Makefile runs; the build tag
// keeps it out of every build. It shares the root package's name, which holds the spec.
package authapi

import (
	_ "github.com/axllent/mailpit"
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
