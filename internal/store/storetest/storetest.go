// Package storetest gives tests a fresh, migrated store per test, on SQLite
// and, when AUTHAPI_TEST_POSTGRES_DSN is set, on PostgreSQL.
//
// Typical use runs the same test on every backend:
//
//	for _, backend := range storetest.Backends {
//		t.Run(backend, func(t *testing.T) {
//			st := storetest.Open(t, backend)
//			...
//		})
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, for creating and dropping test schemas

	"github.com/authapi/authapi/internal/store"
)

// PostgresEnv names the environment variable holding the DSN of a PostgreSQL
// database the tests may create schemas in, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "AUTHAPI_TEST_POSTGRES_DSN"

// Backends lists the backends Open accepts.
var Backends = []string{"sqlite", "postgres"}

// DSN returns a DSN for an empty database private to t, removed when t ends:
// a SQLite file in t.TempDir(), or a fresh PostgreSQL schema (selected via
// search_path) in the database named by PostgresEnv. Without PostgresEnv a
// "postgres" backend skips t.
func DSN(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case "sqlite":
		return filepath.Join(t.TempDir(), "authapi.db")
	case "postgres":
		return postgresDSN(t)
	}
	t.Fatalf("storetest: unknown backend %q, want one of %v", backend, Backends)
	return ""
}

// Open returns a migrated store on an empty database private to t (see DSN),
// closed when t ends.
func Open(t testing.TB, backend string) *store.Store {
	t.Helper()
	return OpenWithOptions(t, backend, store.Options{})
}

// OpenWithOptions is Open with opts.
func OpenWithOptions(t testing.TB, backend string, opts store.Options) *store.Store {
	t.Helper()
	st, err := store.OpenWithOptions(DSN(t, backend), opts)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", backend, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: close %s: %v", backend, err)
		}
	})
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("storetest: migrate %s: %v", backend, err)
	}
	return st
}

func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv) // test support: the one place below cmd that reads the environment
	if base == "" {
		t.Skip(PostgresEnv + " not set: skipping PostgreSQL")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storetest: %s must be a postgres:// URL, got %q", PostgresEnv, base)
	}

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	trgmOnce.Do(func() { installTrigram(admin) })
	schema := "authapi_test_" + strings.ToLower(rand.Text())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("storetest: create schema: %v", err)
	}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var trgmOnce sync.Once

// installTrigram installs pg_trgm in the database's default schema (public), once, as an
// administrator would, before any test schema exists: the users migration then finds it
// there. Left to the migration, it would go into the first test schema, vanish with it,
// and take the other schemas' trigram indexes along. Without it (not installed on the
// server, no privilege), the migration leaves search unindexed, which tests tolerate.
// The advisory lock keeps test binaries running at once from racing to install it.
func installTrigram(admin *sql.DB) {
	ctx := context.Background()
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		return
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('authapi storetest pg_trgm'))"); err != nil {
		return
	}
	if _, err := tx.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm"); err != nil {
		return
	}
	_ = tx.Commit()
}

// rawDB opens the database dsn names with database/sql, beside any Store on it, for tests
// that must reach under the store: the "sqlite3" driver is registered by the store's SQLite
// driver, "pgx" by this package.
func rawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	driver, source := "sqlite3", dsn+sep+"_busy_timeout=5000"
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		driver, source = "pgx", dsn
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RefuseAuditEvents makes the database dsn (migrated) refuse to write audit events of action
// from now on, as a failing write would: on SQLite with a trigger, on PostgreSQL with a check
// constraint. A test then shows that the change the event describes is rolled back with it.
func RefuseAuditEvents(t testing.TB, dsn, action string) {
	t.Helper()
	db := rawDB(t, dsn)
	name := "refuse_" + strings.ToLower(rand.Text())
	quoted := "'" + strings.ReplaceAll(action, "'", "''") + "'"
	stmt := fmt.Sprintf("ALTER TABLE audit_events ADD CONSTRAINT %s CHECK (action <> %s) NOT VALID", name, quoted)
	if !strings.HasPrefix(dsn, "postgres") {
		stmt = fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT ON audit_events WHEN NEW.action = %s BEGIN SELECT RAISE(ABORT, 'audit event refused'); END", name, quoted)
	}
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("storetest: refuse audit events %q: %v", action, err)
	}
}

// Analyze refreshes the planner's statistics of table in the database dsn names, as
// PostgreSQL's autovacuum would in time.
func Analyze(t testing.TB, dsn, table string) {
	t.Helper()
	if _, err := rawDB(t, dsn).Exec("ANALYZE " + table); err != nil {
		t.Fatalf("storetest: analyze %s: %v", table, err)
	}
}

// Rows returns every row of table in the database dsn names, each as the text of all its
// columns: for tests that look for what must never be stored.
func Rows(t testing.TB, dsn, table string) []string {
	t.Helper()
	rows, err := rawDB(t, dsn).Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("storetest: read %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("storetest: read %s: %v", table, err)
		}
		var b strings.Builder
		for i, v := range vals {
			if b2, ok := v.([]byte); ok {
				v = string(b2)
			}
			fmt.Fprintf(&b, "%s=%v ", cols[i], v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("storetest: read %s: %v", table, err)
	}
	return out
}

// InsertOldFormUser inserts into the migrated database dsn a user as authapi stored one before
// usernames were NFKC-normalised (migration 00009): its username as given, its keys lower-cased
// only. Two such users may collide once normalised, which the store itself would never write.
func InsertOldFormUser(t testing.TB, dsn, username string) {
	t.Helper()
	key := strings.ToLower(username)
	stmt := `INSERT INTO users (username, username_key, first_name, last_name, email, email_key, search_key,
		password_hash, is_active, is_staff, is_superuser, date_joined) VALUES (?, ?, 'Old', 'Form', '', '', ?, 'x', ?, ?, ?, ?)`
	if strings.HasPrefix(dsn, "postgres") {
		for i := 1; strings.Contains(stmt, "?"); i++ {
			stmt = strings.Replace(stmt, "?", "$"+strconv.Itoa(i), 1)
		}
	}
	if _, err := rawDB(t, dsn).Exec(stmt, username, key, key+"\nold\nform\n", true, false, false, time.Now().UTC()); err != nil {
		t.Fatalf("storetest: insert old-form user %q: %v", username, err)
	}
}
