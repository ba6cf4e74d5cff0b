package ssf_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
)

// logouts revokes n sessions of a new user, one by one.
func (in *instance) logouts(t *testing.T, n int) {
	t.Helper()
	u := in.user(t, "p@example.test")
	for range n {
		s := in.session(t, u)
		if _, err := in.st.RevokeSession(context.Background(), s.ID, time.Now(), audit.Source{ActorID: u.ID}.Event(audit.Logout)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPollSemantics covers RFC 8936 section 2.4 and 2.5: maxEvents and moreAvailable,
// redelivery of unacknowledged SETs with the same jti and bytes, acknowledgement, setErrs,
// maxEvents 0, returnImmediately.
func TestPollSemantics(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			in := newEnv(t, backend, ssf.Config{})
			ctx := context.Background()
			st := in.stream(t, "c", ssf.StreamInput{})
			in.logouts(t, 5)

			first := in.pollNow(t, "c", st.ID, 2)
			if len(first.Sets) != 2 || !first.MoreAvailable {
				t.Fatalf("maxEvents 2 of 5: %d SETs, moreAvailable %v; want 2, true", len(first.Sets), first.MoreAvailable)
			}
			again := in.pollNow(t, "c", st.ID, 2)
			if !maps.Equal(first.Sets, again.Sets) {
				t.Fatal("unacknowledged SETs came back different (jti or bytes)")
			}
			acked := slices.Collect(maps.Keys(first.Sets))
			rest := in.pollNow(t, "c", st.ID, 10, acked...)
			if len(rest.Sets) != 3 || rest.MoreAvailable {
				t.Fatalf("after acking 2: %d SETs, moreAvailable %v; want 3, false", len(rest.Sets), rest.MoreAvailable)
			}
			for jti := range first.Sets {
				if _, ok := rest.Sets[jti]; ok {
					t.Errorf("acknowledged SET %s delivered again", jti)
				}
			}
			// One acknowledged, one reported in error, maxEvents 0: nothing returned, both gone.
			keys := slices.Collect(maps.Keys(rest.Sets))
			zero := 0
			r, err := in.svc.Poll(ctx, "c", st.ID, ssf.PollRequest{
				Ack: keys[:1], SetErrs: map[string]ssf.SetError{keys[1]: {Err: "invalid_key", Description: "test"}}, MaxEvents: &zero,
			})
			if err != nil || len(r.Sets) != 0 {
				t.Fatalf("maxEvents 0: %d SETs, %v; want none", len(r.Sets), err)
			}
			last := in.pollNow(t, "c", st.ID, 10)
			if len(last.Sets) != 1 || last.Sets[keys[2]] == "" {
				t.Fatalf("left after ack and setErrs: %v, want only %s", slices.Collect(maps.Keys(last.Sets)), keys[2])
			}
			empty := in.pollNow(t, "c", st.ID, 10, keys[2])
			if len(empty.Sets) != 0 || empty.MoreAvailable {
				t.Fatalf("drained stream: %d SETs, moreAvailable %v", len(empty.Sets), empty.MoreAvailable)
			}
			for _, bad := range []int{-1, ssf.MaxMaxEvents + 1} {
				_, err := in.svc.Poll(ctx, "c", st.ID, ssf.PollRequest{MaxEvents: &bad})
				var inv *ssf.InvalidError
				if !errors.As(err, &inv) {
					t.Errorf("maxEvents %d: %v, want an InvalidError", bad, err)
				}
			}
		})
	}
}

// TestLongPollWakes: a poll that finds nothing waits, and returns as soon as an event is
// written (by this instance, or by another one sharing the database through Notify), with
// that event. The hook tells when the poll waits; no sleeps.
func TestLongPollWakes(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			waiting := make(chan string, 1)
			// No rechecks: only the notification can wake the poll.
			in := newEnv(t, backend, ssf.Config{PollWait: time.Hour, Recheck: time.Hour, OnPollWait: func(id string) { waiting <- id }})
			in.st.OnAuthChange(func(int64) { in.svc.Notify() }) // as app wires it
			st := in.stream(t, "c", ssf.StreamInput{})
			type result struct {
				r   ssf.PollResponse
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := in.svc.Poll(context.Background(), "c", st.ID, ssf.PollRequest{})
				done <- result{r, err}
			}()
			<-waiting
			select {
			case r := <-done:
				t.Fatalf("poll returned before any event: %v", r)
			default:
			}
			in.logouts(t, 1)
			r := <-done
			if r.err != nil || len(r.r.Sets) != 1 {
				t.Fatalf("woken poll: %d SETs, %v; want 1", len(r.r.Sets), r.err)
			}
		})
	}
}

// TestDrainEndsPolls: a poll waiting when the instance drains answers at once, empty.
func TestDrainEndsPolls(t *testing.T) {
	waiting := make(chan string, 1)
	in := newEnv(t, "sqlite", ssf.Config{PollWait: time.Hour, Recheck: time.Hour, OnPollWait: func(id string) { waiting <- id }})
	st := in.stream(t, "c", ssf.StreamInput{})
	done := make(chan error, 1)
	go func() {
		_, err := in.svc.Poll(context.Background(), "c", st.ID, ssf.PollRequest{})
		done <- err
	}()
	<-waiting
	in.svc.Drain()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLongPollBound: with nothing to send, a poll returns empty after PollWait, and at once
// with returnImmediately.
func TestLongPollBound(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{PollWait: time.Millisecond})
	st := in.stream(t, "c", ssf.StreamInput{})
	r, err := in.svc.Poll(context.Background(), "c", st.ID, ssf.PollRequest{})
	if err != nil || len(r.Sets) != 0 {
		t.Fatalf("bounded poll: %v, %v", r, err)
	}
}

// TestPausedAndDisabled: a paused stream holds its events and delivers them once enabled; a
// disabled one drops its queue and queues nothing.
func TestPausedAndDisabled(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{})
	ctx := context.Background()
	st := in.stream(t, "c", ssf.StreamInput{})
	for _, step := range []struct {
		status string
		events int
		want   int
	}{
		{store.StreamPaused, 2, 0},
		{store.StreamEnabled, 0, 2},
		{store.StreamDisabled, 2, 0},
		{store.StreamEnabled, 0, 0},
	} {
		got, err := in.svc.SetStreamStatus(ctx, "c", st.ID, step.status, "test")
		if err != nil || got.Status != step.status {
			t.Fatalf("set status %s: %v, %v", step.status, got, err)
		}
		in.logouts(t, step.events)
		if sets := in.drain(t, "c", st.ID); len(sets) != step.want {
			t.Errorf("%s: %d SETs, want %d", step.status, len(sets), step.want)
		}
	}
	if _, err := in.svc.SetStreamStatus(ctx, "c", st.ID, "stopped", ""); err == nil {
		t.Error("status stopped accepted")
	}
}

// TestResumeAfterRestart: events survive the transmitter: a new instance over the same
// database (a restart) serves the unacknowledged events, identical.
func TestResumeAfterRestart(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			open := func() *instance {
				st, err := store.Open(dsn)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return newInstance(t, st, ssf.Config{})
			}
			a := open()
			stream := a.stream(t, "c", ssf.StreamInput{})
			a.logouts(t, 3)
			before := a.pollNow(t, "c", stream.ID, 10)
			a.st.Close()
			b := open()
			t.Cleanup(func() { b.st.Close() })
			after := b.pollNow(t, "c", stream.ID, 10)
			if len(after.Sets) != 3 || !maps.Equal(before.Sets, after.Sets) {
				t.Fatalf("after restart: %d SETs (equal: %v), want the same 3", len(after.Sets), maps.Equal(before.Sets, after.Sets))
			}
		})
	}
}

// TestTwoInstancesServeTheSameEvents: two instances on one database (PostgreSQL for a fleet;
// SQLite too), their clocks an hour apart, return the same SETs, byte for byte, and an
// acknowledgement on one is seen by the other.
func TestTwoInstancesServeTheSameEvents(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			open := func() *instance {
				st, err := store.Open(dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := st.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return newInstance(t, st, ssf.Config{})
			}
			a, b := open(), open()
			// B polls an hour later by its clock: nothing of the SET may depend on when.
			b.svc = ssf.New(ssf.Config{Issuer: issuer, Now: testclock.New(time.Now().Add(time.Hour)).Now}, b.st, b.ring)
			stream := a.stream(t, "c", ssf.StreamInput{Format: ptr(ssf.FormatComplex)})
			if err := b.ring.Reload(context.Background()); err != nil { // as its Run would
				t.Fatal(err)
			}
			a.logouts(t, 4)
			fromA := a.pollNow(t, "c", stream.ID, 10)
			fromB := b.pollNow(t, "c", stream.ID, 10)
			if len(fromA.Sets) != 4 || !maps.Equal(fromA.Sets, fromB.Sets) {
				t.Fatalf("A has %d SETs, B %d, equal %v; want the same 4", len(fromA.Sets), len(fromB.Sets), maps.Equal(fromA.Sets, fromB.Sets))
			}
			for _, raw := range fromB.Sets {
				b.verify(t, raw) // B publishes the key A created
			}
			jtis := slices.Collect(maps.Keys(fromA.Sets))
			a.pollNow(t, "c", stream.ID, 0, jtis[:2]...)
			if r := b.pollNow(t, "c", stream.ID, 10); len(r.Sets) != 2 {
				t.Fatalf("B after A acked 2: %d SETs, want 2", len(r.Sets))
			}
		})
	}
}

// TestStreamsInvisibleToOtherClients: every operation on another client's stream finds
// nothing.
func TestStreamsInvisibleToOtherClients(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{})
	ctx := context.Background()
	st := in.stream(t, "alice", ssf.StreamInput{})
	in.logouts(t, 1)
	ops := map[string]func() error{
		"read": func() error { _, err := in.svc.Stream(ctx, "mallory", st.ID); return err },
		"update": func() error {
			_, err := in.svc.UpdateStream(ctx, "mallory", st.ID, ssf.StreamInput{Description: ptr("x")})
			return err
		},
		"replace": func() error {
			_, err := in.svc.ReplaceStream(ctx, "mallory", st.ID, ssf.StreamInput{Delivery: pollStream()})
			return err
		},
		"delete":     func() error { return in.svc.DeleteStream(ctx, "mallory", st.ID) },
		"status":     func() error { _, err := in.svc.StreamStatus(ctx, "mallory", st.ID); return err },
		"set status": func() error { _, err := in.svc.SetStreamStatus(ctx, "mallory", st.ID, "disabled", ""); return err },
		"verify":     func() error { return in.svc.Verify(ctx, "mallory", st.ID, "s") },
		"poll": func() error {
			_, err := in.svc.Poll(ctx, "mallory", st.ID, ssf.PollRequest{ReturnImmediately: true})
			return err
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ssf.ErrNotFound) {
			t.Errorf("%s of another client's stream: %v, want ErrNotFound", name, err)
		}
	}
	if list, err := in.svc.Streams(ctx, "mallory"); err != nil || len(list) != 0 {
		t.Errorf("mallory's streams: %v, %v; want none", list, err)
	}
	if sets := in.drain(t, "alice", st.ID); len(sets) != 1 {
		t.Errorf("alice's stream after mallory's attempts: %d SETs, want 1", len(sets))
	}
}
