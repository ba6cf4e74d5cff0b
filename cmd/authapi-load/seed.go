package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, for creating and dropping the schema
	"golang.org/x/sync/errgroup"

	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
)

// loadPassword is every seeded user's password.
const loadPassword = "load-benchmark-password"

// staffUser lists users in the list-users scenario.
const staffUser = "staff"

// userName is the seeded user with number n (1-based; the staff user is number 0).
func userName(n int) string { return fmt.Sprintf("user%05d", n) }

// seed creates the staff user and users-1 others in the database at dsn, migrating it first.
// Every user gets the same argon2id hash, made once at the default (real) costs: a login
// still pays the full hash, and seeding 10,000 users takes seconds instead of minutes.
func seed(ctx context.Context, dsn string, users int) error {
	st, err := store.Open(dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	hash, err := password.NewHasher(password.DefaultParams(), password.Limit{}).Hash(ctx, loadPassword)
	if err != nil {
		return err
	}
	// Some concurrency hides PostgreSQL's per-insert round trip; SQLite writes one at a time
	// anyway, and the store waits out the busy ones.
	const workers = 4
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for n := w; n < users; n += workers {
				u := store.User{
					Username: userName(n), FirstName: "Load", LastName: fmt.Sprint(n),
					Email: userName(n) + "@example.com", PasswordHash: hash, IsActive: true,
				}
				if n == 0 {
					u.Username, u.Email, u.IsStaff = staffUser, staffUser+"@example.com", true
				}
				if err := st.CreateUser(ctx, &u); err != nil {
					return fmt.Errorf("seed user %d: %w", n, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A production table has been analysed: the user list's estimates exist.
	return st.AnalyzeUsers(ctx)
}

// postgresSchema creates a fresh schema in the database at base and returns a DSN that
// selects it (search_path) and a function that drops it.
func postgresSchema(ctx context.Context, base string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("PostgreSQL DSN must be a postgres:// URL, got %q", base)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := "authapi_load_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() error {
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
