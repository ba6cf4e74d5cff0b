package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/mail/mailtest"
	"github.com/authapi/authapi/internal/store"
)

// enqueue writes n messages to the outbox directly and returns their Message-IDs.
func (e *testEnv) enqueue(t *testing.T, n int, to string) []string {
	t.Helper()
	ids := make([]string, n)
	msgs := make([]store.MailMessage, n)
	for i := range msgs {
		ids[i] = mail.NewMessageID("auth@example.com")
		msgs[i] = store.MailMessage{MessageID: ids[i], Kind: mail.KindPasswordChanged, To: to, Subject: fmt.Sprintf("message %d", i), Text: "hello"}
	}
	if err := e.store.EnqueueMail(context.Background(), e.clock.Now(), msgs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

// wantEachOnce checks that the sink got each of ids exactly once, and nothing else.
func wantEachOnce(t *testing.T, sink *mailtest.Sink, ids []string) {
	t.Helper()
	got := map[string]int{}
	for _, m := range sink.Messages() {
		got[m.MessageID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %s arrived %d times, want once", id, got[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("the sink got %d distinct messages, want %d", len(got), len(ids))
	}
}

// TestOutboxSMTPOutage: while the SMTP server refuses, nothing is lost: each message is retried
// with backoff, and once the server accepts again every message arrives exactly once, under
// its Message-ID; a message still refused after the attempt bound is given up and audited.
func TestOutboxSMTPOutage(t *testing.T) {
	bound := func(m *app.Mail) { m.Outbox.MaxAttempts = 4 }
	forEachSink(t, []func(*app.Mail){bound}, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		ctx := context.Background()
		sink.Refuse(true)
		ids := e.enqueue(t, 5, "frank@example.com")
		// Three failed rounds: each message tried once a round, after its backoff.
		for attempt := 1; attempt <= 3; attempt++ {
			r, err := e.outbox.Round(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Retried != 5 || r.Sent != 0 {
				t.Fatalf("attempt %d: %+v, want 5 retried", attempt, r)
			}
			// Not due again before the backoff ends.
			if r, _ := e.outbox.Round(ctx); r != (mail.Rounded{}) {
				t.Fatalf("attempt %d: a round before the backoff did %+v", attempt, r)
			}
			e.clock.Add(mail.DefaultBackoff(attempt))
		}
		if n := sink.Refused(); n != 15 {
			t.Errorf("the sink refused %d deliveries, want 15", n)
		}
		sink.Refuse(false)
		if r, err := e.outbox.Round(ctx); err != nil || r.Sent != 5 {
			t.Fatalf("after the outage: %+v, %v; want 5 sent", r, err)
		}
		e.clock.Add(time.Hour)
		if r, _ := e.outbox.Round(ctx); r != (mail.Rounded{}) {
			t.Errorf("a round after every message was sent did %+v", r)
		}
		wantEachOnce(t, sink, ids)
		for _, id := range ids {
			m, err := e.store.MailByMessageID(ctx, id)
			if err != nil || m.SentAt == nil || m.Attempts != 3 {
				t.Errorf("outbox row of %s: %+v, %v; want sent after 3 failed attempts", id, m, err)
			}
		}

		// Given up after 4 attempts, audited.
		sink.Refuse(true)
		lost := e.enqueue(t, 1, "gina@example.com")[0]
		for attempt := 1; attempt <= 4; attempt++ {
			r, err := e.outbox.Round(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := mail.Rounded{Retried: 1}
			if attempt == 4 {
				want = mail.Rounded{Failed: 1}
			}
			if r != want {
				t.Fatalf("attempt %d: %+v, want %+v", attempt, r, want)
			}
			e.clock.Add(time.Hour)
		}
		m, err := e.store.MailByMessageID(ctx, lost)
		if err != nil || m.FailedAt == nil || m.LastError == "" {
			t.Fatalf("given up message: %+v, %v", m, err)
		}
		events, _, err := e.store.AuditEvents(ctx, store.AuditFilter{Actions: []string{"mail.failed"}})
		if err != nil || len(events) != 1 || events[0].Outcome != "failure" {
			t.Errorf("mail.failed events: %+v, %v", events, err)
		}
		sink.Refuse(false)
		e.clock.Add(time.Hour)
		if r, _ := e.outbox.Round(ctx); r != (mail.Rounded{}) {
			t.Errorf("a given-up message was tried again: %+v", r)
		}
	})
}

// TestOutboxInstancesNeverDoubleSend: two instances deliver one outbox at once, round after
// round in parallel: every message arrives exactly once.
func TestOutboxInstancesNeverDoubleSend(t *testing.T) {
	small := func(m *app.Mail) { m.Outbox.Batch = 3 }
	forEachSink(t, []func(*app.Mail){small}, func(t *testing.T, e *testEnv, sink *mailtest.Sink) {
		other := newTestEnv(t, e.backend, withDSN(e.dsn), withSink(sink, small))
		ids := e.enqueue(t, 60, "hana@example.com")
		var wg sync.WaitGroup
		for _, env := range []*testEnv{e, other, e, other} {
			wg.Go(func() {
				if _, err := env.outbox.Round(context.Background()); err != nil {
					t.Errorf("round: %v", err)
				}
			})
		}
		wg.Wait()
		wantEachOnce(t, sink, ids)
	})
}
