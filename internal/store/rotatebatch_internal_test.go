package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// rotationFixture is a SQLite store with one session and the unused refresh tokens ids.
func rotationFixture(t *testing.T, ids ...string) *Store {
	t.Helper()
	st := openSQLite(t, Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := User{Username: "alice", PasswordHash: "x", IsActive: true, DateJoined: t0}
	if err := st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	sess := Session{ID: "s1", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := st.CreateSession(ctx, &sess); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		rt := RefreshToken{ID: id, SessionID: "s1", AccessID: "a-" + id, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := st.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func rotationRequestOf(oldID, nextID string) *rotationRequest {
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	return &rotationRequest{oldID: oldID, now: now, done: make(chan struct{}), wake: func() {},
		next: refreshTokenRow{ID: nextID, AccessID: "a-" + nextID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}
}

// TestRotationBatch runs batches by hand: each request's outcome is what it would have been
// alone in queue order, and a failure fails only its own request.
func TestRotationBatch(t *testing.T) {
	st := rotationFixture(t, "r1", "r2", "r3")
	ctx := context.Background()
	// The same token twice in one batch: the first retires it, the second finds it retired.
	batch := []*rotationRequest{rotationRequestOf("r1", "r1a"), rotationRequestOf("r1", "r1b"), rotationRequestOf("r2", "r2a")}
	st.runRotations(batch)
	for i, want := range []bool{true, false, true} {
		r := batch[i]
		if r.err != nil || r.rotated != want {
			t.Errorf("request %d (%s -> %s): rotated %v, %v; want rotated %v", i, r.oldID, r.next.ID, r.rotated, r.err, want)
		}
	}
	if batch[0].old.SessionID != "s1" || batch[0].old.AccessID != "a-r1" {
		t.Errorf("old token of request 0 = %+v, want r1 of s1", batch[0].old)
	}
	if got, err := st.RefreshTokenByID(ctx, "r1"); err != nil || got.ReplacedBy != "r1a" {
		t.Errorf("r1 = %+v, %v; want replaced by r1a", got, err)
	}
	if _, err := st.RefreshTokenByID(ctx, "r1b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("r1b: %v, want never recorded", err)
	}

	// A replacement whose id is taken fails the batch's transaction: each request runs again
	// alone, and only that one fails.
	batch = []*rotationRequest{rotationRequestOf("r3", "r3a"), rotationRequestOf("r2a", "r1a")}
	st.runRotations(batch)
	if r := batch[0]; r.err != nil || !r.rotated {
		t.Errorf("r3 beside a failing rotation: rotated %v, %v; want rotated", r.rotated, r.err)
	}
	if r := batch[1]; r.err == nil || r.rotated {
		t.Errorf("rotation to a taken id: rotated %v, %v; want an error", r.rotated, r.err)
	}
	if got, err := st.RefreshTokenByID(ctx, "r2a"); err != nil || got.UsedAt != nil {
		t.Errorf("r2a after its failed rotation = %+v, %v; want still unused", got, err)
	}
	for _, r := range batch {
		select {
		case <-r.done:
		default:
			t.Errorf("request %s -> %s not marked done", r.oldID, r.next.ID)
		}
	}
}

// TestRotationCancelledWhileQueued: a rotation whose caller gives up before any batch takes
// it is withdrawn and never runs.
func TestRotationCancelledWhileQueued(t *testing.T) {
	st := rotationFixture(t, "r1")
	queued := onQueued(st)
	hold, err := st.writeTurn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() {
		_, _, err := st.rotateSQLite(ctx, "r1", rotationRequestOf("r1", "r1a").next, time.Now())
		result <- err
	}()
	select { // until it waits for the turn
	case <-queued:
	case err := <-result:
		t.Fatalf("rotation returned (%v) while another writer held the write turn: want it queued behind it", err)
	case <-time.After(turnDeadline):
		t.Fatalf("rotation not queued for the write turn within %v", turnDeadline)
	}
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled rotation: %v, want context.Canceled", err)
		}
	case <-time.After(turnDeadline):
		t.Fatalf("cancelled rotation still waiting after %v", turnDeadline)
	}
	hold()
	if n := len(st.rotations.takeAll()); n != 0 {
		t.Errorf("%d requests still queued, want the cancelled one withdrawn", n)
	}
	if got, err := st.RefreshTokenByID(context.Background(), "r1"); err != nil || got.UsedAt != nil {
		t.Errorf("r1 = %+v, %v; want unused", got, err)
	}
}
