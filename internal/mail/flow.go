package mail

import (
	"log/slog"
	"time"
)

// Flow is what every mail flow (password reset, address verification) is given: how its
// messages are made, where its links point, the email tokens' key, and how the outbox hears of
// new mail. Start fills one for all flows.
type Flow struct {
	AppName   string
	Templates *Templates
	Links     Links
	From      string // for the Message-IDs' domain
	Key       []byte // the email tokens' HMAC key (TokenKey)
	// Kick wakes the outbox when mail was written; nil: its next round finds it.
	Kick   func()
	Now    func() time.Time
	Logger *slog.Logger
}

// WithDefaults fills f's unset parts: the name authapi, the system clock, a log that
// discards, and a Kick that does nothing.
func (f Flow) WithDefaults() Flow {
	if f.AppName == "" {
		f.AppName = "authapi"
	}
	if f.Now == nil {
		f.Now = time.Now
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	if f.Kick == nil {
		f.Kick = func() {}
	}
	return f
}

// Composer makes f's messages.
func (f Flow) Composer() Composer {
	return Composer{AppName: f.AppName, Templates: f.Templates, From: f.From}
}
