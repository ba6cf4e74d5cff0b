// Package djangoimport brings the users of a Django project (the demo authapi replaces) into
// authapi: it finds the user table in the Django database, SQLite or PostgreSQL, reads the
// users with their password hashes as they are (authapi verifies Django's formats and rehashes
// at the next login), and imports those that are new, keeping their IDs.
//
// It reads the Django database with database/sql and plain SQL rather than through the store:
// the store persists authapi's own schema and is the only user of gorm, while this package is
// the only code that knows Django's schema. Everything it writes goes through the store.
package djangoimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, for a PostgreSQL source
	_ "github.com/mattn/go-sqlite3"    // "sqlite3" driver, for a SQLite source
)

// userColumns are the columns of a Django user table (AbstractUser's fields) that the import
// reads; a table with all of them is taken for one.
var userColumns = []string{
	"id", "username", "password", "first_name", "last_name", "email",
	"is_active", "is_staff", "is_superuser", "date_joined", "last_login",
}

// Source is an open Django database, read only.
type Source struct {
	db       *sql.DB
	postgres bool
	name     string // for messages: the file, or the DSN without its password
}

// Open opens the Django database src: a postgres:// or postgresql:// URL, or the path of an
// existing SQLite file, which it opens read-only.
func Open(src string) (*Source, error) {
	if strings.HasPrefix(src, "postgres://") || strings.HasPrefix(src, "postgresql://") {
		u, err := url.Parse(src)
		if err != nil {
			return nil, errors.New("django database: not a valid postgres URL") // the error would quote the password
		}
		db, err := sql.Open("pgx", src)
		if err != nil {
			return nil, fmt.Errorf("django database %s: %w", u.Redacted(), err)
		}
		return &Source{db: db, postgres: true, name: u.Redacted()}, nil
	}
	info, err := os.Stat(src)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("django database %s: no such file (give the demo's db.sqlite3, or a postgres:// URL)", src)
	case err != nil:
		return nil, fmt.Errorf("django database: %w", err)
	case info.IsDir():
		return nil, fmt.Errorf("django database %s: a directory, not a SQLite file", src)
	}
	// A file: URI, so that mode=ro applies, with the path escaped as a URI's.
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: src}).EscapedPath()+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("django database %s: %w", src, err)
	}
	return &Source{db: db, name: src}, nil
}

// Name names the database in messages, without a password.
func (s *Source) Name() string { return s.name }

// Close closes the database.
func (s *Source) Close() error { return s.db.Close() }

// quote quotes an SQL identifier, in the syntax SQLite and PostgreSQL share.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// UserTable returns the user table: table if it is not empty (checking that it has the
// columns of a Django user table), else the one table that has them. None, or several, is an
// error that asks for table to be given.
func (s *Source) UserTable(ctx context.Context, table string) (string, error) {
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'`
	if s.postgres {
		q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return "", fmt.Errorf("read the schema of %s: %w", s.name, err)
	}
	defer rows.Close()
	columns := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return "", fmt.Errorf("read the schema of %s: %w", s.name, err)
		}
		columns[t] = append(columns[t], c)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read the schema of %s: %w", s.name, err)
	}
	missing := func(t string) []string {
		var out []string
		for _, c := range userColumns {
			if !slices.Contains(columns[t], c) {
				out = append(out, c)
			}
		}
		return out
	}
	if table != "" {
		if _, ok := columns[table]; !ok {
			return "", fmt.Errorf("%s has no table %q", s.name, table)
		}
		if m := missing(table); len(m) > 0 {
			return "", fmt.Errorf("table %q of %s is not a Django user table: it lacks %s", table, s.name, strings.Join(m, ", "))
		}
		return table, nil
	}
	var found []string
	for t := range columns {
		if len(missing(t)) == 0 {
			found = append(found, t)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s has no table with the columns of a Django user table (%s); name it with --table",
			s.name, strings.Join(userColumns, ", "))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s has several tables that look like a Django user table (%s); choose one with --table",
		s.name, strings.Join(found, ", "))
}

// User is one row of the Django user table.
type User struct {
	ID                             int64
	Username                       string
	Password                       string // Django's encoded hash, e.g. pbkdf2_sha256$...
	FirstName, LastName, Email     string
	IsActive, IsStaff, IsSuperuser bool
	DateJoined                     time.Time
	LastLogin                      *time.Time
}

// Users reads every row of the user table (see UserTable), in ID order.
func (s *Source) Users(ctx context.Context, table string) ([]User, error) {
	cols := make([]string, len(userColumns))
	for i, c := range userColumns {
		cols[i] = quote(c)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+quote(table)+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var (
			u                                      User
			first, last, email                     sql.NullString
			active, staff, superuser, joined, seen any
		)
		if err := rows.Scan(&u.ID, &u.Username, &u.Password, &first, &last, &email, &active, &staff, &superuser, &joined, &seen); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		u.FirstName, u.LastName, u.Email = first.String, last.String, email.String
		for _, f := range []struct {
			name string
			v    any
			p    *bool
		}{{"is_active", active, &u.IsActive}, {"is_staff", staff, &u.IsStaff}, {"is_superuser", superuser, &u.IsSuperuser}} {
			if *f.p, err = toBool(f.v); err != nil {
				return nil, fmt.Errorf("read %s: user %d: %s: %w", table, u.ID, f.name, err)
			}
		}
		t, err := toTime(joined)
		if err != nil || t == nil {
			return nil, fmt.Errorf("read %s: user %d: date_joined: %v", table, u.ID, cmpErr(err, "empty"))
		}
		u.DateJoined = *t
		if u.LastLogin, err = toTime(seen); err != nil {
			return nil, fmt.Errorf("read %s: user %d: last_login: %w", table, u.ID, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}

func cmpErr(err error, otherwise string) any {
	if err != nil {
		return err
	}
	return otherwise
}

// toBool reads a boolean column: PostgreSQL's boolean, or SQLite's 0 and 1 (Django's "bool"
// columns there hold integers).
func toBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case int64:
		return b != 0, nil
	case []byte:
		return strconv.ParseBool(string(b))
	case string:
		return strconv.ParseBool(b)
	}
	return false, fmt.Errorf("not a boolean: %T", v)
}

// djangoTimeLayouts are how Django writes a datetime into SQLite: UTC (with USE_TZ, the
// default), without a zone, microseconds when not zero.
var djangoTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
}

// toTime reads a datetime column: a time from the driver, or Django's text in SQLite. NULL is
// nil.
func toTime(v any) (*time.Time, error) {
	var s string
	switch t := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		u := t.UTC()
		return &u, nil
	case []byte:
		s = string(t)
	case string:
		s = t
	default:
		return nil, fmt.Errorf("not a datetime: %T", v)
	}
	for _, layout := range djangoTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			u := t.UTC()
			return &u, nil
		}
	}
	return nil, fmt.Errorf("not a datetime: %q", s)
}
