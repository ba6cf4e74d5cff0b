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
	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
)

// specValidator checks every request of a spec operation against the spec (parameters,
// body types, formats, lengths, patterns, enums, unknown properties) before a handler runs,
// and answers the spec's Error body with fields when it does not conform.
//
// Echo has already matched the route, so the operation is looked up by the method and the
// route Echo matched (as enforceRoute does), not found again by a second router.
type specValidator struct{ ops map[routeID]*operation }

// validateOptions are the same for every request but for ExcludeRequestBody: an empty body
// goes to the handler, which names each missing field.
var validateOptions = [2]openapi3filter.Options{
	{
		AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc, // enforceRoute authenticates
		MultiError:                 true,
		ExcludeReadOnlyValidations: true, // read-only fields in input are ignored, not refused
	},
	{
		AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc,
		MultiError:                 true,
		ExcludeReadOnlyValidations: true,
		ExcludeRequestBody:         true,
	},
}

func (v specValidator) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		op, ok := v.ops[routeKey(req.Method, c.Path())]
		if !ok {
			return next(c) // not a spec operation: docs, or Echo's own 404 and 405
		}
		body := op.route.Operation.RequestBody != nil && hasBody(req)
		if body && op.anyForm {
			ok, err := wellFormedForm(req)
			if err != nil {
				return err
			}
			body = !ok // a malformed one goes to the validator, which says what is wrong
		}
		if !op.check && !body {
			return next(c) // nothing to validate
		}
		var params map[string]string
		if names := c.ParamNames(); len(names) > 0 {
			values := c.ParamValues()
			params = make(map[string]string, len(names))
			for i, name := range names {
				if i < len(values) {
					params[name] = values[i]
				}
			}
		}
		opts := &validateOptions[0]
		if !body {
			opts = &validateOptions[1]
		}
		err := openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: op.route, Options: opts,
		})
		if err != nil {
			if fields, inBody, whole := invalidFields(err); op.handlerMerges && whole == nil && inBody {
				// The handler adds what it finds in the other fields, so that every invalid
				// field is reported at once, and answers 400 itself.
				c.SetRequest(req.WithContext(withSpecFieldErrors(req.Context(), fields)))
				return next(c)
			}
			return validationError(err)
		}
		return next(c)
	}
}

// validationError renders what openapi3filter found as the spec's Error body.
func validationError(err error) error {
	fields, _, whole := invalidFields(err)
	switch {
	case whole != nil:
		return whole
	case len(fields) == 0:
		return &apiError{Status: http.StatusBadRequest, Code: client.ErrorCodeInvalid, Detail: sentence(err.Error())}
	}
	return errInvalid(fields)
}

// invalidFields sorts what openapi3filter found into messages per field. When the request
// fails as a whole instead (a body too large or not parsable, a path id no resource has), it
// returns that error. inBody tells whether every field at fault is a member of the JSON body.
func invalidFields(err error) (fields map[string][]string, inBody bool, whole error) {
	var tooLarge *echo.HTTPError
	if errors.As(err, &tooLarge) {
		return nil, false, tooLarge
	}
	fields = map[string][]string{}
	inBody = true
	var parse *openapi3filter.ParseError
	for _, e := range flatten(err) {
		var reqErr *openapi3filter.RequestError
		if !errors.As(e, &reqErr) {
			inBody = false
			continue
		}
		if p := reqErr.Parameter; p != nil && p.In == openapi3.ParameterInPath && isInteger(p.Schema) {
			// As the demo's <int:id> routes: no user (or other resource) has such an id.
			return nil, false, &apiError{Status: http.StatusNotFound, Code: client.ErrorCodeNotFound, Detail: msgNotFound}
		}
		if reqErr.Parameter != nil {
			inBody = false
		}
		if errors.As(reqErr.Err, &parse) {
			if reqErr.Parameter == nil {
				return nil, false, parseError(parse.Error())
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
				inBody = false // the body as a whole, not one of its members
			}
			if slices.Contains(fields[name], msgBlank) {
				continue // a blank value fails its pattern too; the first message says it all
			}
			fields[name] = append(fields[name], msg)
		}
		if len(schemaErrs) == 0 && reqErr.Parameter != nil {
			fields[reqErr.Parameter.Name] = append(fields[reqErr.Parameter.Name], sentence(reqErr.Reason))
		}
		if len(schemaErrs) == 0 && reqErr.Parameter == nil {
			inBody = false
		}
	}
	return fields, inBody && len(fields) > 0, nil
}

// parameterParseMessage says what a parameter that did not parse should be, in Django's words
// for integers, without echoing the parser's internals.
func parameterParseMessage(p *openapi3.Parameter) string {
	switch {
	case isInteger(p.Schema):
		return "A valid integer is required."
	case p.Schema != nil && p.Schema.Value != nil && p.Schema.Value.Type.Is("boolean"):
		return "Must be a valid boolean."
	}
	return "Invalid value."
}

func isInteger(s *openapi3.SchemaRef) bool {
	return s != nil && s.Value != nil && s.Value.Type.Is("integer")
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
			return name, mustBe(e.Schema.Type.Slice()[0])
		}
	case "minLength":
		if e.Schema != nil && e.Schema.MinLength == 1 {
			return name, msgBlank
		}
	case "maxLength":
		if e.Schema != nil && e.Schema.MaxLength != nil {
			return name, fmt.Sprintf("Ensure this field has no more than %d characters.", *e.Schema.MaxLength)
		}
	case "enum":
		return name, fmt.Sprintf("%q is not a valid choice.", fmt.Sprint(e.Value))
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
