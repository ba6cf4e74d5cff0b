package server

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/routers"

	"github.com/authapi/authapi/gen"
)

// operation is what the spec says about one operation, read once from the embedded spec
// for the middleware that acts before the generated handler decodes anything: who may call
// it and which body media types it takes (enforceRoute), and how to validate the request
// (specValidator).
type operation struct {
	public     bool // no security requirement at all
	permission permission
	mediaTypes []string
	// stepUp: the operation is sensitive (x-step-up): a caller with a second factor needs a
	// recent aal2 authentication (auth.Service.StepUpNeeded). enrolment: the operation is one
	// a caller held to second-factor enrolment may use (x-mfa-enrolment). addsFactor: the
	// operation adds a second factor (x-adds-factor): a caller without one needs a recent
	// authentication too.
	stepUp, enrolment, addsFactor bool

	// user: a user's access token (bearerAuth) is accepted. clientScopes: a client token
	// (clientCredentials) carrying all the scopes of one of these requirements is (the spec's
	// alternatives: ssf.read or ssf.manage). clientSecret: the handler authenticates a
	// client by its secret (clientSecretBasic, or client_secret_post in the body), and
	// answers OAuth errors. optional: the requirements may all be unmet ({}), and the
	// handler decides.
	user         bool
	clientScopes [][]string
	clientSecret bool
	optional     bool

	route *routers.Route // for openapi3filter
	// check is false when the operation declares no parameters: then only a body can be
	// wrong, and only when the operation takes one and the request has one.
	check bool
	// handlerMerges is true when the handler checks the body's fields further and reports
	// its findings together with the spec's (see handlerMergesFields).
	handlerMerges bool
	// anyForm is true when every well-formed form conforms to the body (see
	// anyFormConforms): a form body is then only checked to be well-formed.
	anyForm bool
}

type permission string

// The security schemes of the spec.
const (
	schemeBearer            = "bearerAuth"
	schemeClientCredentials = "clientCredentials"
	schemeClientSecret      = "clientSecretBasic"
)

// The permissions an operation may name; without one, any authenticated user may call it.
const (
	staff     permission = "staff"
	superuser permission = "superuser"
)

// handlerMergesFields names the operations (by operationId) whose handlers take the
// body's invalid members from specFieldErrors, check the other members themselves, and answer
// 400 with all of them, as the demo's serializers did. The binder then decodes what it can.
var handlerMergesFields = map[string]bool{"createUser": true, "updateUser": true, "partialUpdateUser": true, "signUp": true}

// operationTable reads the embedded spec, keyed by method and Echo path (GET,
// "/api/v1/account/management/:id/"). Reading it from the spec keeps the spec the only place
// that says which operations are public, who may call them and what they take.
func operationTable() (map[routeID]*operation, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	globalSecured := len(spec.Security) > 0
	table := map[routeID]*operation{}
	merging := 0
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			o := &operation{
				public:        !globalSecured,
				route:         &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op},
				check:         len(item.Parameters) > 0 || len(op.Parameters) > 0,
				handlerMerges: handlerMergesFields[op.OperationID],
				anyForm:       anyFormConforms(op),
			}
			if o.handlerMerges {
				merging++
			}
			reqs := spec.Security
			if op.Security != nil {
				reqs = *op.Security
				o.public = len(reqs) == 0
			}
			for _, req := range reqs {
				if len(req) == 0 {
					o.optional = true
				}
				for name, scopes := range req {
					switch name {
					case schemeBearer:
						o.user = true
					case schemeClientCredentials:
						o.clientScopes = append(o.clientScopes, scopes)
					case schemeClientSecret:
						o.clientSecret = true
					default:
						return nil, fmt.Errorf("%s %s: unknown security scheme %q", method, path, name)
					}
				}
			}
			if v, ok := op.Extensions["x-authapi-permission"]; ok {
				p, _ := v.(string)
				switch permission(p) {
				case staff, superuser:
					o.permission = permission(p)
				default:
					return nil, fmt.Errorf("%s %s: unknown x-authapi-permission %q", method, path, p)
				}
			}
			for name, dst := range map[string]*bool{"x-step-up": &o.stepUp, "x-mfa-enrolment": &o.enrolment, "x-adds-factor": &o.addsFactor} {
				if v, ok := op.Extensions[name]; ok {
					b, isBool := v.(bool)
					if !isBool {
						return nil, fmt.Errorf("%s %s: %s must be true or false", method, path, name)
					}
					*dst = b
				}
			}
			if o.stepUp && !o.user {
				return nil, fmt.Errorf("%s %s: x-step-up on an operation without bearerAuth", method, path)
			}
			if o.addsFactor && !o.stepUp {
				return nil, fmt.Errorf("%s %s: x-adds-factor on an operation without x-step-up", method, path)
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for mt := range op.RequestBody.Value.Content {
					o.mediaTypes = append(o.mediaTypes, mt)
				}
			}
			table[routeKey(method, echoPath(path))] = o
		}
	}
	if merging != len(handlerMergesFields) { // a renamed operation would silently stop merging
		return nil, fmt.Errorf("handlerMergesFields names %d operations, the spec has %d of them", len(handlerMergesFields), merging)
	}
	return table, nil
}

// routeID names an operation by method and Echo path. A struct, not a joined string, so that
// looking one up costs no allocation on every request.
type routeID struct{ method, path string }

func routeKey(method, echoPath string) routeID { return routeID{strings.ToUpper(method), echoPath} }

// echoPath turns "/a/{id}/" into Echo's "/a/:id/".
func echoPath(specPath string) string { return pathParam.ReplaceAllString(specPath, ":$1") }

var pathParam = regexp.MustCompile(`\{([^}/]+)\}`)
