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
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
}

// Open connects to the database named by dsn. A dsn starting with
// postgres:// or postgresql:// selects PostgreSQL; anything else is the path
// of a SQLite file, created if missing. Open does not migrate; call Migrate.
// It returns no sentinels.
func Open(dsn string) (*Store, error) {
	var (
		dialector gorm.Dialector
		dialect   string
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		dialector, dialect = postgres.Open(dsn), dialectPostgres
	} else {
		if dsn == "" {
			return nil, errors.New("open store: empty sqlite path")
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
	return &Store{db: db, sqlDB: sqlDB, dialect: dialect}, nil
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
