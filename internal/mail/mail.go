// Package mail sends the messages of authapi's mail flows: it renders them from templates
// (text and HTML, embedded defaults that a directory may override), builds the links they
// carry, and delivers the mail outbox (store.MailMessage rows written in the transaction of
// the change that causes them) through SMTP or, with no SMTP server configured, to a
// development sink that writes each message to the log.
//
// A message is rendered when it is enqueued and gets its Message-ID then: every attempt
// sends the same bytes under the same Message-ID, so a duplicate of an at-least-once delivery
// is recognisable.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Message is a rendered message ready to send.
type Message struct {
	MessageID  string // without angle brackets
	From, To   string
	Subject    string
	Text, HTML string // HTML may be empty
	Date       time.Time
	Kind       string // the template it was rendered from
}

// Sender delivers one message. An error means it was not delivered and may be tried again.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// NewMessageID returns a new Message-ID (without angle brackets) at the domain of from.
func NewMessageID(from string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	domain := "authapi.invalid"
	if a, err := mail.ParseAddress(from); err == nil && Domain(a.Address) != "" {
		domain = Domain(a.Address)
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}

// CheckAddress checks a From address (RFC 5322, "Name <a@b>" or "a@b").
func CheckAddress(addr string) error {
	if _, err := mail.ParseAddress(addr); err != nil {
		return fmt.Errorf("mail address %q: %w", addr, err)
	}
	return nil
}

// LogSink is the development sink: it writes each message, whole, to the log instead of
// sending it. It never fails.
type LogSink struct{ Log *slog.Logger }

// Send writes m to the log.
func (s LogSink) Send(ctx context.Context, m Message) error {
	s.Log.WarnContext(ctx, "mail not sent (development sink: no --smtp-host)", "message_id", m.MessageID, "kind", m.Kind,
		"from", m.From, "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}

// Links builds the links of messages: Base (the --mail-link-url, or the console's URL
// below --public-url) and a route, with the token in the fragment, which browsers neither
// send to servers nor put in Referer headers, and which no access log records.
type Links struct{ Base string }

// Link returns Base + route + "#token=" + the token.
func (l Links) Link(route, token string) string {
	return strings.TrimSuffix(l.Base, "/") + route + "#token=" + url.QueryEscape(token)
}

// Routes of the hosted pages (console routes), appended to Links.Base.
const (
	RouteResetPassword = "/reset-password"
	RouteVerifyEmail   = "/verify-email"
)
