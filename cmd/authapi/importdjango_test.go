package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/djangoimport/djangotest"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// TestImportDjango runs import-django against a Django-schema database (SQLite, and PostgreSQL
// when the DSN is set): a dry run, the import, a second run that changes nothing and says so;
// then serve logs an imported user in with the Django password, and the hash is upgraded to
// argon2id.
func TestImportDjango(t *testing.T) {
	t.Parallel()
	sources := map[string]func(t *testing.T) string{
		"sqlite source":   func(t *testing.T) string { return djangotest.SQLite(t, djangotest.DemoUsers()) },
		"postgres source": func(t *testing.T) string { return djangotest.Postgres(t, djangotest.DemoUsers()) },
	}
	for name, source := range sources {
		for _, backend := range storetest.Backends {
			t.Run(name+", "+backend, func(t *testing.T) {
				t.Parallel()
				src, db := source(t), storetest.DSN(t, backend)
				e := testEnv()

				dry := runCLI(t, e, "", "import-django", "--db", db, "--from", src, "--dry-run")
				for _, want := range []string{
					"Users of table account_user in ",
					`would import "root" (id 1)`,
					`clashed "bob" (id 6): its username equals that of Django user "Bob" (id 5) ignoring case`,
					`skipped "nopass" (id 7): it could never log in here: unknown password hash format: Django unusable password`,
					"would import 5, unchanged 0, clashed 1, skipped 2.",
					"Dry run: nothing was written.",
				} {
					if dry.code != 0 || !strings.Contains(dry.stdout, want) {
						t.Errorf("dry run (exit %d) does not say %q:\n%s%s", dry.code, want, dry.stdout, dry.stderr)
					}
				}

				first := runCLI(t, e, "", "import-django", "--db", db, "--from", src)
				if first.code != 0 || !strings.Contains(first.stdout, `imported "alice" (id 3)`) ||
					!strings.Contains(first.stdout, "imported 5, unchanged 0, clashed 1, skipped 2.") {
					t.Errorf("import (exit %d):\n%s%s", first.code, first.stdout, first.stderr)
				}
				second := runCLI(t, e, "", "import-django", "--db", db, "--from", src)
				if second.code != 0 || !strings.Contains(second.stdout, "imported 0, unchanged 5, clashed 1, skipped 2.") ||
					!strings.Contains(second.stdout, "Nothing changed") {
					t.Errorf("second import (exit %d):\n%s%s", second.code, second.stdout, second.stderr)
				}
				// One user.created per imported user, by the command; none for the dry run or
				// the second run.
				events, _, err := audit.List(context.Background(), mustOpenStore(t, db), audit.Query{})
				if err != nil {
					t.Fatal(err)
				}
				var targets []int64
				for _, ev := range events {
					if ev.Action != string(audit.UserCreated) || ev.UserAgent != "authapi import-django" || ev.ActorID != 0 {
						t.Errorf("event %+v, want user.created by import-django", ev)
					}
					targets = append(targets, ev.TargetID)
				}
				if slices.Sort(targets); !slices.Equal(targets, []int64{1, 2, 3, 4, 5}) {
					t.Errorf("user.created events for users %v, want the 5 imported", targets)
				}

				// The database has users: serve creates no bootstrap superuser, and the Django
				// password logs alice in.
				srv := startServe(t, e, "--db", db)
				client := &http.Client{}
				base := "http://" + srv.addr
				srv.waitHealthy(t, client, base)
				access := mustLogin(t, client, base, "alice", djangotest.Password)
				mustWelcome(t, client, base, access)
				st, err := store.Open(db)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				alice, err := st.UserByUsername(context.Background(), "alice")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(alice.PasswordHash, "$argon2id$") {
					t.Errorf("alice's hash after her first login = %.20q…, want it upgraded to argon2id", alice.PasswordHash)
				}
				if n, err := st.CountUsers(context.Background()); err != nil || n != 5 {
					t.Errorf("%d users after serve started, want the 5 imported (no bootstrap superuser): %v", n, err)
				}
				mustLogin(t, client, base, "alice", djangotest.Password) // and again, against the new hash
			})
		}
	}
}

// TestImportDjangoErrors: bad arguments are reported, not half done.
func TestImportDjangoErrors(t *testing.T) {
	t.Parallel()
	db := storetest.DSN(t, "sqlite")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no source", []string{"--db", db}, "--from is required"},
		{"missing file", []string{"--db", db, "--from", t.TempDir() + "/db.sqlite3"}, "no such file"},
		{"not a user table", []string{"--db", db, "--from", djangotest.SQLite(t, nil), "--table", "auth_group"}, "is not a Django user table"},
		{"two user tables", []string{"--db", db, "--from", djangotest.SQLite(t, nil, djangotest.SQLiteAuthUser)}, "choose one with --table"},
	} {
		r := runCLI(t, testEnv(), "", append([]string{"import-django"}, tt.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tt.name, r.code, r.stderr, tt.want)
		}
	}
}
