package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/testbin"
)

// env is a fake environment: tests never read the real one.
type env map[string]string

func (e env) get(key string) string { return e[key] }

// testEnv has fast password hashing and no shutdown drain, plus kv, given as key, value pairs.
func testEnv(kv ...string) env {
	e := env{"AUTHAPI_ARGON2_MEMORY_KIB": "64", "AUTHAPI_ARGON2_ITERATIONS": "1", "AUTHAPI_SHUTDOWN_DRAIN": "0s"}
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i]] = kv[i+1]
	}
	return e
}

// result is what one run of the CLI left behind. transcript interleaves stdout and stderr in
// the order they were written, as a terminal would show them.
type result struct {
	code                       int
	stdout, stderr, transcript string
}

// runCLI runs a command that is expected to return by itself, failing if it takes over a
// minute (a prompt waiting for input that will never come, for instance; a migration on a
// loaded machine takes seconds).
func runCLI(t *testing.T, e env, stdin string, args ...string) result {
	t.Helper()
	const patience = time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	var stdout, stderr, transcript testbin.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, maps.Clone(e).get, strings.NewReader(stdin),
			teeWriter{&stdout, &transcript}, teeWriter{&stderr, &transcript})
	}()
	select {
	case code := <-done:
		return result{code: code, stdout: stdout.String(), stderr: stderr.String(), transcript: transcript.String()}
	case <-time.After(patience):
		t.Fatalf("run %q did not return within %v; output so far:\n%s", args, patience, transcript.String())
		return result{}
	}
}

// teeWriter writes to both; used only from one goroutine at a time by runCLI's commands.
type teeWriter struct{ a, b *testbin.Buffer }

func (w teeWriter) Write(p []byte) (int, error) {
	w.a.Write(p)
	return w.b.Write(p)
}

// serveRun is `authapi serve` running in the background.
type serveRun struct {
	addr           string
	stdout, stderr *testbin.Buffer
	cancel         context.CancelFunc
	done           chan struct{}
	code           int // set before done is closed
	stopOnce       sync.Once
}

// startServe runs `serve --addr <free port> args...` until stop or the end of the test.
func startServe(t *testing.T, e env, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{addr: testbin.FreeAddr(t), stdout: &testbin.Buffer{}, stderr: &testbin.Buffer{}, cancel: cancel, done: make(chan struct{})}
	argv := append([]string{"serve", "--addr", r.addr}, args...)
	getenv := maps.Clone(e).get
	go func() {
		defer close(r.done)
		r.code = run(ctx, argv, getenv, strings.NewReader(""), r.stdout, r.stderr)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels serve's context and returns its exit code, failing unless it returns within a
// minute (a hang; a loaded machine takes seconds).
func (r *serveRun) stop(t *testing.T) int {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Fatalf("serve did not return within a minute of cancel; stderr:\n%s", r.stderr.String())
		}
	})
	return r.code
}

// waitFor polls cond until it holds, failing at once if serve exits. The deadline is only
// for a serve that hangs: a loaded machine (the whole suite with -race, a PostgreSQL busy
// migrating other tests' schemas) once took more than 10s to get ready.
func (r *serveRun) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	const patience = 90 * time.Second
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-r.done:
			t.Fatalf("serve exited with %d while waiting for %s; stderr:\n%s\nstdout:\n%s", r.code, what, r.stderr.String(), r.stdout.String())
		default:
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s; stderr:\n%s\nstdout:\n%s", patience, what, r.stderr.String(), r.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealthy waits until GET baseURL/healthz and GET baseURL/readyz answer 200: serve has
// started (/healthz answers as soon as it listens) and is ready for the API.
func (r *serveRun) waitHealthy(t *testing.T, client *http.Client, baseURL string) {
	t.Helper()
	r.waitFor(t, "GET /healthz and /readyz 200", func() bool {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := client.Get(baseURL + path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
}

// logLines parses serve's stdout, which must be JSON lines only.
func logLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %d is not JSON: %v\n%s", i+1, err, line)
		}
		lines = append(lines, m)
	}
	return lines
}

// findLog returns the first log line whose fields include all of want.
func findLog(lines []map[string]any, want map[string]any) (map[string]any, bool) {
next:
	for _, l := range lines {
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return l, true
	}
	return nil, false
}

// mustUser reads username from the database at dsn.
func mustUser(t *testing.T, dsn, username string) store.User {
	t.Helper()
	st := mustOpenStore(t, dsn)
	u, err := st.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatalf("UserByUsername(%q): %v", username, err)
	}
	return u
}

func mustOpenStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustCountUsers(t *testing.T, dsn string) int64 {
	t.Helper()
	n, err := mustOpenStore(t, dsn).CountUsers(context.Background())
	if err != nil {
		t.Fatalf("CountUsers: %v", err)
	}
	return n
}

func mustVerifyPassword(t *testing.T, u store.User, plain string) {
	t.Helper()
	ok, err := password.NewHasher(password.FastParams(), password.Limit{}).Verify(t.Context(), plain, u.PasswordHash)
	if err != nil || !ok {
		t.Errorf("Verify(%q) for %s = %v, %v; want true, nil", plain, u.Username, ok, err)
	}
}

func TestRunConfigErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "authapi.db")
	tests := []struct {
		name       string
		env        env
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no command", testEnv(), nil, 2, "usage: authapi <command>"},
		{"unknown command", testEnv(), []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown serve flag", testEnv(), []string{"serve", "--db", db, "--nope"}, 2, "flag provided but not defined: -nope"},
		{"unknown migrate flag", testEnv(), []string{"migrate", "--db", db, "--nope"}, 2, "flag provided but not defined: -nope"},
		{"unknown createsuperuser flag", testEnv(), []string{"createsuperuser", "--db", db, "--nope"}, 2, "flag provided but not defined: -nope"},
		{"stray argument", testEnv(), []string{"migrate", "--db", db, "extra"}, 1, "unexpected arguments: [extra]"},
		{"bad access token lifetime", testEnv("AUTHAPI_ACCESS_TOKEN_LIFETIME", "fifteen"),
			[]string{"serve", "--db", db}, 1, "AUTHAPI_ACCESS_TOKEN_LIFETIME"},
		{"bad refresh token lifetime", testEnv("AUTHAPI_REFRESH_TOKEN_LIFETIME", "1 hour"),
			[]string{"serve", "--db", db}, 1, "AUTHAPI_REFRESH_TOKEN_LIFETIME"},
		{"bad lifetime flag", testEnv(), []string{"serve", "--db", db, "--access-token-lifetime", "soon"}, 2, "-access-token-lifetime"},
		{"non-numeric argon2 memory", testEnv("AUTHAPI_ARGON2_MEMORY_KIB", "lots"),
			[]string{"createsuperuser", "--db", db, "--no-input"}, 1, "AUTHAPI_ARGON2_MEMORY_KIB"},
		{"argon2 memory too small", testEnv("AUTHAPI_ARGON2_MEMORY_KIB", "4"),
			[]string{"createsuperuser", "--db", db, "--no-input"}, 1, "argon2"},
		{"argon2 iterations zero", testEnv("AUTHAPI_ARGON2_ITERATIONS", "0"),
			[]string{"serve", "--db", db, "--addr", testbin.FreeAddr(t)}, 1, "argon2"},
		{"argon2 memory flag overflows uint32", testEnv(),
			[]string{"serve", "--db", db, "--addr", testbin.FreeAddr(t), "--argon2-memory", strconv.FormatUint(1<<32+64, 10)}, 1, "argon2"},
		{"no hashing slots", testEnv("AUTHAPI_MAX_CONCURRENT_HASHES", "0"),
			[]string{"serve", "--db", db, "--addr", testbin.FreeAddr(t)}, 1, "--max-concurrent-hashes 0"},
		{"no hash queue wait", testEnv(), []string{"serve", "--db", db, "--addr", testbin.FreeAddr(t), "--hash-queue-wait", "0s"}, 1, "--hash-queue-wait 0s"},
		{"bad hash queue wait", testEnv("AUTHAPI_HASH_QUEUE_WAIT", "a while"), []string{"serve", "--db", db}, 1, "AUTHAPI_HASH_QUEUE_WAIT"},
		{"unknown signing algorithm", testEnv(), []string{"serve", "--db", db, "--signing-alg", "HS256"}, 1, `unknown signing algorithm "HS256"`},
		{"unknown signing algorithm from env", testEnv("AUTHAPI_SIGNING_ALG", "none"), []string{"serve", "--db", db}, 1, `unknown signing algorithm "none"`},
		{"non-numeric max open connections", testEnv("AUTHAPI_DB_MAX_OPEN_CONNS", "many"),
			[]string{"serve", "--db", db}, 1, "AUTHAPI_DB_MAX_OPEN_CONNS"},
		{"negative max open connections", testEnv(), []string{"serve", "--db", db, "--db-max-open-conns", "-1"}, 1, "max open connections -1"},
		{"unknown sqlite synchronous", testEnv("AUTHAPI_SQLITE_SYNCHRONOUS", "off"), []string{"serve", "--db", db}, 1, `sqlite synchronous "off"`},
		{"unknown rotation commit", testEnv("AUTHAPI_POSTGRES_ROTATION_COMMIT", "eventually"), []string{"serve", "--db", db}, 1, `rotation commit "eventually"`},
		{"negative shutdown drain", testEnv(), []string{"serve", "--db", db, "--shutdown-drain", "-1s"}, 1, "--shutdown-drain -1s"},
		{"bad shutdown drain", testEnv("AUTHAPI_SHUTDOWN_DRAIN", "a while"), []string{"serve", "--db", db}, 1, "AUTHAPI_SHUTDOWN_DRAIN"},
		{"no shutdown timeout", testEnv("AUTHAPI_SHUTDOWN_TIMEOUT", "0s"), []string{"serve", "--db", db}, 1, "--shutdown-timeout 0s"},
		{"tls cert without key", testEnv(), []string{"serve", "--db", db, "--tls-cert", "cert.pem"}, 1, "--tls-cert and --tls-key go together"},
		{"tls key without cert", testEnv("AUTHAPI_TLS_KEY", "key.pem"), []string{"serve", "--db", db}, 1, "--tls-cert and --tls-key go together"},
		{"missing tls files", testEnv(), []string{"serve", "--db", db, "--addr", testbin.FreeAddr(t),
			"--tls-cert", filepath.Join(t.TempDir(), "missing.crt"), "--tls-key", filepath.Join(t.TempDir(), "missing.key")}, 1, "missing.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, tt.env, "", tt.args...)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			res := runCLI(t, testEnv(), "", arg)
			if res.code != 0 {
				t.Errorf("exit code = %d, want 0", res.code)
			}
			for _, cmd := range []string{"serve", "migrate", "createsuperuser"} {
				if !strings.Contains(res.stdout, cmd) {
					t.Errorf("stdout = %q, want it to mention %q", res.stdout, cmd)
				}
			}
		})
	}
}

// A config error must not leave a database file behind in the working directory.
func TestRunConfigErrorCreatesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "authapi.db")
	res := runCLI(t, testEnv("AUTHAPI_ACCESS_TOKEN_LIFETIME", "x"), "", "serve", "--db", db)
	if res.code != 1 {
		t.Fatalf("exit code = %d, want 1", res.code)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("stat %s: err = %v, want not exist", db, err)
	}
}
