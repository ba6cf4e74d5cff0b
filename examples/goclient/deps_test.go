package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestConsumerPullsInNoServer guards what a consumer of the Go client downloads and links: the
// example and gen/client must not depend on Echo, kin-openapi, or the server side of authapi
// (the server package or the strict server in gen).
func TestConsumerPullsInNoServer(t *testing.T) {
	module := goList(t, "-m")
	forbidden := func(pkg string) bool {
		return strings.HasPrefix(pkg, "github.com/labstack/echo") ||
			strings.HasPrefix(pkg, "github.com/getkin/kin-openapi") ||
			pkg == module+"/server" || strings.HasPrefix(pkg, module+"/server/") ||
			pkg == module+"/gen"
	}
	for _, pkg := range []string{".", "../../gen/client"} {
		deps := strings.Fields(goList(t, "-deps", pkg))
		if len(deps) == 0 {
			t.Fatalf("go list -deps %s listed nothing", pkg)
		}
		for _, dep := range deps {
			if forbidden(dep) {
				t.Errorf("%s depends on %s: a client consumer must not pull in the server side", pkg, dep)
			}
		}
	}
}

func goList(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}
