package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/testbin"
)

// serve warns of a database file others can read, and refuses one they can write.
func TestServeChecksDatabaseFileMode(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "authapi.db")
	openTestStore(t, db).Close()

	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, testEnv(), "--db", db)
	srv.waitHealthy(t, http.DefaultClient, "http://"+srv.addr)
	var warned bool
	for _, l := range logLines(t, srv.stdout.String()) {
		msg, _ := l["msg"].(string)
		warned = warned || l["level"] == "WARN" && strings.Contains(msg, db+" has mode 0644") && strings.Contains(msg, "chmod 600 "+db)
	}
	if !warned {
		t.Errorf("serve on a 0644 database logged no warning naming it:\n%s", srv.stdout.String())
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exit code = %d; stderr:\n%s", code, srv.stderr.String())
	}

	if err := os.Chmod(db, 0o666); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, testEnv(), "", "serve", "--addr", testbin.FreeAddr(t), "--db", db)
	if r.code != 1 || !strings.Contains(r.stderr, "refusing "+db+": mode 0666") || !strings.Contains(r.stderr, "chmod 600 "+db) {
		t.Errorf("serve on a 0666 database: exit %d, stderr %q; want 1 and the refusal", r.code, r.stderr)
	}
}
