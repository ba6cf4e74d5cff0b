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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
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
	// ErrPasswordChanged means the user's password hash is no longer the one the caller
	// checked a password against: the password was changed (or rehashed) meanwhile.
	ErrPasswordChanged = errors.New("password changed")

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
// makes a writer of another process (a CLI command beside the server) queue
// for up to 5s instead of failing with "database is locked". Within one
// Store writes never wait on SQLite's lock: they share one connection.
const sqliteParams = "_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"

// writerStmtCacheSize bounds the SQLite writer's prepared statements: the store's writes
// are a few dozen distinct statements.
const writerStmtCacheSize = 128

// sqliteReaderParams are added for the reader connections: query_only makes
// SQLite refuse any write on them, so a write sent to the wrong handle fails
// instead of taking the lock beside the writer.
const sqliteReaderParams = "_query_only=true"

// Options tune how Open connects. A zero field takes its default; see
// DefaultOptions.
type Options struct {
	// MaxOpenConns caps the connections of the PostgreSQL pool, and of
	// SQLite's pool of readers (SQLite always writes through one connection).
	MaxOpenConns int
	// MaxIdleConns is how many of those connections stay open while idle, so
	// that a burst of requests finds them warm; a negative value keeps none.
	// It is capped at MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime closes a connection this long after it was opened (for
	// PostgreSQL, so that connections move to a new server after a failover
	// and the server's per-backend memory is returned); negative means never.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes a connection idle for this long; negative means
	// never.
	ConnMaxIdleTime time.Duration
	// SQLiteSynchronous is SQLite's synchronous setting: SyncNormal or
	// SyncFull. PostgreSQL ignores it.
	SQLiteSynchronous string
	// RotationCommit is how a refresh-token rotation commits on PostgreSQL: CommitSync or
	// CommitAsync. SQLite ignores it (SQLiteSynchronous covers every write there).
	RotationCommit string
	// ExactCountMax is how many matches a user listing counts exactly on PostgreSQL (see
	// UserPage); past it, the total is the planner's estimate. SQLite always counts.
	ExactCountMax int
}

// DefaultExactCountMax is Options.ExactCountMax's default.
const DefaultExactCountMax = 1000

// Rotation commit settings (see Options.RotationCommit).
const (
	// CommitSync makes a rotation wait for the disk like every other write (the default).
	CommitSync = "sync"
	// CommitAsync answers a rotation before its WAL record is on disk (PostgreSQL's
	// synchronous_commit off for that transaction alone; the WAL writer flushes it within
	// three wal_writer_delay, 600 ms by default). A crash of the PostgreSQL server in that
	// window loses the rotation: its new refresh token stops working and the old one is
	// usable again. For disks whose flushes are slow; every other write still waits for them.
	CommitAsync = "async"
)

// SQLite synchronous settings (see Options.SQLiteSynchronous).
const (
	// SyncNormal syncs the WAL at checkpoints only: a committed write
	// survives a crash of the process, but the last ones before a power loss
	// or an operating-system crash may be lost.
	SyncNormal = "normal"
	// SyncFull syncs the WAL at every commit: a committed write survives a
	// power loss too, at the cost of one fsync per write.
	SyncFull = "full"
)

// DefaultOptions returns the options a zero field stands for: 16 open
// connections, all kept idle, recycled after 30 minutes or 5 minutes idle,
// and SQLite's synchronous NORMAL.
func DefaultOptions() Options {
	return Options{
		MaxOpenConns:      16,
		MaxIdleConns:      16,
		ConnMaxLifetime:   30 * time.Minute,
		ConnMaxIdleTime:   5 * time.Minute,
		SQLiteSynchronous: SyncNormal,
		RotationCommit:    CommitSync,
		ExactCountMax:     DefaultExactCountMax,
	}
}

// withDefaults fills zero fields from DefaultOptions and checks the result.
func (o Options) withDefaults() (Options, error) {
	def := DefaultOptions()
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = def.MaxOpenConns
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = o.MaxOpenConns
	}
	if o.ConnMaxLifetime == 0 {
		o.ConnMaxLifetime = def.ConnMaxLifetime
	}
	if o.ConnMaxIdleTime == 0 {
		o.ConnMaxIdleTime = def.ConnMaxIdleTime
	}
	if o.SQLiteSynchronous == "" {
		o.SQLiteSynchronous = def.SQLiteSynchronous
	}
	o.SQLiteSynchronous = strings.ToLower(o.SQLiteSynchronous)
	if o.RotationCommit == "" {
		o.RotationCommit = def.RotationCommit
	}
	o.RotationCommit = strings.ToLower(o.RotationCommit)
	if o.ExactCountMax == 0 {
		o.ExactCountMax = def.ExactCountMax
	}
	switch {
	case o.MaxOpenConns < 0:
		return o, fmt.Errorf("max open connections %d: must be at least 1", o.MaxOpenConns)
	case o.SQLiteSynchronous != SyncNormal && o.SQLiteSynchronous != SyncFull:
		return o, fmt.Errorf("sqlite synchronous %q: want %q or %q", o.SQLiteSynchronous, SyncNormal, SyncFull)
	case o.RotationCommit != CommitAsync && o.RotationCommit != CommitSync:
		return o, fmt.Errorf("rotation commit %q: want %q or %q", o.RotationCommit, CommitAsync, CommitSync)
	case o.ExactCountMax < 0:
		return o, fmt.Errorf("exact count max %d: must be at least 1", o.ExactCountMax)
	}
	o.MaxIdleConns = min(o.MaxIdleConns, o.MaxOpenConns)
	return o, nil
}

// configure applies the pool settings to db. A negative duration or idle
// count is database/sql's "no limit" or "none".
func (o Options) configure(db *sql.DB) {
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
}

// Store is a handle on the database. It is safe for concurrent use.
//
// Every write and every transaction goes through db; reads outside a
// transaction go through read. On PostgreSQL both are the same pool. On
// SQLite db is a single connection, so writers wait for it in Go rather than
// contend for the database lock (whose losers sleep in SQLite's back-off),
// and read is a pool of query-only connections that WAL lets run beside it; a
// read sees every transaction committed before it began. Code holding a
// transaction must therefore use only it, or read: on SQLite, anything else
// through db would wait forever for the connection the transaction holds.
type Store struct {
	db, read         *gorm.DB
	sqlDB, readSQLDB *sql.DB // readSQLDB is sqlDB when they are one pool
	dialect          string
	warnings         []string
	rekeyCollisions  []UsernameCollision           // found by migration 00009, if this Store applied it
	watchers         watchers[int64]               // users' changes
	clientWatchers   watchers[string]              // API clients' changes
	dsn              string                        // PostgreSQL only, for ListenAuthChanges
	turns            *writeTurns                   // SQLite only: see writeTurn
	readStmts        sync.Map                      // query -> *sql.Stmt on readSQLDB: see queryRow
	rotateSQL        string                        // the rotation statement, as Options.RotationCommit says
	rotateLiveSQL    string                        // and RotateLiveRefreshToken's
	rotations        rotationQueue                 // SQLite only: see rotateSQLite
	avail            *availability                 // see ErrUnavailable
	exactCountMax    int                           // PostgreSQL only: see Options.ExactCountMax
	usersEstimate    atomic.Pointer[tableEstimate] // PostgreSQL only: see usersTableEstimate
}

// Open is OpenWithOptions with the default options. It returns no sentinels.
func Open(dsn string) (*Store, error) {
	return OpenWithOptions(dsn, Options{})
}

// OpenWithOptions connects to the database named by dsn. A dsn starting with
// postgres:// or postgresql:// selects PostgreSQL; anything else is the path
// of a SQLite file, created if missing. It does not migrate; call Migrate.
// It returns no sentinels.
//
// The SQLite file holds the signing keys and live session IDs, so it
// creates a new one with mode 0600 whatever the umask (SQLite gives its
// -wal, -shm and journal files the database file's mode). It refuses an
// existing database file, -wal or -shm that group or others can write, and
// reports one they can read in Warnings.
//
// On PostgreSQL, pgx caches each connection's prepared statements (unless
// the dsn asks for another default_query_exec_mode); on SQLite the Store
// caches the readers' statements.
func OpenWithOptions(dsn string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		avail := newAvailability()
		db, sqlDB, err := openGorm(classifyingPostgres{postgres.Open(dsn).(*postgres.Dialector), avail}, dialectPostgres, false)
		if err != nil {
			return nil, err
		}
		opts.configure(sqlDB)
		rotate, rotateLive := rotatePostgresSQL, rotateLivePostgresSQL
		if opts.RotationCommit == CommitAsync {
			rotate, rotateLive = rotatePostgresAsyncSQL, rotateLivePostgresAsyncSQL
		}
		st := &Store{db: db, read: db, sqlDB: sqlDB, readSQLDB: sqlDB, dialect: dialectPostgres, dsn: dsn,
			rotateSQL: rotate, rotateLiveSQL: rotateLive, avail: avail, exactCountMax: opts.ExactCountMax}
		avail.probe = st.probeAvailable
		return st, nil
	}
	if dsn == "" {
		return nil, errors.New("open store: empty sqlite path")
	}
	warnings, err := prepareSQLiteFile(dsn)
	if err != nil {
		return nil, err
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// The dsn's own parameters come first, and the driver takes the first
	// value of a parameter given twice, so a path such as "a.db?_sync=FULL"
	// keeps working.
	writerDSN := dsn + sep + sqliteParams + "&_synchronous=" + opts.SQLiteSynchronous
	// The writer caches its statements in the driver, per connection: every write goes
	// through its one connection, so re-preparing would lengthen the time others queue for
	// it. Not gorm's cache: it makes a statement first prepared outside a transaction wait
	// for a connection while holding the cache entry that a transaction on the one connection
	// may wait for, a deadlock.
	avail := newAvailability()
	db, sqlDB, err := openGorm(sqliteDialector(writerDSN+"&_stmt_cache_size="+strconv.Itoa(writerStmtCacheSize), avail), dialectSQLite, false)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	st := &Store{db: db, read: db, sqlDB: sqlDB, readSQLDB: sqlDB, dialect: dialectSQLite, warnings: warnings, turns: newWriteTurns(),
		avail: avail}
	if sqliteFilePath(dsn) == "" {
		// Every connection to an in-memory database has a database of its
		// own: the writer's one connection must do the reading too.
		avail.probe = st.probeAvailable
		return st, nil
	}
	// The writer connects first, so the file is in WAL mode before a
	// query-only reader opens it.
	if err := sqlDB.Ping(); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	read, readSQLDB, err := openGorm(sqliteDialector(writerDSN+"&"+sqliteReaderParams, avail), dialectSQLite, true)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	opts.configure(readSQLDB)
	st.read, st.readSQLDB = read, readSQLDB
	avail.probe = st.probeAvailable
	return st, nil
}

// sqliteDriverName is the SQLite driver with the store's own SQL functions on every
// connection.
const sqliteDriverName = "authapi_sqlite3"

func init() {
	sql.Register(sqliteDriverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		// Folds case as the store's keys are folded (username_key and the others): SQLite's
		// lower() folds ASCII letters only. Migrations use it to fill keys in SQL.
		return c.RegisterFunc("authapi_lower", strings.ToLower, true)
	}})
}

func sqliteDialector(dsn string, avail *availability) gorm.Dialector {
	return classifyingSQLite{sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: dsn}).(*sqlite.Dialector), avail}
}

// openGorm opens one pool. prepare turns on gorm's statement cache, for
// drivers that have none of their own.
func openGorm(dialector gorm.Dialector, dialect string, prepare bool) (*gorm.DB, *sql.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		TranslateError:         true,
		SkipDefaultTransaction: true, // single statements are atomic; multi-step work uses explicit transactions
		NowFunc:                func() time.Time { return utc(time.Now()) },
		PrepareStmt:            prepare,
		// The store's statements differ only by the number of values of an
		// IN list; the bound keeps even that from growing the cache.
		PrepareStmtMaxSize: 256,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	return db, sqlDB, nil
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
	s.avail.close()
	s.closeReadStmts()
	var err error
	if s.readSQLDB != s.sqlDB {
		err = s.readSQLDB.Close()
	}
	return errors.Join(s.sqlDB.Close(), err)
}

// Ping checks that the database is reachable. It returns no sentinels.
func (s *Store) Ping(ctx context.Context) error {
	err := s.sqlDB.PingContext(ctx)
	if err == nil && s.readSQLDB != s.sqlDB {
		err = s.readSQLDB.PingContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

// PoolStats returns the statistics of each connection pool, by name: "postgres", or on
// SQLite "sqlite_write" (the one writer connection) and "sqlite_read" (the readers).
func (s *Store) PoolStats() map[string]sql.DBStats {
	if s.dialect == dialectPostgres {
		return map[string]sql.DBStats{"postgres": s.sqlDB.Stats()}
	}
	out := map[string]sql.DBStats{"sqlite_write": s.sqlDB.Stats()}
	if s.readSQLDB != s.sqlDB {
		out["sqlite_read"] = s.readSQLDB.Stats()
	}
	return out
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
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrLastSuperuser),
		errors.Is(err, ErrPasswordChanged):
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
