package server_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestNoLiteralErrorCodes fails on an error code written as a string literal in the server's
// code: the generated client.ErrorCode constants are the only vocabulary, so that a code the
// spec does not list cannot reach the wire.
func TestNoLiteralErrorCodes(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	if len(parsed) == 0 {
		t.Fatal("no source files found")
	}
	for _, found := range literalErrorCodes(fset, parsed) {
		t.Errorf("%s: error code written as a string literal; use its client.ErrorCode constant", found)
	}
}

// TestLiteralErrorCodesFound checks that the check above finds each way of writing a code.
func TestLiteralErrorCodesFound(t *testing.T) {
	const src = `package server
func f(code client.ErrorCode, detail string) {}
func g() {
	_ = client.Error{Code: "busy"}
	_ = client.ErrorCode("busy")
	f("busy", "ok")
	var c client.ErrorCode = "busy"
	_ = c == "busy"
	_ = client.Error{Code: client.ErrorCodeBusy, Detail: "fine"}
	f(client.ErrorCodeBusy, "fine")
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "sample.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := literalErrorCodes(fset, []*ast.File{f})
	want := []string{"sample.go:4:25", "sample.go:5:23", "sample.go:6:4", "sample.go:7:27", "sample.go:8:11"}
	if !slices.Equal(got, want) {
		t.Errorf("found %q, want %q", got, want)
	}
}

// literalErrorCodes returns the positions of the string literals in files used where a
// client.ErrorCode is expected: a Code field in a composite literal, a conversion to
// client.ErrorCode, an argument of a function of the files for a client.ErrorCode parameter, the
// value of a client.ErrorCode variable or constant, a comparison with a Code field or a
// client.ErrorCode variable.
func literalErrorCodes(fset *token.FileSet, files []*ast.File) []string {
	isCodeType := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		pkg, ok := sel.X.(*ast.Ident)
		return ok && pkg.Name == "client" && sel.Sel.Name == "ErrorCode"
	}
	// The functions (and methods) of the files that take a client.ErrorCode, with the indexes of
	// those parameters, and the names declared with that type.
	codeParams := map[string][]int{}
	codeNames := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				i := 0
				for _, field := range n.Type.Params.List {
					names := max(len(field.Names), 1)
					if isCodeType(field.Type) {
						for k := range names {
							codeParams[n.Name.Name] = append(codeParams[n.Name.Name], i+k)
						}
						for _, name := range field.Names {
							codeNames[name.Name] = true
						}
					}
					i += names
				}
			case *ast.ValueSpec:
				if n.Type != nil && isCodeType(n.Type) {
					for _, name := range n.Names {
						codeNames[name.Name] = true
					}
				}
			}
			return true
		})
	}
	isCode := func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.Ident:
			return codeNames[e.Name]
		case *ast.SelectorExpr:
			return e.Sel.Name == "Code"
		}
		return false
	}
	var found []string
	flag := func(e ast.Expr) {
		if lit, ok := ast.Unparen(e).(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && v != "" {
				found = append(found, fset.Position(lit.Pos()).String())
			}
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if key, ok := n.Key.(*ast.Ident); ok && key.Name == "Code" {
					flag(n.Value)
				}
			case *ast.CallExpr:
				if isCodeType(n.Fun) {
					for _, arg := range n.Args {
						flag(arg)
					}
				}
				var name string
				switch fun := n.Fun.(type) {
				case *ast.Ident:
					name = fun.Name
				case *ast.SelectorExpr:
					name = fun.Sel.Name
				}
				for _, i := range codeParams[name] {
					if i < len(n.Args) {
						flag(n.Args[i])
					}
				}
			case *ast.ValueSpec:
				if n.Type != nil && isCodeType(n.Type) {
					for _, v := range n.Values {
						flag(v)
					}
				}
			case *ast.BinaryExpr:
				if n.Op == token.EQL || n.Op == token.NEQ {
					if isCode(n.X) {
						flag(n.Y)
					}
					if isCode(n.Y) {
						flag(n.X)
					}
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					if i < len(n.Rhs) && isCode(lhs) {
						flag(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return found
}
