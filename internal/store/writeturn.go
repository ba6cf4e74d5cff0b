package store

import (
	"context"
	"slices"
	"sync"

	"gorm.io/gorm"
)

// SQLite writes through one connection, and database/sql hands a freed connection to a
// random waiter: under load some writes waited dozens of turns while others went at once
// (refresh p99 five times p50). writeTurns queues writers in arrival order in front of the
// pool instead, so at most one of them waits inside it. PostgreSQL needs no turn: its pool
// has many connections and its rows are locked one by one.
type writeTurns struct {
	mu      sync.Mutex
	taken   bool
	waiting []chan struct{} // in arrival order; closing one hands its writer the turn
	queued  func()          // tests: called once a writer is in waiting
}

// newWriteTurns returns the queue for a store writing through one connection.
func newWriteTurns() *writeTurns { return &writeTurns{} }

// acquire takes the turn, after every writer that asked before; it returns ctx's error if
// ctx ends first.
func (w *writeTurns) acquire(ctx context.Context) error {
	w.mu.Lock()
	if !w.taken {
		w.taken = true
		w.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	w.waiting = append(w.waiting, turn)
	queued := w.queued
	w.mu.Unlock()
	if queued != nil {
		queued()
	}
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	if i := slices.Index(w.waiting, turn); i >= 0 {
		w.waiting = slices.Delete(w.waiting, i, i+1)
		w.mu.Unlock()
		return ctx.Err()
	}
	w.mu.Unlock()
	w.release() // handed the turn as ctx ended: pass it on
	return ctx.Err()
}

// release hands the turn to the writer that has waited longest, if any.
func (w *writeTurns) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiting) == 0 {
		w.taken = false
		return
	}
	next := w.waiting[0]
	w.waiting = slices.Delete(w.waiting, 0, 1)
	close(next)
}

// writeTurn waits for the writers that asked before it, and returns the function that
// hands the turn on. It returns ctx's error if ctx ends first.
func (s *Store) writeTurn(ctx context.Context) (done func(), err error) {
	if s.turns == nil {
		return func() {}, nil
	}
	if err := s.turns.acquire(ctx); err != nil {
		return nil, err
	}
	return s.turns.release, nil
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
