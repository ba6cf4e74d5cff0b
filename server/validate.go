package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"

	"authapi/gen"
)

// specValidator checks every request of a spec operation against the spec (parameters,
// body types, formats, lengths, patterns, enums, unknown properties) before a handler runs,
// and answers the spec's Error body with fields when it does not conform.
type specValidator struct{ router routers.Router }

func newSpecValidator() (*specValidator, error) {
	spec, err := gen.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	spec.Servers = nil // match any host: the server does not know the name it is reached by
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("spec router: %w", err)
	}
	return &specValidator{router: router}, nil
}

func (v *specValidator) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		route, params, err := v.router.FindRoute(req)
		if err != nil {
			return next(c) // not a spec operation: docs, or Echo's own 404 and 405
		}
		err = openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc, // enforceRoute authenticates
				MultiError:                 true,
				ExcludeReadOnlyValidations: true, // read-only fields in input are ignored, not refused
				// An empty body goes to the handler, which names each missing field.
				ExcludeRequestBody: !hasBody(req),
			},
		})
		if err != nil {
			return validationError(err)
		}
		return next(c)
	}
}

// validationError renders what openapi3filter found as the spec's Error body.
func validationError(err error) error {
	var tooLarge *echo.HTTPError
	if errors.As(err, &tooLarge) {
		return tooLarge
	}
	fields := map[string][]string{}
	var parse *openapi3filter.ParseError
	for _, e := range flatten(err) {
		var reqErr *openapi3filter.RequestError
		if !errors.As(e, &reqErr) {
			continue
		}
		if errors.As(reqErr.Err, &parse) {
			if reqErr.Parameter == nil {
				return parseError(parse.Error())
			}
			fields[reqErr.Parameter.Name] = append(fields[reqErr.Parameter.Name], parameterParseMessage(reqErr.Parameter))
			continue
		}
		schemaErrs := flatten(reqErr.Err)
		for _, se := range schemaErrs {
			var schemaErr *openapi3.SchemaError
			name, msg := "", ""
			if errors.As(se, &schemaErr) {
				name, msg = schemaErrorField(schemaErr)
			} else {
				msg = sentence(se.Error())
			}
			if reqErr.Parameter != nil {
				name = reqErr.Parameter.Name
				if schemaErr == nil && errors.Is(se, openapi3filter.ErrInvalidRequired) {
					msg = msgRequired
				}
			}
			if name == "" {
				name = "body"
			}
			if slices.Contains(fields[name], msgBlank) {
				continue // a blank value fails its pattern too; the first message says it all
			}
			fields[name] = append(fields[name], msg)
		}
		if len(schemaErrs) == 0 && reqErr.Parameter != nil {
			fields[reqErr.Parameter.Name] = append(fields[reqErr.Parameter.Name], sentence(reqErr.Reason))
		}
	}
	if len(fields) == 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid", Detail: sentence(err.Error())}
	}
	return errInvalid(fields)
}

// parameterParseMessage says what a parameter that did not parse should be, in Django's words
// for integers, without echoing the parser's internals.
func parameterParseMessage(p *openapi3.Parameter) string {
	if p.Schema != nil && p.Schema.Value != nil && p.Schema.Value.Type.Is("integer") {
		return "A valid integer is required."
	}
	return "Invalid value."
}

// flatten unpacks openapi3.MultiError trees into their leaves. Only a MultiError itself is
// split, not one wrapped inside another error (errors.As would reach through a RequestError).
func flatten(err error) []error {
	multi, ok := err.(openapi3.MultiError)
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range multi {
		out = append(out, flatten(e)...)
	}
	return out
}

var quotedProperty = regexp.MustCompile(`property "([^"]+)"`)

// schemaErrorField names the field at fault and says what is wrong in the demo's words
// where it had them.
func schemaErrorField(e *openapi3.SchemaError) (string, string) {
	name := strings.Join(e.JSONPointer(), ".")
	if m := quotedProperty.FindStringSubmatch(e.Reason); m != nil && name == "" {
		name = m[1] // the pointer names the object; the reason names the property
	}
	switch {
	case strings.HasSuffix(e.Reason, "is missing"):
		return name, msgRequired
	case strings.HasSuffix(e.Reason, "is unsupported"):
		return name, "Unknown field."
	}
	switch e.SchemaField {
	case "type":
		if e.Schema != nil && e.Schema.Type != nil && len(e.Schema.Type.Slice()) == 1 {
			return name, fmt.Sprintf("Must be a %s.", e.Schema.Type.Slice()[0])
		}
	case "minLength":
		if e.Schema != nil && e.Schema.MinLength == 1 {
			return name, msgBlank
		}
	case "maxLength":
		if e.Schema != nil && e.Schema.MaxLength != nil {
			return name, fmt.Sprintf("Ensure this field has no more than %d characters.", *e.Schema.MaxLength)
		}
	case "pattern":
		if name == "username" {
			return name, "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
		}
	}
	return name, sentence(e.Reason)
}

// sentence capitalises a library message and ends it with a period.
func sentence(s string) string {
	if s == "" {
		return msgInvalid
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
