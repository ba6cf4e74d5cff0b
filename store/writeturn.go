package store

import (
	"context"

	"golang.org/x/sync/semaphore"
	"gorm.io/gorm"
)

// SQLite writes through one connection, and database/sql hands a freed connection to a
// random waiter: under load some writes waited dozens of turns while others went at once
// (refresh p99 five times p50). writeTurn queues writers in arrival order in front of the
// pool instead, so at most one of them waits inside it. PostgreSQL needs no turn: its pool
// has many connections and its rows are locked one by one.

// newWriteTurns returns the queue for a store writing through one connection.
func newWriteTurns() *semaphore.Weighted { return semaphore.NewWeighted(1) }

// writeTurn waits for the writers that asked before it, and returns the function that
// hands the turn on. It returns ctx's error if ctx ends first.
func (s *Store) writeTurn(ctx context.Context) (done func(), err error) {
	if s.turns == nil {
		return func() {}, nil
	}
	if err := s.turns.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func() { s.turns.Release(1) }, nil
}

// transaction runs fn in a transaction on the writer, in its turn.
func (s *Store) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.db.WithContext(ctx).Transaction(fn)
}

// write runs fn, one statement on the writer, in its turn. The result carries the turn's
// error if ctx ended first.
func (s *Store) write(ctx context.Context, fn func(db *gorm.DB) *gorm.DB) *gorm.DB {
	db := s.db.WithContext(ctx)
	done, err := s.writeTurn(ctx)
	if err != nil {
		db.AddError(err)
		return db
	}
	defer done()
	return fn(db)
}
