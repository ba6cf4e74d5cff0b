package mail_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/mail"
)

func TestWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1 minute", 30 * time.Minute: "30 minutes", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", 24 * time.Hour: "24 hours", 90 * time.Second: "1m30s",
	} {
		if got := mail.Words(d); got != want {
			t.Errorf("Words(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDomain(t *testing.T) {
	for addr, want := range map[string]string{"a@Example.ORG": "example.org", "a@b@c.io": "c.io", "alice": "", "": ""} {
		if got := mail.Domain(addr); got != want {
			t.Errorf("Domain(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestLimited: the wait runs until the oldest counted request leaves the window, and is at
// least a second (a Retry-After of 0 would invite an immediate retry).
func TestLimited(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e := mail.Limited("requests", mail.ReasonIP, now.Add(-45*time.Minute), time.Hour, now)
	if e.Wait != 15*time.Minute || e.Reason != mail.ReasonIP || !errors.Is(e, mail.ErrLimited) {
		t.Fatalf("Limited = %+v, want a wait of 15m, reason ip, wrapping ErrLimited", e)
	}
	if e := mail.Limited("requests", mail.ReasonIP, now.Add(-time.Hour), time.Hour, now); e.Wait != time.Second {
		t.Fatalf("wait %v at the window's edge, want 1s", e.Wait)
	}
}
