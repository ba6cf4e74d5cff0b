package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// turnDeadline bounds every wait of these tests: far above what a loaded machine needs, far
// below go test's own timeout, so a broken write turn fails with a message instead of a hang.
const turnDeadline = 30 * time.Second

// onQueued makes st report each writer that joins the queue for the write turn.
func onQueued(st *Store) <-chan struct{} {
	queued := make(chan struct{}, 64)
	st.turns.mu.Lock()
	st.turns.queued = func() { queued <- struct{}{} }
	st.turns.mu.Unlock()
	return queued
}

// waitQueued waits for the next writer to join the queue; finished is the writer's result,
// which must not come while the turn is held.
func waitQueued[E any](t *testing.T, queued <-chan struct{}, finished <-chan E, what string) {
	t.Helper()
	select {
	case <-queued:
	case r := <-finished:
		t.Fatalf("%s: finished (%v) while another writer held the turn: want it queued", what, r)
	case <-time.After(turnDeadline):
		t.Fatalf("%s: not queued for the write turn within %v", what, turnDeadline)
	}
}

// TestWritersInArrivalOrder: while one writer holds the turn, writers 1..8 queue one after
// the other (each known to be queued before the next starts); released, they write in that
// order, which the users' ids record.
func TestWritersInArrivalOrder(t *testing.T) {
	st := openSQLite(t, Options{})
	ctx := context.Background()
	queued := onQueued(st)
	hold, err := st.writeTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	errs := make(chan error, writers)
	for i := 1; i <= writers; i++ {
		go func() {
			u := User{Username: fmt.Sprintf("w%d", i), PasswordHash: "x", IsActive: true, DateJoined: time.Now()}
			errs <- st.CreateUser(ctx, &u)
		}()
		waitQueued(t, queued, errs, fmt.Sprintf("writer %d", i))
	}
	hold()
	for range writers {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(turnDeadline):
			t.Fatalf("writers not done within %v", turnDeadline)
		}
	}
	var last int64
	for i := 1; i <= writers; i++ {
		u, err := st.UserByUsername(ctx, fmt.Sprintf("w%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if u.ID <= last {
			t.Errorf("writer %d wrote id %d, after an id of %d written by a writer that queued before it: want arrival order", i, u.ID, last)
		}
		last = u.ID
	}
}

// TestWriterGivingUpLeavesTheQueue: a queued writer whose context ends returns its error and
// leaves the queue; the others keep their order.
func TestWriterGivingUpLeavesTheQueue(t *testing.T) {
	st := openSQLite(t, Options{})
	ctx := context.Background()
	queued := onQueued(st)
	hold, err := st.writeTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	quit, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() { _, err := st.writeTurn(quit); gaveUp <- err }()
	waitQueued(t, queued, gaveUp, "the writer that gives up")
	next := make(chan func(), 1)
	go func() {
		done, err := st.writeTurn(ctx)
		if err != nil {
			t.Error(err)
			done = func() {}
		}
		next <- done
	}()
	waitQueued(t, queued, next, "the writer after it")
	cancel()
	select {
	case err := <-gaveUp:
		if err != context.Canceled {
			t.Errorf("writer that gave up: %v, want context.Canceled", err)
		}
	case <-time.After(turnDeadline):
		t.Fatal("the writer that gave up is still waiting")
	}
	hold()
	select {
	case done := <-next:
		done()
	case <-time.After(turnDeadline):
		t.Fatal("the writer after the one that gave up never got the turn")
	}
	if _, err := st.PruneAuthChanges(ctx, time.Now()); err != nil { // the turn is free
		t.Fatal(err)
	}
}
