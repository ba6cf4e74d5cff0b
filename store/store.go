// Package store keeps users, sessions and signing keys in SQLite or PostgreSQL.
//
// It owns the domain types (User, Session, SigningKey), the schema migrations
// and the translation of driver errors into the sentinels below. It is the
// only package of authapi that talks to the database.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

var (
	// ErrNotFound means the requested row does not exist. Lookups return it
	// wrapped as ErrUserNotFound or ErrSessionNotFound, so both
	// errors.Is(err, ErrNotFound) and the specific check work.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique key is taken: a username (compared ignoring
	// case), a session ID or a signing key ID.
	ErrConflict = errors.New("conflict")
	// ErrLastSuperuser means the change would leave no administrator: no
	// active staff superuser, nobody able to manage users.
	ErrLastSuperuser = errors.New("last active superuser")

	// ErrUserNotFound is ErrNotFound for a missing user.
	ErrUserNotFound = fmt.Errorf("user: %w", ErrNotFound)
	// ErrSessionNotFound is ErrNotFound for a missing session.
	ErrSessionNotFound = fmt.Errorf("session: %w", ErrNotFound)
)

// Backends, as kept in Store.dialect.
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// sqliteParams make SQLite behave under concurrent requests: WAL lets readers
// run beside the writer, immediate transactions take the write lock at BEGIN
// (so a transaction never fails upgrading a read lock), and the busy timeout
// makes writers queue for up to 5s instead of failing with "database is
// locked".
const sqliteParams = "_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	sqlDB    *sql.DB
	dialect  string
	warnings []string
}

// Open connects to the database named by dsn. A dsn starting with
// postgres:// or postgresql:// selects PostgreSQL; anything else is the path
// of a SQLite file, created if missing. Open does not migrate; call Migrate.
// It returns no sentinels.
//
// The SQLite file holds the signing keys and live session IDs, so Open
// creates a new one with mode 0600 whatever the umask (SQLite gives its
// -wal, -shm and journal files the database file's mode). It refuses an
// existing database file, -wal or -shm that group or others can write, and
// reports one they can read in Warnings.
func Open(dsn string) (*Store, error) {
	var (
		dialector gorm.Dialector
		dialect   string
		warnings  []string
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		dialector, dialect = postgres.Open(dsn), dialectPostgres
	} else {
		if dsn == "" {
			return nil, errors.New("open store: empty sqlite path")
		}
		var err error
		if warnings, err = prepareSQLiteFile(dsn); err != nil {
			return nil, err
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dialector, dialect = sqlite.Open(dsn+sep+sqliteParams), dialectSQLite
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		TranslateError:         true,
		SkipDefaultTransaction: true, // single statements are atomic; multi-step work uses explicit transactions
		NowFunc:                func() time.Time { return utc(time.Now()) },
	})
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	return &Store{db: db, sqlDB: sqlDB, dialect: dialect, warnings: warnings}, nil
}

// Warnings describes what Open found unsafe but not fatal: a SQLite
// database file (or its -wal or -shm) that group or others can read. The
// caller should show them to the operator.
func (s *Store) Warnings() []string {
	return s.warnings
}

// sqliteFilePath returns the file a SQLite dsn names, or "" for an in-memory
// database.
func sqliteFilePath(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == "" || path == ":memory:" || strings.Contains("&"+query+"&", "&mode=memory&") {
		return ""
	}
	return path
}

// prepareSQLiteFile creates the database file of dsn with mode 0600 if it
// does not exist, so that the driver never creates it under the umask. For
// an existing file it refuses group or other write permission on the file,
// its -wal or its -shm, and returns a warning for each that they can read.
func prepareSQLiteFile(dsn string) (warnings []string, err error) {
	path := sqliteFilePath(dsn)
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		// The umask may have taken bits from 0600 (an umask of 0277 leaves
		// 0400, which SQLite cannot write); set exactly 0600.
		err = f.Chmod(0o600)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("open sqlite store: create %s: %w", path, err)
		}
		return nil, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open sqlite store: create %s: %w", path, err)
	}
	// The -wal and -shm hold recent writes too; a file left from an older
	// mode keeps it.
	var writable, readable []string
	modes := map[string]fs.FileMode{}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open sqlite store: %w", err)
		}
		modes[p] = info.Mode().Perm()
		switch {
		case modes[p]&0o022 != 0:
			writable = append(writable, p)
		case modes[p]&0o044 != 0:
			readable = append(readable, p)
		}
	}
	if len(writable) > 0 {
		return nil, fmt.Errorf("open sqlite store: refusing %s: mode %04o lets other users write it (and so forge tokens); run: chmod 600 %s",
			writable[0], modes[writable[0]], strings.Join(append(writable, readable...), " "))
	}
	for _, p := range readable {
		warnings = append(warnings, fmt.Sprintf("%s has mode %04o: other users can read the signing keys and sessions in it; run: chmod 600 %s",
			p, modes[p], p))
	}
	return warnings, nil
}

// Close closes the database connections. It returns no sentinels.
func (s *Store) Close() error {
	return s.sqlDB.Close()
}

// Ping checks that the database is reachable. It returns no sentinels.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

// dbErr turns a driver error, already translated by gorm, into the store's
// sentinels. notFound is what gorm.ErrRecordNotFound becomes. Other errors
// are wrapped with op.
func dbErr(op string, err error, notFound error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return notFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return ErrConflict
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrLastSuperuser):
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// utc normalises a time for storage: UTC, without a monotonic reading, at
// the microsecond precision PostgreSQL keeps, so both backends return exactly
// what was written.
func utc(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// utcPtr is utc for nullable times.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}

// now is the store's clock for defaults (DateJoined, CreatedAt) the caller
// left zero.
func now() time.Time {
	return utc(time.Now())
}
