package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestLockClassesDistinct reads locks.go, so that a class added there is checked too.
func TestLockClassesDistinct(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "locks.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			for i, name := range v.Names {
				lit, ok := v.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a literal", name.Name)
				}
				if other, dup := seen[lit.Value]; dup {
					t.Errorf("%s and %s share the advisory lock class %s", other, name.Name, lit.Value)
				}
				seen[lit.Value] = name.Name
			}
		}
	}
	if len(seen) < 6 {
		t.Fatalf("found %d classes in locks.go, want every class there", len(seen))
	}
}
