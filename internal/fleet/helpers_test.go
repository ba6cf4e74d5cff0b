package fleet_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver: create, inspect and drop the fleet's database

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/testbin"
)

// postgresEnv names the PostgreSQL server to run the fleet on (see store/storetest).
const postgresEnv = "AUTHAPI_TEST_POSTGRES_DSN"

// freshDatabase creates an empty database on the server of base, named after base's database,
// and drops it when t ends. It returns the new database's DSN and a small pool on it for the
// test's own checks.
func freshDatabase(t *testing.T, base string) (string, *sql.DB) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q", postgresEnv, base)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", postgresEnv, err)
	}
	admin.SetMaxOpenConns(1)
	t.Cleanup(func() { admin.Close() })
	prefix := regexp.MustCompile(`[^a-z0-9_]`).ReplaceAllString(strings.ToLower(strings.TrimPrefix(u.Path, "/")), "_")
	if prefix == "" {
		prefix = "authapi"
	}
	name := fmt.Sprintf("%.40s_fleet_%s", prefix, strings.ToLower(rand.Text()[:10]))
	if _, err := admin.Exec(`CREATE DATABASE "` + name + `"`); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends the connections of a process that the test could not stop.
		if _, err := admin.Exec(`DROP DATABASE "` + name + `" WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	dsn := u.String()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { db.Close() }) // registered after the drop, so it runs before it
	return dsn, db
}

// fleetPublicURL is the public URL (and issuer) every instance of a test fleet shares.
const fleetPublicURL = "http://fleet.authapi.test"

// instance is one "authapi serve" child process.
type instance struct {
	n              int // 1-based, as the test's messages name it
	url            string
	client         *client.ClientWithResponses
	cmd            *exec.Cmd
	exited         chan struct{}
	exitErr        error // set before exited is closed
	stdout, stderr testbin.Buffer
}

// startAll launches n "bin serve" processes with env, at the same moment as far as the
// machine allows, and waits until every one is ready (/readyz).
func startAll(t *testing.T, n int, bin string, env []string) []*instance {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = testbin.FreeAddr(t)
	}
	return startAt(t, bin, env, fleetPublicURL, addrs)
}

// startAt is startAll with one process listening on each of addrs (so that a restarted fleet
// answers where the old one did) behind the public URL publicURL.
func startAt(t *testing.T, bin string, env []string, publicURL string, addrs []string) []*instance {
	t.Helper()
	n := len(addrs)
	all := make([]*instance, n)
	for i, addr := range addrs {
		in := &instance{n: i + 1, url: "http://" + addr, exited: make(chan struct{})}
		in.cmd = exec.Command(bin, "serve")
		// A fleet behind one public URL shares it, and so the issuer its tokens carry.
		in.cmd.Env = append(slices.Clip(env), "AUTHAPI_ADDR="+addr, "AUTHAPI_PUBLIC_URL="+publicURL)
		in.cmd.Stdout, in.cmd.Stderr = &in.stdout, &in.stderr
		api, err := client.NewClientWithResponses(in.url, client.WithHTTPClient(&http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 32},
		}))
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		in.client = api
		all[i] = in
	}
	// Each process is started by a goroutine of its own, released together.
	gate := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, in := range all {
		wg.Go(func() {
			<-gate
			errs[i] = in.cmd.Start()
		})
	}
	close(gate)
	wg.Wait()
	for i, in := range all {
		if errs[i] != nil {
			t.Fatalf("start instance %d: %v", in.n, errs[i])
		}
		go func() {
			in.exitErr = in.cmd.Wait()
			close(in.exited)
		}()
		t.Cleanup(in.stop)
	}
	for _, in := range all {
		in.waitReady(t)
	}
	return all
}

// stop ends the process gracefully, or kills it if it has not exited within 15 s.
func (in *instance) stop() {
	select {
	case <-in.exited:
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.exited
	}
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would, and waits for it.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill instance %d: %v", in.n, err)
	}
	<-in.exited
}

// alive reports whether the process has not exited.
func (in *instance) alive() bool {
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// waitReady polls /readyz until it answers 200, failing at once if the process exits. (/healthz
// answers as soon as the process listens, before its migrations and keys are ready.)
func (in *instance) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if !in.alive() {
			t.Fatalf("instance %d exited (%v) before answering /readyz; stderr:\n%s\nstdout:\n%s",
				in.n, in.exitErr, in.stderr.String(), tail(in.stdout.String(), 20))
		}
		resp, err := in.client.GetReadyWithResponse(t.Context())
		if err == nil && resp.StatusCode() == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d was not ready within a minute; stderr:\n%s", in.n, in.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// bearer sends tok as the request's bearer token.
func bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// jwtPart decodes one part of a compact JWT (0: header, 1: claims) into v.
func jwtPart(t *testing.T, tok string, part int, v any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatalf("decode JWT part %d: %v", part, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("parse JWT part %d: %v", part, err)
	}
}

// kid is the signing key a token names.
func kid(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	jwtPart(t, tok, 0, &h)
	return h.Kid
}

// sid is the session a token belongs to.
func sid(t *testing.T, tok string) string {
	t.Helper()
	var c struct {
		Sid string `json:"sid"`
	}
	jwtPart(t, tok, 1, &c)
	return c.Sid
}

// response is any generated response.
type response interface {
	StatusCode() int
}

// status is resp's status code, or 0 when the request failed (then resp is nil).
func status(resp response, err error) int {
	if err != nil {
		return 0
	}
	return resp.StatusCode()
}

// expect fails t unless the request succeeded with status want.
func expect(t *testing.T, what string, resp response, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := resp.StatusCode(); got != want {
		t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}
