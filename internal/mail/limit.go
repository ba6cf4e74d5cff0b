package mail

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLimited is wrapped by *LimitedError.
var ErrLimited = errors.New("too many requests for mail")

// Reasons of a *LimitedError, machine-readable in the 429 answer.
const (
	ReasonIP      = "ip"
	ReasonDomain  = "recipient_domain"
	ReasonAccount = "account"
)

// LimitedError refuses a request for mail over a limit: What names the requests in words
// ("password reset requests"), Reason the limit, Wait when the next request is accepted.
type LimitedError struct {
	What   string
	Reason string
	Wait   time.Duration
}

// Limited is the refusal of a request at now over the limit of reason within window, whose
// oldest counted request was at oldest (its leaving the window lets the next in).
func Limited(what, reason string, oldest time.Time, window time.Duration, now time.Time) *LimitedError {
	return &LimitedError{What: what, Reason: reason, Wait: max(oldest.Add(window).Sub(now), time.Second)}
}

func (e *LimitedError) Error() string { return fmt.Sprintf("too many %s (%s)", e.What, e.Reason) }
func (e *LimitedError) Unwrap() error { return ErrLimited }

// Domain is the lowercased domain of an address, "" for none.
func Domain(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return strings.ToLower(addr[at+1:])
	}
	return ""
}

// Words says d in words, for messages: "30 minutes", "1 hour", "24 hours", "90 minutes".
func Words(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
