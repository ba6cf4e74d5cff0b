package mail

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
)

// OutboxConfig configures the delivery of the mail outbox.
type OutboxConfig struct {
	Sender Sender
	From   string        // the From address of every message
	Poll   time.Duration // how often the outbox is read for due messages; Kick wakes it sooner
	Batch  int           // messages claimed at once
	// Lease is how long a claim keeps other instances off a message: longer than a send
	// takes (the SMTP timeout), or a slow send may be repeated by another instance.
	Lease time.Duration
	// MaxAttempts bounds the attempts of one message; the last failure gives it up
	// (audited mail.failed).
	MaxAttempts int
	// Backoff is the wait after the n-th failed attempt (n >= 1); nil: 30s doubling, at most
	// an hour.
	Backoff func(n int) time.Duration
	// Before runs at the start of each round, before due messages are claimed: the password
	// reset requests are resolved there into messages.
	Before  func(ctx context.Context) error
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// DefaultOutbox holds the defaults of the settings of OutboxConfig.
func DefaultOutbox() OutboxConfig {
	return OutboxConfig{Poll: 5 * time.Second, Batch: 20, Lease: 2 * time.Minute, MaxAttempts: 10}
}

// DefaultBackoff is 30s after the first failure, doubling, at most an hour: ten attempts
// span about five hours.
func DefaultBackoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Outbox delivers the mail outbox. Every instance runs one: claims keep them from sending a
// message twice (see store.ClaimMail).
type Outbox struct {
	cfg  OutboxConfig
	st   *store.Store
	kick chan struct{}
}

// NewOutbox returns the outbox of st under cfg (zero settings take DefaultOutbox's).
func NewOutbox(cfg OutboxConfig, st *store.Store) *Outbox {
	def := DefaultOutbox()
	if cfg.Poll <= 0 {
		cfg.Poll = def.Poll
	}
	if cfg.Batch <= 0 {
		cfg.Batch = def.Batch
	}
	if cfg.Lease <= 0 {
		cfg.Lease = def.Lease
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Outbox{cfg: cfg, st: st, kick: make(chan struct{}, 1)}
}

// Kick wakes the outbox for a round now (a message or request was just written). It never
// blocks.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: a round every Poll, and at each Kick.
func (o *Outbox) Run(ctx context.Context) {
	tick := time.NewTicker(o.cfg.Poll)
	defer tick.Stop()
	for {
		if _, err := o.Round(ctx); err != nil && ctx.Err() == nil {
			o.cfg.Logger.Error("mail outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-o.kick:
		}
	}
}

// Rounded counts what one round did.
type Rounded struct{ Sent, Retried, Failed int }

// Round runs Before, then claims the due messages, batch after batch, and tries each once.
func (o *Outbox) Round(ctx context.Context) (Rounded, error) {
	var out Rounded
	if o.cfg.Before != nil {
		if err := o.cfg.Before(ctx); err != nil {
			o.cfg.Logger.Error("mail outbox: before", "err", err)
		}
	}
	for {
		now := o.cfg.Now()
		batch, err := o.st.ClaimMail(ctx, now, now.Add(o.cfg.Lease), o.cfg.Batch)
		if err != nil || len(batch) == 0 {
			return out, err
		}
		for _, m := range batch {
			if err := o.deliver(ctx, m, &out); err != nil {
				return out, err
			}
		}
	}
}

// deliver tries m once and records the outcome.
func (o *Outbox) deliver(ctx context.Context, m store.MailMessage, out *Rounded) error {
	sendErr := o.cfg.Sender.Send(ctx, Message{
		MessageID: m.MessageID, From: o.cfg.From, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML,
		Date: m.CreatedAt, Kind: m.Kind,
	})
	now := o.cfg.Now()
	src := audit.Source{At: now, UserAgent: "authapi mail"}
	if sendErr == nil {
		ev := src.Event(audit.MailSent)
		ev.Fields = []string{"kind:" + m.Kind}
		if _, err := o.st.MailSent(ctx, m, now, ev); err != nil {
			return err
		}
		o.cfg.Metrics.Mail(metrics.MailSent)
		out.Sent++
		o.cfg.Logger.InfoContext(ctx, "mail sent", "message_id", m.MessageID, "kind", m.Kind)
		return nil
	}
	if ctx.Err() != nil { // stopping: the lease runs out and another round tries again
		return ctx.Err()
	}
	attempt := m.Attempts + 1
	giveUp := attempt >= o.cfg.MaxAttempts
	cause := oneLine(sendErr.Error())
	var events []store.AuditEvent
	if giveUp {
		ev := src.Event(audit.MailFailed)
		ev.Fields = []string{"kind:" + m.Kind}
		events = append(events, ev)
	}
	if _, err := o.st.MailFailed(ctx, m, now, cause, now.Add(o.cfg.Backoff(attempt)), giveUp, events...); err != nil {
		return err
	}
	if giveUp {
		o.cfg.Metrics.Mail(metrics.MailFailed)
		out.Failed++
		o.cfg.Logger.ErrorContext(ctx, "mail given up", "message_id", m.MessageID, "kind", m.Kind, "attempts", attempt, "err", cause)
	} else {
		o.cfg.Metrics.Mail(metrics.MailRetry)
		out.Retried++
		o.cfg.Logger.WarnContext(ctx, "mail not sent; will retry", "message_id", m.MessageID, "kind", m.Kind, "attempts", attempt,
			"retry_in", o.cfg.Backoff(attempt).String(), "err", cause)
	}
	return nil
}

// oneLine keeps an error's text to one bounded line for the outbox row.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
