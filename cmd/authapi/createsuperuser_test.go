package main

import (
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/store/storetest"
)

const goodPassword = "Orbit-Lantern-42-Quill"

func TestCreateSuperuserNoInput(t *testing.T) {
	t.Parallel()
	profile := []string{"--username", "root", "--email", "root@example.com", "--first-name", "Root", "--last-name", "User"}
	tests := []struct {
		name       string
		existing   string // username created first, if any
		env        env
		args       []string
		wantCode   int
		wantStderr []string
	}{
		{name: "created", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword), args: profile},
		{name: "no password", env: testEnv(), args: profile, wantCode: 1,
			wantStderr: []string{"AUTHAPI_SUPERUSER_PASSWORD"}},
		{name: "weak password", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", "password"), args: profile, wantCode: 1,
			wantStderr: []string{"password: This password is too common."}},
		{name: "short numeric password", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", "1234"), args: profile, wantCode: 1,
			wantStderr: []string{"This password is too short.", "This password is entirely numeric."}},
		{name: "duplicate username", existing: "root", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword), args: profile, wantCode: 1,
			wantStderr: []string{"username: A user with that username already exists."}},
		{name: "duplicate username other case", existing: "ROOT", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword), args: profile, wantCode: 1,
			wantStderr: []string{"already exists"}},
		{name: "missing username", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword),
			args: []string{"--email", "root@example.com", "--first-name", "Root", "--last-name", "User"}, wantCode: 1,
			wantStderr: []string{"username: This field may not be blank."}},
		{name: "invalid email", env: testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword),
			args: []string{"--username", "root", "--email", "root", "--first-name", "Root", "--last-name", "User"}, wantCode: 1,
			wantStderr: []string{"email: Enter a valid email address."}},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					dsn := storetest.DSN(t, backend)
					wantUsers := int64(0)
					if tt.existing != "" {
						res := runCLI(t, testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword), "", "createsuperuser", "--db", dsn, "--no-input",
							"--username", tt.existing, "--email", "first@example.com", "--first-name", "First", "--last-name", "User")
						if res.code != 0 {
							t.Fatalf("creating %q first: exit code = %d, want 0; stderr:\n%s", tt.existing, res.code, res.stderr)
						}
						wantUsers = 1
					}

					res := runCLI(t, tt.env, "", append([]string{"createsuperuser", "--db", dsn, "--no-input"}, tt.args...)...)
					if res.code != tt.wantCode {
						t.Fatalf("exit code = %d, want %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
					}
					for _, want := range tt.wantStderr {
						if !strings.Contains(res.stderr, want) {
							t.Errorf("stderr = %q, want it to contain %q", res.stderr, want)
						}
					}
					if tt.wantCode != 0 {
						if got := mustCountUsers(t, dsn); got != wantUsers {
							t.Errorf("users after a refused createsuperuser = %d, want %d", got, wantUsers)
						}
						return
					}
					if want := `Superuser "root" created`; !strings.Contains(res.stdout, want) {
						t.Errorf("stdout = %q, want it to contain %q", res.stdout, want)
					}
					u := mustUser(t, dsn, "root")
					if !u.IsSuperuser || !u.IsStaff || !u.IsActive {
						t.Errorf("root: superuser %v, staff %v, active %v; want all true", u.IsSuperuser, u.IsStaff, u.IsActive)
					}
					if u.Email != "root@example.com" || u.FirstName != "Root" || u.LastName != "User" {
						t.Errorf("root: email %q, first name %q, last name %q; want root@example.com, Root, User", u.Email, u.FirstName, u.LastName)
					}
					mustVerifyPassword(t, u, goodPassword)
				})
			}
		})
	}
}

// lines joins its arguments as lines of input.
func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

func TestCreateSuperuserInteractive(t *testing.T) {
	t.Parallel()
	profile := []string{"root", "root@example.com", "Root", "User"}
	with := func(rest ...string) string { return lines(append(append([]string{}, profile...), rest...)...) }
	tests := []struct {
		name         string
		existing     string // username created first, if any
		args         []string
		stdin        string
		wantUsername string
		// wantInOrder must appear in the transcript (stdout and stderr as written) in this order.
		wantInOrder                  []string
		wantUsernameQs, wantPasswdQs int
	}{
		{
			name:         "mismatch then weak then good",
			stdin:        with("first-Secret-9", "second-Secret-9", "password", "password", goodPassword, goodPassword),
			wantUsername: "root",
			wantInOrder: []string{
				"Username: ", "Email address: ", "First name: ", "Last name: ",
				"Password: ", "Password (again): ", "Error: Your passwords didn't match.",
				"Password: ", "Password (again): ", "This password is too common.",
				"Password: ", "Password (again): ", `Superuser "root" created`,
			},
			wantUsernameQs: 1, wantPasswdQs: 3,
		},
		{
			name:           "blank password",
			stdin:          with("", "", goodPassword, goodPassword),
			wantUsername:   "root",
			wantInOrder:    []string{"Error: Blank passwords aren't allowed.", "Password: ", `Superuser "root" created`},
			wantUsernameQs: 1, wantPasswdQs: 2,
		},
		{
			name:           "blank answers are asked again",
			stdin:          lines("", "root", "", "root@example.com", "Root", "User", goodPassword, goodPassword),
			wantUsername:   "root",
			wantInOrder:    []string{"Username: ", "Username: ", "Email address: ", "Email address: ", `Superuser "root" created`},
			wantUsernameQs: 2, wantPasswdQs: 1,
		},
		{
			name:           "password similar to the username",
			stdin:          lines("orbitlantern", "o@example.com", "Root", "User", "orbitlantern1", "orbitlantern1", goodPassword, goodPassword),
			wantUsername:   "orbitlantern",
			wantInOrder:    []string{"The password is too similar to the username.", "Password: ", `Superuser "orbitlantern" created`},
			wantUsernameQs: 1, wantPasswdQs: 2,
		},
		{
			name:           "invalid username asks only for the username again",
			stdin:          lines("bad name!", "root@example.com", "Root", "User", goodPassword, goodPassword, "root"),
			wantUsername:   "root",
			wantInOrder:    []string{"Enter a valid username.", "Username: ", `Superuser "root" created`},
			wantUsernameQs: 2, wantPasswdQs: 1,
		},
		{
			name:           "taken username asks only for the username again",
			existing:       "root",
			stdin:          with(goodPassword, goodPassword, "root2"),
			wantUsername:   "root2",
			wantInOrder:    []string{"A user with that username already exists.", "Username: ", `Superuser "root2" created`},
			wantUsernameQs: 2, wantPasswdQs: 1,
		},
		{
			name:           "invalid email flag asks only for the email",
			args:           []string{"--username", "root", "--email", "nope", "--first-name", "Root", "--last-name", "User"},
			stdin:          lines(goodPassword, goodPassword, "root@example.com"),
			wantUsername:   "root",
			wantInOrder:    []string{"Password: ", "Enter a valid email address.", "Email address: ", `Superuser "root" created`},
			wantUsernameQs: 0, wantPasswdQs: 1,
		},
		{
			name:           "flags are not asked for",
			args:           []string{"--username", "root", "--email", "root@example.com", "--first-name", "Root", "--last-name", "User"},
			stdin:          lines(goodPassword, goodPassword),
			wantUsername:   "root",
			wantInOrder:    []string{"Password: ", `Superuser "root" created`},
			wantUsernameQs: 0, wantPasswdQs: 1,
		},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					dsn := storetest.DSN(t, backend)
					if tt.existing != "" {
						res := runCLI(t, testEnv("AUTHAPI_SUPERUSER_PASSWORD", goodPassword), "", "createsuperuser", "--db", dsn, "--no-input",
							"--username", tt.existing, "--email", "first@example.com", "--first-name", "First", "--last-name", "User")
						if res.code != 0 {
							t.Fatalf("creating %q first: exit code = %d, want 0; stderr:\n%s", tt.existing, res.code, res.stderr)
						}
					}
					res := runCLI(t, testEnv(), tt.stdin, append([]string{"createsuperuser", "--db", dsn}, tt.args...)...)
					if res.code != 0 {
						t.Fatalf("exit code = %d, want 0; transcript:\n%s", res.code, res.transcript)
					}
					rest := res.transcript
					for _, want := range tt.wantInOrder {
						i := strings.Index(rest, want)
						if i < 0 {
							t.Fatalf("transcript lacks %q where expected (in order %q); transcript:\n%s", want, tt.wantInOrder, res.transcript)
						}
						rest = rest[i+len(want):]
					}
					if got := strings.Count(res.stdout, "Username: "); got != tt.wantUsernameQs {
						t.Errorf("asked for the username %d times, want %d; transcript:\n%s", got, tt.wantUsernameQs, res.transcript)
					}
					if got := strings.Count(res.stdout, "Password: "); got != tt.wantPasswdQs {
						t.Errorf("asked for the password %d times, want %d; transcript:\n%s", got, tt.wantPasswdQs, res.transcript)
					}
					u := mustUser(t, dsn, tt.wantUsername)
					if !u.IsSuperuser || !u.IsStaff || !u.IsActive {
						t.Errorf("%s: superuser %v, staff %v, active %v; want all true", u.Username, u.IsSuperuser, u.IsStaff, u.IsActive)
					}
					mustVerifyPassword(t, u, goodPassword)
				})
			}
		})
	}
}

func TestCreateSuperuserInteractiveInputEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stdin string
	}{
		{"no input", ""},
		{"after the email", lines("root", "root@example.com")},
		{"at the password", lines("root", "root@example.com", "Root", "User")},
		{"after a mismatch", lines("root", "root@example.com", "Root", "User", goodPassword, "other-Secret-9")},
		{"only weak passwords", lines("root", "root@example.com", "Root", "User", "password", "password", "12345678", "12345678")},
		{"only blank usernames", lines("", "", "")},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					dsn := storetest.DSN(t, backend)
					res := runCLI(t, testEnv(), tt.stdin, "createsuperuser", "--db", dsn)
					if res.code != 1 {
						t.Fatalf("exit code = %d, want 1; transcript:\n%s", res.code, res.transcript)
					}
					if want := "input ended before the superuser was complete"; !strings.Contains(res.stderr, want) {
						t.Errorf("stderr = %q, want it to contain %q", res.stderr, want)
					}
					if got := mustCountUsers(t, dsn); got != 0 {
						t.Errorf("users = %d, want 0", got)
					}
				})
			}
		})
	}
}
