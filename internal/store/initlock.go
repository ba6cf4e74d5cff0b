package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Init brings the schema up to date and then runs fn (if not nil), holding a lock that
// serialises Init across every process sharing the database: of several processes starting
// at once on an empty database, one applies the migrations and, in fn, creates what a first
// start creates (the first superuser, the first signing key), and the others find it done.
// fn must not call Init or Migrate. It returns fn's error as is, and no sentinels of its own.
//
// On PostgreSQL the lock is a session advisory lock per schema (the migrations are per
// schema), taken on a connection of its own, outside the pool, so that fn may use the whole
// pool; it is released when Init returns, or by PostgreSQL when the process dies. On SQLite
// Init takes no lock: a SQLite database is served by one process.
func (s *Store) Init(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.dialect == dialectPostgres {
		unlock, err := s.lockInit(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	return fn(ctx)
}

// lockInit waits for Init's advisory lock on a new connection, and returns the function that
// releases it by closing the connection.
func (s *Store) lockInit(ctx context.Context) (unlock func(), err error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return nil, fmt.Errorf("init lock: %w", err)
	}
	closeConn := func() { conn.Close(context.WithoutCancel(ctx)) }
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext(current_schema()))", lockInit); err != nil {
		closeConn()
		return nil, fmt.Errorf("init lock: %w", err)
	}
	return closeConn, nil
}
