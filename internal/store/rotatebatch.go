package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// On SQLite every rotation needs the one writer connection, and under load the time a
// rotation held it was mostly waiting: for BEGIN and COMMIT (WAL writes and locks) and for a
// CPU to run on again after each of them. So rotations combine: each queues its request and
// waits for the writer's turn; whoever gets the turn first runs every queued rotation in one
// transaction, in queue order, and hands each its outcome. Alone, a rotation is its own batch.
// The outcome of each is what it would have been alone in that order: a later rotation of a
// token an earlier one retired in the same batch finds it retired.

// rotationRequest is one queued rotation and, once done is closed, its outcome.
type rotationRequest struct {
	oldID string
	next  refreshTokenRow
	now   time.Time

	done    chan struct{}      // closed when the outcome is set
	wake    context.CancelFunc // ends the request's wait for the writer's turn
	taken   bool               // a batch has taken it (under rotationQueue.mu)
	old     RefreshToken
	rotated bool
	err     error
}

type rotationQueue struct {
	mu      sync.Mutex
	pending []*rotationRequest
}

func (q *rotationQueue) push(r *rotationRequest) {
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
}

// takeAll returns the queued requests and marks them taken.
func (q *rotationQueue) takeAll() []*rotationRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = nil
	for _, r := range batch {
		r.taken = true
	}
	return batch
}

// withdraw removes r if no batch has taken it yet, and reports whether it did.
func (q *rotationQueue) withdraw(r *rotationRequest) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r.taken {
		return false
	}
	for i, p := range q.pending {
		if p == r {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			break
		}
	}
	return true
}

func (s *Store) rotateSQLite(ctx context.Context, oldID string, next refreshTokenRow, now time.Time) (RefreshToken, bool, error) {
	waitCtx, wake := context.WithCancel(ctx)
	defer wake()
	req := &rotationRequest{oldID: oldID, next: next, now: now, done: make(chan struct{}), wake: wake}
	s.rotations.push(req)
	// Wait for the turn; a batch that runs this request meanwhile wakes it.
	release, err := s.writeTurn(waitCtx)
	if err == nil {
		select {
		case <-req.done: // an earlier batch ran it
		default:
			s.runRotations(s.rotations.takeAll())
		}
		release()
	} else if ctx.Err() != nil && s.rotations.withdraw(req) {
		return RefreshToken{}, false, ctx.Err()
	}
	<-req.done // taken by a batch: it finishes
	return req.old, req.rotated, req.err
}

// runRotations runs batch in one transaction; if anything in it fails, it runs each rotation
// in its own, so that one failure fails only its own request. It holds the writer's turn.
func (s *Store) runRotations(batch []*rotationRequest) {
	if len(batch) == 0 {
		return
	}
	if len(batch) > 1 {
		if s.rotateInTx(batch) == nil {
			finish(batch)
			return
		}
	}
	for _, r := range batch {
		r.err = s.rotateInTx([]*rotationRequest{r})
	}
	finish(batch)
}

func finish(batch []*rotationRequest) {
	for _, r := range batch {
		close(r.done)
		r.wake()
	}
}

// rotateInTx rotates every request of batch in one immediate transaction, setting each
// request's old token and rotated flag; it commits only if all succeed. Not a request's
// context: one caller hanging up must not undo the others' rotations.
func (s *Store) rotateInTx(batch []*rotationRequest) error {
	ctx := context.Background()
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range batch {
		r.old, r.rotated = RefreshToken{}, false
		err = tx.QueryRowContext(ctx, retireRefreshTokenSQL, r.now, r.next.ID, r.oldID).
			Scan(&r.old.SessionID, &r.old.AccessID, &r.old.IssuedAt, &r.old.ExpiresAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue // unknown or already retired: not rotated
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, insertRefreshTokenSQL, r.next.ID, r.old.SessionID, r.next.AccessID, r.next.IssuedAt, r.next.ExpiresAt)
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, extendSessionSQL, r.next.ExpiresAt, r.now, r.old.SessionID)
		}
		if err != nil {
			tx.Rollback()
			return err
		}
		r.rotated = true
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return nil
}
