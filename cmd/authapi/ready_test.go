package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store/storetest"
)

// lockMigrations holds an exclusive lock on the migrations table of the PostgreSQL database
// dsn, so that a serve starting on it waits in its migrations, until the returned release.
func lockMigrations(t *testing.T, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	st, err := openStore(ctx, dsn) // the table exists once migrated
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	st.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE goose_db_version IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once bool
	release = func() {
		if once {
			return
		}
		once = true
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("release the migrations lock: %v", err)
		}
		conn.Close(ctx)
	}
	t.Cleanup(release)
	return release
}

// getError GETs url and decodes the Error body.
func getError(t *testing.T, url string) (*http.Response, client.Error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var e client.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp, e
}

// serve listens at once, answering /healthz 200 and /readyz (and the API) 503 until its
// migrations and keys are ready; stopped meanwhile, it exits 0. The migrations are held up by a
// lock on their table, which only PostgreSQL lets a test hold while serve reads it.
func TestServeNotReadyWhileStarting(t *testing.T) {
	t.Parallel()
	dsn := storetest.DSN(t, "postgres")
	waitLive := func(srv *serveRun) {
		srv.waitFor(t, "GET /healthz 200", func() bool {
			resp, err := http.Get("http://" + srv.addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	notReady := func(srv *serveRun) {
		t.Helper()
		base := "http://" + srv.addr
		for _, path := range []string{"/readyz", "/api/v1/"} {
			resp, e := getError(t, base+path)
			if resp.StatusCode != http.StatusServiceUnavailable || e.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("GET %s while migrating = %d %+v, Retry-After %q; want 503 unavailable with Retry-After",
					path, resp.StatusCode, e, resp.Header.Get("Retry-After"))
			}
		}
		if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving"}); ok {
			t.Errorf("serve logged \"serving\" while its migrations wait:\n%s", srv.stdout.String())
		}
	}

	release := lockMigrations(t, dsn)
	stopped := startServe(t, testEnv(), "--db", dsn)
	waitLive(stopped)
	notReady(stopped)
	if code := stopped.stop(t); code != 0 {
		t.Errorf("serve stopped while migrating: exit code %d, want 0; stderr:\n%s", code, stopped.stderr.String())
	}
	if _, ok := findLog(logLines(t, stopped.stdout.String()), map[string]any{"msg": "stopped while starting"}); !ok {
		t.Errorf("no \"stopped while starting\" log line:\n%s", stopped.stdout.String())
	}
	release()

	release = lockMigrations(t, dsn)
	srv := startServe(t, testEnv("AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword), "--db", dsn)
	waitLive(srv)
	notReady(srv)
	release()
	base := "http://" + srv.addr
	srv.waitHealthy(t, http.DefaultClient, base)
	mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword)
	if resp := mustGet(t, http.DefaultClient, base+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz once started = %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(srv.stdout.String(), `"msg":"serving"`) {
		t.Errorf("no \"serving\" log line once started:\n%s", srv.stdout.String())
	}
}
