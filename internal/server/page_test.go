package server_test

import (
	"testing"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/server"
)

// TestPageBounds pins the bounds of limit written in three places equal: the spec's (what
// clients and the validator see), the server's (its own check and default) and the audit
// log's query.
func TestPageBounds(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/account/management/", "/api/v1/audit/"} {
		op := spec.Paths.Find(path).Get
		limit := op.Parameters.GetByInAndName("query", "limit")
		if limit == nil {
			t.Fatalf("GET %s has no limit parameter", path)
		}
		s := limit.Schema.Value
		maximum := -1.0 // none
		if s.Max != nil {
			maximum = *s.Max
		}
		if maximum != float64(server.MaxPageSize) || s.Default != float64(server.DefaultPageSize) {
			t.Errorf("GET %s limit: maximum %v, default %v; the server's are %d and %d", path, maximum, s.Default, server.MaxPageSize, server.DefaultPageSize)
		}
	}
	if audit.MaxLimit != server.MaxPageSize || audit.DefaultLimit != server.DefaultPageSize {
		t.Errorf("audit.Query's bounds %d and %d, the server's %d and %d", audit.MaxLimit, audit.DefaultLimit, server.MaxPageSize, server.DefaultPageSize)
	}
}
