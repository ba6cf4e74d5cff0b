package server

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/authapi/authapi/gen"
)

// route is what the spec says about one operation that middleware must enforce before the
// generated handler decodes anything: who may call it and which body media types it takes.
type route struct {
	public     bool
	permission permission
	mediaTypes []string
}

type permission string

// The permissions an operation may name; without one, any authenticated user may call it.
const (
	staff     permission = "staff"
	superuser permission = "superuser"
)

// routeTable reads the embedded spec, keyed by method and Echo path (GET, "/api/v1/account/management/:id/").
// Reading it from the spec keeps the spec the only place that says which operations are public.
func routeTable() (map[routeID]route, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	globalSecured := len(spec.Security) > 0
	table := map[routeID]route{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			r := route{public: !globalSecured}
			if op.Security != nil {
				r.public = len(*op.Security) == 0
			}
			if v, ok := op.Extensions["x-authapi-permission"]; ok {
				p, _ := v.(string)
				switch permission(p) {
				case staff, superuser:
					r.permission = permission(p)
				default:
					return nil, fmt.Errorf("%s %s: unknown x-authapi-permission %q", method, path, p)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for mt := range op.RequestBody.Value.Content {
					r.mediaTypes = append(r.mediaTypes, mt)
				}
			}
			table[routeKey(method, echoPath(path))] = r
		}
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
