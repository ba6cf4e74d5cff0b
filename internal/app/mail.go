package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/recovery"
	"github.com/authapi/authapi/internal/verification"
)

// Mail configures the mail flows: how messages are sent, their templates and links, the
// outbox and password reset.
type Mail struct {
	// SMTP is the server messages go through; with no Host they go to the development sink,
	// which writes each to the log.
	SMTP mail.SMTPConfig
	// Sender, when set, replaces SMTP and the sink (tests).
	Sender mail.Sender
	// Required refuses to start without an SMTP server (production: no flow pretends to send
	// mail while writing its links to the log).
	Required  bool
	From      string // the From address; default authapi@<host of the issuer>
	Templates string // a directory of templates replacing the embedded ones, file by file
	// LinkBase is where links point, routes appended (/reset-password#token=...): the
	// --mail-link-url, or by default the console below the issuer (<issuer>/admin).
	LinkBase string
	// Outbox sets the delivery's settings (Poll, Batch, Lease, MaxAttempts, Backoff); Start
	// sets its Sender, From, Before, clock, Logger and Metrics.
	Outbox mail.OutboxConfig
	// Manual leaves delivery to the caller (App.Outbox.Round): tests decide when it runs.
	Manual bool
	// Reset sets password reset's settings (Lifetime, limits, Window); Start sets the rest.
	Reset recovery.Config
}

// ErrMailRequired refuses to start a server told that mail is required without an SMTP
// server.
var ErrMailRequired = errors.New("mail is required (--mail-required) but no SMTP server is configured (--smtp-host)")

// startMail builds the mail sender, templates, outbox and password reset, completes the
// address flows' settings verify with the mail parts, and runs the outbox's delivery in the
// background unless cfg.Mail.Manual.
func (a *App) startMail(ctx, bg context.Context, cfg Config, verify *verification.Config, log *slog.Logger) (*recovery.Service, error) {
	m := cfg.Mail
	sender := m.Sender
	switch {
	case sender != nil:
	case m.SMTP.Host != "":
		smtp, err := mail.NewSMTP(m.SMTP)
		if err != nil {
			return nil, err
		}
		sender = smtp
		log.Info("mail: sending through SMTP", "host", m.SMTP.Host, "port", m.SMTP.Port, "tls", m.SMTP.TLS)
	case m.Required:
		return nil, ErrMailRequired
	default:
		sender = mail.LogSink{Log: log}
		log.Warn("mail: no SMTP server configured (--smtp-host): messages are written to this log, not sent (development sink); set --mail-required in production to refuse this")
	}
	tpl, err := mail.LoadTemplates(m.Templates)
	if err != nil {
		return nil, err
	}
	from := m.From
	if from == "" {
		from = "authapi@" + hostOf(cfg.Token.Issuer)
	}
	if err := mail.CheckAddress(from); err != nil {
		return nil, fmt.Errorf("--mail-from: %w", err)
	}
	key, err := mail.TokenKey(ctx, a.Store, cfg.Keys.Secret)
	if err != nil {
		return nil, err
	}
	now := cfg.Server.Now // the server's clock (tests'), else the tokens', else the system's
	if now == nil {
		now = cfg.Token.Now
	}
	if now == nil {
		now = time.Now
	}
	base := m.LinkBase
	if base == "" {
		base = strings.TrimSuffix(cfg.Token.Issuer, "/") + "/admin"
	}
	oc := m.Outbox
	oc.Sender, oc.From, oc.Now, oc.Logger, oc.Metrics = sender, from, now, log, cfg.Metrics
	var reset *recovery.Service
	oc.Before = func(ctx context.Context) error { return reset.ResolvePending(ctx) }
	a.Outbox = mail.NewOutbox(oc, a.Store)

	flow := mail.Flow{AppName: cfg.Server.APIName, Templates: tpl, Links: mail.Links{Base: base}, From: from, Key: key,
		Kick: a.Outbox.Kick}
	rc := m.Reset
	rc.Flow = flow
	rc.Now, rc.Logger, rc.Metrics = now, log, cfg.Metrics
	reset = recovery.New(rc, a.Store, cfg.Hasher)
	// The server gives the address flows its clock and its request-aware log, unless set.
	flow.Now, flow.Logger = verify.Now, verify.Logger
	verify.Flow = flow
	if !m.Manual {
		a.background(bg, a.Outbox.Run)
	}
	return reset, nil
}

// hostOf is the host of a URL, "localhost" when it has none.
func hostOf(u string) string {
	h := u
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexAny(h, "/:"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "localhost"
	}
	return h
}
