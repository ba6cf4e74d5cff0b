package main

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

const bootstrapPassword = "super_secret_password"

// mustLogin obtains a token pair from the server at baseURL, failing unless it answers 200.
func mustLogin(t *testing.T, hc *http.Client, baseURL, username, plain string) string {
	t.Helper()
	c, err := client.NewClientWithResponses(baseURL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("NewClientWithResponses: %v", err)
	}
	resp, err := c.ObtainTokenWithResponse(t.Context(), client.ObtainTokenJSONRequestBody{Username: username, Password: plain})
	if err != nil {
		t.Fatalf("ObtainToken(%q): %v", username, err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || resp.JSON200.Access == "" {
		t.Fatalf("ObtainToken(%q) = %d %s, want 200 with an access token", username, resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.Access
}

// mustWelcome calls GET /api/v1/ with the bearer token, failing unless it answers 200.
func mustWelcome(t *testing.T, hc *http.Client, baseURL, access string) client.Welcome {
	t.Helper()
	c, err := client.NewClientWithResponses(baseURL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("NewClientWithResponses: %v", err)
	}
	bearer := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+access)
		return nil
	}
	resp, err := c.WelcomeWithResponse(t.Context(), bearer)
	if err != nil {
		t.Fatalf("Welcome: %v", err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
		t.Fatalf("Welcome = %d %s, want 200", resp.StatusCode(), resp.Body)
	}
	return *resp.JSON200
}

func mustGet(t *testing.T, hc *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp
}

func TestServe(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			srv := startServe(t, testEnv(
				"AUTHAPI_BOOTSTRAP_USERNAME", "alice",
				"AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword,
			), "--db", dsn)
			hc := &http.Client{}
			base := "http://" + srv.addr
			srv.waitHealthy(t, hc, base)

			if resp := mustGet(t, hc, base+"/readyz"); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /readyz = %d, want 200", resp.StatusCode)
			}
			access := mustLogin(t, hc, base, "alice", bootstrapPassword)
			if got, want := mustWelcome(t, hc, base, access).Name, "My Awesome API"; got != want {
				t.Errorf("welcome name = %q, want %q", got, want)
			}
			resp := mustGet(t, hc, base+"/api/v1/swagger/ui/")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /api/v1/swagger/ui/ = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("swagger UI Content-Type = %q, want text/html", ct)
			}

			if code := srv.stop(t); code != 0 {
				t.Fatalf("serve exit code after cancel = %d, want 0; stderr:\n%s", code, srv.stderr.String())
			}
			if strings.Contains(srv.stdout.String(), bootstrapPassword) {
				t.Errorf("stdout contains the bootstrap password:\n%s", srv.stdout.String())
			}
			lines := logLines(t, srv.stdout.String())
			for _, want := range []map[string]any{
				{"msg": "created the first superuser", "username": "alice"},
				{"msg": "serving", "url": base + "/api/v1/"},
				{"msg": "request", "method": "GET", "path": "/healthz", "status": 200.0},
				{"msg": "request", "method": "GET", "path": "/readyz", "status": 200.0},
				{"msg": "request", "method": "POST", "path": "/api/v1/auth/token/", "status": 200.0},
				{"msg": "request", "method": "GET", "path": "/api/v1/", "status": 200.0},
				{"msg": "request", "method": "GET", "path": "/api/v1/swagger/ui/", "status": 200.0},
				{"msg": "shutting down"},
			} {
				if _, ok := findLog(lines, want); !ok {
					t.Errorf("no log line with %v in stdout:\n%s", want, srv.stdout.String())
				}
			}
			if l, ok := findLog(lines, map[string]any{"msg": "created the first superuser"}); ok {
				if _, has := l["password"]; has {
					t.Errorf("log line %v shows a password that was given, want none", l)
				}
			}
			if got := mustUser(t, dsn, "alice"); !got.IsSuperuser || !got.IsStaff || !got.IsActive {
				t.Errorf("bootstrap user: superuser %v, staff %v, active %v; want all true", got.IsSuperuser, got.IsStaff, got.IsActive)
			}
		})
	}
}

func TestServeGeneratesBootstrapPassword(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := startServe(t, testEnv(), "--db", storetest.DSN(t, backend))
			hc := &http.Client{}
			base := "http://" + srv.addr
			srv.waitHealthy(t, hc, base)

			// The password is on stderr, as a plain line for the operator.
			m := regexp.MustCompile(`(?m)^Created the first superuser "admin" with the password ([A-Z2-7]{26}) \(shown once`).FindStringSubmatch(srv.stderr.String())
			if m == nil {
				t.Fatalf("no plain line with the generated admin password on stderr:\n%s", srv.stderr.String())
			}
			generated := m[1]
			// The log says a superuser was created and where the password went, never the password.
			lines := logLines(t, srv.stdout.String())
			if _, ok := findLog(lines, map[string]any{"level": "WARN", "username": "admin", "msg": "created the first superuser; password printed on stderr"}); !ok {
				t.Errorf("no WARN log line for the created admin in stdout:\n%s", srv.stdout.String())
			}
			for _, out := range []string{srv.stdout.String(), srv.stderr.String()} {
				for line := range strings.Lines(out) {
					if strings.HasPrefix(line, "{") && strings.Contains(line, generated) {
						t.Errorf("a log record holds the generated password: %s", line)
					}
				}
			}
			mustLogin(t, hc, base, "admin", generated)
		})
	}
}

// The bootstrap variables apply to an empty database only. On one with users, serve creates
// nobody and says, naming each variable that is set, that it was ignored; without them it
// warns of nothing.
func TestServeBootstrapsOnlyAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			first := startServe(t, testEnv("AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword), "--db", dsn)
			first.waitHealthy(t, http.DefaultClient, "http://"+first.addr)
			if code := first.stop(t); code != 0 {
				t.Fatalf("first serve exit code = %d, want 0; stderr:\n%s", code, first.stderr.String())
			}
			for _, l := range logLines(t, first.stdout.String()) {
				if msg, _ := l["msg"].(string); strings.Contains(msg, "ignored") {
					t.Errorf("first serve logged %v, but it used the bootstrap variables", l)
				}
			}

			for _, tc := range []struct {
				name    string
				env     env
				ignored []string // the variables the warnings must name, in order
			}{
				{"both set", testEnv("AUTHAPI_BOOTSTRAP_USERNAME", "bob", "AUTHAPI_BOOTSTRAP_PASSWORD", "another secret password"),
					[]string{"AUTHAPI_BOOTSTRAP_USERNAME", "AUTHAPI_BOOTSTRAP_PASSWORD"}},
				{"password set", testEnv("AUTHAPI_BOOTSTRAP_PASSWORD", "another secret password"), []string{"AUTHAPI_BOOTSTRAP_PASSWORD"}},
				{"none set", testEnv(), nil},
			} {
				srv := startServe(t, tc.env, "--db", dsn)
				base := "http://" + srv.addr
				srv.waitHealthy(t, http.DefaultClient, base)
				mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword)
				if code := srv.stop(t); code != 0 {
					t.Fatalf("%s: serve exit code = %d, want 0; stderr:\n%s", tc.name, code, srv.stderr.String())
				}
				lines := logLines(t, srv.stdout.String())
				if l, ok := findLog(lines, map[string]any{"msg": "created the first superuser"}); ok {
					t.Errorf("%s: serve logged %v, want no new superuser", tc.name, l)
				}
				var ignored []string
				for _, l := range lines {
					msg, _ := l["msg"].(string)
					switch {
					case l["level"] != "WARN" || strings.HasPrefix(msg, "signing keys are stored unencrypted"),
						strings.HasPrefix(msg, "mail: no SMTP server configured"): // the development sink, said at start
					case strings.Contains(msg, "is set but was ignored: the database already has users"):
						v, _ := l["variable"].(string)
						if !strings.HasPrefix(msg, v+" ") {
							t.Errorf("%s: warning %q does not begin with the variable it names (%q)", tc.name, msg, v)
						}
						ignored = append(ignored, v)
					default:
						t.Errorf("%s: serve logged warning %v, want none but the plaintext keys' and the ignored variables'", tc.name, l)
					}
				}
				if !slices.Equal(ignored, tc.ignored) {
					t.Errorf("%s: warnings name %q as ignored, want %q; stdout:\n%s", tc.name, ignored, tc.ignored, srv.stdout.String())
				}
				if strings.Contains(srv.stdout.String()+srv.stderr.String(), "another secret password") {
					t.Errorf("%s: the ignored password shows in the output", tc.name)
				}
			}
			if got := mustCountUsers(t, dsn); got != 1 {
				t.Errorf("users after four serves = %d, want 1", got)
			}
			if _, err := mustOpenStore(t, dsn).UserByUsername(context.Background(), "bob"); !errors.Is(err, store.ErrUserNotFound) {
				t.Errorf("UserByUsername(bob) error = %v, want ErrUserNotFound", err)
			}
		})
	}
}

func TestServeAPINameFlagBeatsEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  env
		args []string
		want string
	}{
		{"default", testEnv(), nil, "My Awesome API"},
		{"env", testEnv("AUTHAPI_API_NAME", "From Env"), nil, "From Env"},
		{"flag", testEnv(), []string{"--api-name", "From Flag"}, "From Flag"},
		{"flag and env", testEnv("AUTHAPI_API_NAME", "From Env"), []string{"--api-name", "From Flag"}, "From Flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := tt.env
			e["AUTHAPI_BOOTSTRAP_USERNAME"], e["AUTHAPI_BOOTSTRAP_PASSWORD"] = "alice", bootstrapPassword
			srv := startServe(t, e, append([]string{"--db", storetest.DSN(t, "sqlite")}, tt.args...)...)
			base := "http://" + srv.addr
			srv.waitHealthy(t, http.DefaultClient, base)
			access := mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword)
			if got := mustWelcome(t, http.DefaultClient, base, access).Name; got != tt.want {
				t.Errorf("welcome name = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestServeDBOptions serves with the connection settings given by flag and by environment.
func TestServeDBOptions(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := testEnv("AUTHAPI_SQLITE_SYNCHRONOUS", "full", "AUTHAPI_DB_MAX_IDLE_CONNS", "1", "AUTHAPI_POSTGRES_ROTATION_COMMIT", "async",
				"AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword)
			srv := startServe(t, e, "--db", storetest.DSN(t, backend), "--db-max-open-conns", "2",
				"--db-conn-max-lifetime", "1m", "--db-conn-max-idle-time", "-1s")
			base := "http://" + srv.addr
			srv.waitHealthy(t, http.DefaultClient, base)
			mustWelcome(t, http.DefaultClient, base, mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword))
		})
	}
}

var migrationLine = regexp.MustCompile(`^\d{5} applied\s+\S+\.(sql|go)$`)

func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			var outputs []string
			for i := range 2 {
				res := runCLI(t, testEnv(), "", "migrate", "--db", dsn)
				if res.code != 0 {
					t.Fatalf("migrate run %d: exit code = %d, want 0; stderr:\n%s", i+1, res.code, res.stderr)
				}
				outputs = append(outputs, res.stdout)
			}
			if outputs[0] != outputs[1] {
				t.Errorf("second migrate printed %q, want the same as the first, %q", outputs[1], outputs[0])
			}
			lines := strings.Split(strings.TrimSuffix(outputs[0], "\n"), "\n")
			for _, l := range lines {
				if !migrationLine.MatchString(l) {
					t.Errorf("migrate line %q does not match %s", l, migrationLine)
				}
			}
			states, err := mustOpenStore(t, dsn).MigrationStatus(context.Background())
			if err != nil {
				t.Fatalf("MigrationStatus: %v", err)
			}
			if len(states) == 0 || len(lines) != len(states) {
				t.Errorf("migrate printed %d lines, want one per migration (%d)", len(lines), len(states))
			}
			for _, s := range states {
				if !s.Applied {
					t.Errorf("migration %d (%s) not applied after migrate", s.Version, s.Source)
				}
			}
		})
	}
}

// TestServeAuthCacheFlags serves with the auth cache off, and refuses a poll interval that
// cannot keep the staleness bound.
func TestServeAuthCacheFlags(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		e := testEnv("AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword)
		srv := startServe(t, e, "--db", storetest.DSN(t, "sqlite"), "--auth-cache-entries", "-1")
		base := "http://" + srv.addr
		srv.waitHealthy(t, http.DefaultClient, base)
		access := mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword)
		mustWelcome(t, http.DefaultClient, base, access)
	})
	for _, args := range [][]string{
		{"--auth-cache-poll-interval", "0s"},
		{"--auth-cache-poll-interval", "600ms", "--auth-cache-stale-after", "1s"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			srv := startServe(t, testEnv(), append([]string{"--db", storetest.DSN(t, "sqlite")}, args...)...)
			select {
			case <-srv.done:
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not refuse the setting")
			}
			if srv.code == 0 || !strings.Contains(srv.stderr.String(), "auth-cache-poll-interval") {
				t.Fatalf("exit %d, stderr %q; want a refusal naming the flag", srv.code, srv.stderr.String())
			}
		})
	}
}

// TestMigrateReportsUsernameCollisions: users stored before usernames were NFKC-normalised
// whose usernames are now one are named by every migrate (and left as they are), until renamed.
func TestMigrateReportsUsernameCollisions(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			if r := runCLI(t, testEnv(), "", "migrate", "--db", dsn); r.code != 0 || r.stderr != "" {
				t.Fatalf("migrate: exit %d, stderr %q; want 0 and no warning", r.code, r.stderr)
			}
			storetest.InsertOldFormUser(t, dsn, "admin")
			storetest.InsertOldFormUser(t, dsn, "ａｄｍｉｎ")
			storetest.InsertOldFormUser(t, dsn, "carol")
			want := `warning: usernames "admin" (id 1), "ａｄｍｉｎ" (id 2) are one once NFKC-normalised ignoring case ("admin"), and were left as they are: logging in as any of them reaches id 1; rename all but one` + "\n"
			for i := range 2 {
				r := runCLI(t, testEnv(), "", "migrate", "--db", dsn)
				if r.code != 0 || r.stderr != want {
					t.Errorf("migrate run %d: exit %d, stderr %q; want 0, %q", i+1, r.code, r.stderr, want)
				}
			}
		})
	}
}
