package djangoimport_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/djangoimport"
	"github.com/authapi/authapi/internal/djangoimport/djangotest"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// wantOutcomes are the outcomes of importing djangotest.DemoUsers into an empty database.
var wantOutcomes = map[string]djangoimport.Outcome{
	"root": djangoimport.Imported, "staff": djangoimport.Imported, "alice": djangoimport.Imported,
	"eve": djangoimport.Imported, "Bob": djangoimport.Imported,
	"bob":     djangoimport.Clashed, // "Bob" came first; usernames are unique ignoring case here
	"nopass":  djangoimport.Skipped, // unusable password
	"oldhash": djangoimport.Skipped, // unsalted md5: authapi cannot verify it
}

func outcomes(rep djangoimport.Report) map[string]djangoimport.Outcome {
	out := map[string]djangoimport.Outcome{}
	for _, r := range rep.Results {
		out[r.Username] = r.Outcome
	}
	return out
}

func mustOpen(t *testing.T, src string) *djangoimport.Source {
	t.Helper()
	s, err := djangoimport.Open(src)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustImport(t *testing.T, src *djangoimport.Source, st *store.Store, opts djangoimport.Options) djangoimport.Report {
	t.Helper()
	rep, err := djangoimport.Import(context.Background(), src, st, opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return rep
}

func allUsers(t *testing.T, st *store.Store) []store.User {
	t.Helper()
	page, err := st.ListUsers(context.Background(), store.UserQuery{})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return page.Users
}

// TestImport imports the demo's users from a Django SQLite file and, when the PostgreSQL DSN
// is set, from a Django PostgreSQL database, into each backend: the users come with their IDs,
// fields and hashes as they are, a second run changes nothing and says so, and a dry run
// writes nothing.
func TestImport(t *testing.T) {
	sources := map[string]func(t *testing.T) string{
		"from sqlite":   func(t *testing.T) string { return djangotest.SQLite(t, djangotest.DemoUsers()) },
		"from postgres": func(t *testing.T) string { return djangotest.Postgres(t, djangotest.DemoUsers()) },
	}
	for name, source := range sources {
		for _, backend := range storetest.Backends {
			t.Run(name+" to "+backend, func(t *testing.T) {
				t.Parallel()
				src := mustOpen(t, source(t))
				st := storetest.Open(t, backend)

				dry := mustImport(t, src, st, djangoimport.Options{DryRun: true})
				if got := outcomes(dry); !mapsEqual(got, wantOutcomes) {
					t.Errorf("dry run outcomes = %v, want %v", got, wantOutcomes)
				}
				if users := allUsers(t, st); len(users) != 0 {
					t.Fatalf("a dry run wrote %d users", len(users))
				}

				rep := mustImport(t, src, st, djangoimport.Options{})
				if rep.Table != "account_user" {
					t.Errorf("table = %q, want account_user (found from the schema)", rep.Table)
				}
				if got := outcomes(rep); !mapsEqual(got, wantOutcomes) {
					t.Errorf("outcomes = %v, want %v", got, wantOutcomes)
				}
				for _, r := range rep.Results {
					if (r.Outcome == djangoimport.Clashed || r.Outcome == djangoimport.Skipped) && r.Reason == "" {
						t.Errorf("%s: %s without a reason", r.Username, r.Outcome)
					}
				}
				checkImported(t, st)

				before := allUsers(t, st)
				again := mustImport(t, src, st, djangoimport.Options{})
				if n := again.Count(djangoimport.Imported); n != 0 {
					t.Errorf("a second run imported %d users, want 0", n)
				}
				if n := again.Count(djangoimport.Unchanged); n != rep.Count(djangoimport.Imported) {
					t.Errorf("a second run found %d users unchanged, want the %d imported", n, rep.Count(djangoimport.Imported))
				}
				if after := allUsers(t, st); !slices.EqualFunc(before, after, sameUser) {
					t.Errorf("a second run changed the users:\nbefore %+v\nafter  %+v", before, after)
				}

				// Users created afterwards get IDs above the imported ones.
				u := store.User{Username: "newcomer", PasswordHash: "x", IsActive: true}
				if err := st.CreateUser(context.Background(), &u); err != nil {
					t.Fatalf("CreateUser after the import: %v", err)
				}
				var largest int64
				for _, r := range rep.Results {
					if r.Outcome == djangoimport.Imported {
						largest = max(largest, r.ID)
					}
				}
				if u.ID <= largest {
					t.Errorf("a user created after the import got id %d, want above %d (the largest imported)", u.ID, largest)
				}
			})
		}
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameUser(a, b store.User) bool {
	return a.ID == b.ID && a.Username == b.Username && a.PasswordHash == b.PasswordHash && a.Email == b.Email &&
		a.FirstName == b.FirstName && a.LastName == b.LastName && a.IsActive == b.IsActive && a.IsStaff == b.IsStaff &&
		a.IsSuperuser == b.IsSuperuser && a.DateJoined.Equal(b.DateJoined) &&
		(a.LastLogin == nil) == (b.LastLogin == nil) && (a.LastLogin == nil || a.LastLogin.Equal(*b.LastLogin))
}

// checkImported compares the imported users with djangotest.DemoUsers field by field.
func checkImported(t *testing.T, st *store.Store) {
	t.Helper()
	for _, d := range djangotest.DemoUsers() {
		if wantOutcomes[d.Username] != djangoimport.Imported {
			continue
		}
		got, err := st.UserByID(context.Background(), d.ID)
		if err != nil {
			t.Errorf("user %d (%s): %v", d.ID, d.Username, err)
			continue
		}
		want := store.User{
			ID: d.ID, Username: d.Username, FirstName: d.FirstName, LastName: d.LastName, Email: d.Email,
			PasswordHash: d.Password, IsActive: d.IsActive, IsStaff: d.IsStaff, IsSuperuser: d.IsSuperuser,
			DateJoined: d.DateJoined, LastLogin: d.LastLogin,
		}
		if !sameUser(got, want) {
			t.Errorf("imported user %d:\n got %+v\nwant %+v", d.ID, got, want)
		}
	}
	// The hashes verify as they are.
	root, err := st.UserByUsername(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := password.NewHasher(password.FastParams(), password.Limit{}).Verify(context.Background(), djangotest.Password, root.PasswordHash)
	if err != nil || !ok {
		t.Errorf("root's imported hash does not verify: %v, %v", ok, err)
	}
}

// TestImportClashes: users already here are never merged with Django's: a username equal
// ignoring case, the same username under another id, or an id taken by another user are each
// reported, and the rest is imported.
func TestImportClashes(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, backend)
			ctx := context.Background()
			for _, u := range []store.User{
				{Username: "admin"},     // id 1: Django's root has id 1
				{Username: "ALICE"},     // id 2: Django's alice, ignoring case
				{Username: "x"},         // id 3
				{Username: "s"},         // id 4
				{Username: "x5"},        // id 5
				{Username: "x6"},        // id 6
				{Username: "x7"},        // id 7
				{Username: "x8"},        // id 8
				{Username: "staff"},     // id 9: the same username as Django's id 2
				{Username: "unrelated"}, // id 10
			} {
				u.PasswordHash, u.IsActive = "x", true
				if err := st.CreateUser(ctx, &u); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.DeleteUser(ctx, 5); err != nil { // frees Django's Bob's id
				t.Fatal(err)
			}
			src := mustOpen(t, djangotest.SQLite(t, djangotest.DemoUsers()))
			rep := mustImport(t, src, st, djangoimport.Options{})
			want := map[string]string{
				"root":  "its id 1 belongs to user \"admin\"",
				"staff": "a different user \"staff\" (id 9) exists here",
				"alice": "equals that of user \"ALICE\" (id 2) here ignoring case",
				"eve":   "its id 4 belongs to user \"s\"",
				"bob":   "equals that of Django user \"Bob\" (id 5)",
			}
			for _, r := range rep.Results {
				reason, clash := want[r.Username]
				switch {
				case clash && (r.Outcome != djangoimport.Clashed || !strings.Contains(r.Reason, reason)):
					t.Errorf("%s: %s (%s), want clashed: %s", r.Username, r.Outcome, r.Reason, reason)
				case r.Username == "Bob" && r.Outcome != djangoimport.Imported:
					t.Errorf("Bob: %s (%s), want imported under its free id 5", r.Outcome, r.Reason)
				}
			}
			if u, err := st.UserByID(ctx, 5); err != nil || u.Username != "Bob" {
				t.Errorf("user 5 = %+v, %v; want Django's Bob", u, err)
			}
			if u, err := st.UserByID(ctx, 2); err != nil || u.Username != "ALICE" || u.PasswordHash != "x" {
				t.Errorf("user 2 = %+v, %v; want ALICE as she was", u, err)
			}
		})
	}
}

// TestUserTable: the user table is found by its columns, whatever its name; two candidates or
// none ask for --table; a named table must have the columns.
func TestUserTable(t *testing.T) {
	ctx := context.Background()
	t.Run("custom user model", func(t *testing.T) {
		src := mustOpen(t, djangotest.SQLite(t, nil))
		if got, err := src.UserTable(ctx, ""); err != nil || got != "account_user" {
			t.Errorf("UserTable = %q, %v; want account_user", got, err)
		}
	})
	t.Run("two user tables", func(t *testing.T) {
		src := mustOpen(t, djangotest.SQLite(t, nil, djangotest.SQLiteAuthUser))
		_, err := src.UserTable(ctx, "")
		if err == nil || !strings.Contains(err.Error(), "account_user, auth_user") || !strings.Contains(err.Error(), "--table") {
			t.Errorf("UserTable with two candidates: %v, want an error naming both and --table", err)
		}
		if got, err := src.UserTable(ctx, "auth_user"); err != nil || got != "auth_user" {
			t.Errorf("UserTable(auth_user) = %q, %v", got, err)
		}
	})
	t.Run("not a user table", func(t *testing.T) {
		src := mustOpen(t, djangotest.SQLite(t, nil))
		_, err := src.UserTable(ctx, "auth_group")
		if err == nil || !strings.Contains(err.Error(), "lacks username, password") {
			t.Errorf("UserTable(auth_group): %v, want an error naming the missing columns", err)
		}
		if _, err := src.UserTable(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `no table "nope"`) {
			t.Errorf("UserTable(nope): %v", err)
		}
	})
	t.Run("no user table", func(t *testing.T) {
		src := mustOpen(t, djangotest.SQLite(t, nil, `DROP TABLE "account_user_groups"`, `DROP TABLE "token_blacklist_outstandingtoken"`, `DROP TABLE "account_user"`))
		if _, err := src.UserTable(ctx, ""); err == nil || !strings.Contains(err.Error(), "--table") {
			t.Errorf("UserTable without a user table: %v, want an error asking for --table", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := djangoimport.Open(t.TempDir() + "/db.sqlite3"); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("Open of a missing file: %v", err)
		}
	})
}

// TestImportRaced: a user created here between the reading and the writing makes the import
// write nothing and say so.
func TestImportRaced(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	err := st.ImportUsers(context.Background(), []store.User{
		{ID: 1, Username: "a", PasswordHash: "x", DateJoined: time.Now()},
		{ID: 2, Username: "A", PasswordHash: "x", DateJoined: time.Now()},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ImportUsers of two usernames equal ignoring case: %v, want ErrConflict", err)
	}
	if users := allUsers(t, st); len(users) != 0 {
		t.Errorf("a failed import left %d users", len(users))
	}
}
