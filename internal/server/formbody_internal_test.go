package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// TestAnyFormConformsPinnedToTheValidator: the operations whose (non-empty) form bodies are
// only checked to be well-formed are the OAuth ones, whose members are unconstrained strings;
// for each, the spec validator accepts every body wellFormedForm accepts (members known,
// unknown, empty, escaped, repeated, long), and wellFormedForm refuses malformed ones, which
// the validator then sees.
func TestAnyFormConformsPinnedToTheValidator(t *testing.T) {
	ops, err := operationTable()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, op := range ops {
		if !op.anyForm {
			continue
		}
		names = append(names, op.route.Operation.OperationID)
		for _, body := range []string{
			"token=a.b.c", "token=", "token", "token=a&unknown=b", "token=%E2%82%AC+x&token_type_hint=refresh_token",
			"client_id=ac_1&client_secret=s&token=t", "=x", "&&token=a&", "token=a&token=b", strings.Repeat("x", 5000) + "=1",
		} {
			req, _ := http.NewRequest(op.route.Method, "http://localhost"+op.route.Path, strings.NewReader(body))
			req.Header.Set("Content-Type", formMediaType)
			if ok, err := wellFormedForm(req); err != nil || !ok {
				t.Fatalf("%s: %q not well-formed: %v", names[len(names)-1], body, err)
			}
			err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: req, Route: op.route, Options: &validateOptions[0],
			})
			if err != nil {
				t.Errorf("%s: the validator refuses %q, which skips it: %v", names[len(names)-1], body, err)
			}
		}
	}
	slices.Sort(names)
	if want := []string{"oauthIntrospect", "oauthRevoke", "oauthToken"}; !slices.Equal(names, want) {
		t.Errorf("operations whose forms are only checked to be well-formed: %v, want %v", names, want)
	}
	for _, body := range []string{"token=%zz", "token=%4", "a=1;b=2", "to%kn=1"} {
		req, _ := http.NewRequest(http.MethodPost, "http://localhost/", strings.NewReader(body))
		req.Header.Set("Content-Type", formMediaType)
		if ok, _ := wellFormedForm(req); ok {
			t.Errorf("%q counted well-formed", body)
		}
	}
}

// TestAnyFormConformsRefusesConstraints: any constraint on the form or a member keeps the
// full validation.
func TestAnyFormConformsRefusesConstraints(t *testing.T) {
	const plain = `{"type":"object","description":"d","properties":{"token":{"type":"string","description":"d","x-order":1}}}`
	for schema, want := range map[string]bool{
		plain: true,
		`{"type":"object","required":["token"],"properties":{"token":{"type":"string"}}}`:         false,
		`{"type":"object","additionalProperties":false,"properties":{"token":{"type":"string"}}}`: false,
		`{"type":"object","properties":{"token":{"type":"string","maxLength":10}}}`:               false,
		`{"type":"object","properties":{"token":{"type":"string","enum":["a"]}}}`:                 false,
		`{"type":"object","properties":{"token":{"type":"string","pattern":"^a$"}}}`:              false,
		`{"type":"object","properties":{"token":{"type":"string","format":"email"}}}`:             false,
		`{"type":"object","properties":{"n":{"type":"integer"}}}`:                                 false,
		`{"type":"object","properties":{"token":{"type":"array","items":{"type":"string"}}}}`:     false,
	} {
		var s openapi3.Schema
		if err := json.Unmarshal([]byte(schema), &s); err != nil {
			t.Fatal(err)
		}
		op := &openapi3.Operation{RequestBody: &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().
			WithContent(openapi3.NewContentWithSchema(&s, []string{formMediaType}))}}
		if got := anyFormConforms(op); got != want {
			t.Errorf("%s: %v, want %v", schema, got, want)
		}
	}
}
