package verifier

import (
	"os/exec"
	"strings"
	"testing"
)

// A resource server importing the verifier gets none of the server: no ORM, no web
// framework, no database driver, none of authapi's server-side packages.
func TestNoServerDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/authapi/authapi/verifier").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	forbidden := []string{"gorm.io/", "github.com/labstack/echo", "github.com/jackc/", "github.com/mattn/go-sqlite3", "github.com/lib/pq",
		"database/sql", "github.com/authapi/authapi/internal/server", "github.com/authapi/authapi/internal/store",
		"github.com/authapi/authapi/internal/auth", "github.com/authapi/authapi/gen"}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("verifier depends on %s", d)
			}
		}
		if strings.HasPrefix(d, "github.com/authapi/authapi/") && d != "github.com/authapi/authapi/verifier" && d != "github.com/authapi/authapi/internal/token" {
			t.Errorf("verifier depends on %s; only internal/token is allowed", d)
		}
	}
}
