// Package ssf is authapi's Shared Signals (SSF 1.0) transmitter: the receivers' streams
// (create, read, update, replace, delete, status, verification), the security events the store
// writes with each change they describe, turned into SETs (RFC 8417) signed with the key
// ring's SET key, and their delivery by poll (RFC 8936) and push (RFC 8935).
//
// Events are durable: each is a row with an increasing id, queued per stream until the
// receiver acknowledges it (poll) or accepts it (push), so delivery is at least once and
// survives restarts. Every instance builds the same SET from the same row (stable jti and
// iat, deterministic RS256), so receivers may poll any instance.
package ssf

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Delivery methods (SSF 1.0 section 6.1).
const (
	MethodPush = "urn:ietf:rfc:8935"
	MethodPoll = "urn:ietf:rfc:8936"
)

// Subject identifier formats of a stream's SETs (RFC 9493; complex per SSF 1.0 section 3.3).
const (
	FormatIssSub  = "iss_sub" // {"format":"iss_sub","iss":issuer,"sub":"<user id>"}: the default
	FormatEmail   = "email"   // the user's email (iss_sub when the user has none)
	FormatOpaque  = "opaque"  // {"format":"opaque","id":"<user id>"}
	FormatComplex = "complex" // {"format":"complex","user":iss_sub,"session":opaque sid}
)

// Formats lists the subject formats a stream may choose.
var Formats = []string{FormatIssSub, FormatEmail, FormatOpaque, FormatComplex}

// Defaults.
const (
	DefaultPollWait         = 20 * time.Second // under the server's 30s write timeout
	DefaultMaxEvents        = 100
	MaxMaxEvents            = 1000
	DefaultQueueLimit       = 10000
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultStreamsPerClient = 10
)

// Config configures a Service.
type Config struct {
	Issuer    string // iss of the SETs and of the stream configurations
	PublicURL string // base of the endpoints named in the configuration; the Issuer when empty
	// PollWait bounds how long a poll without returnImmediately waits for an event.
	PollWait time.Duration
	// QueueLimit bounds the events queued per stream: the oldest beyond it are dropped
	// (counted and audited).
	QueueLimit int
	// Retention is how long events are kept for a stream that has not taken them.
	Retention time.Duration
	// StreamsPerClient bounds the streams one client may have.
	StreamsPerClient int
	// AllowHTTPPush lets push endpoints be plain http (tests, local development); otherwise
	// they must be https, as the CAEP interoperability profile requires.
	AllowHTTPPush bool
	// HTTPClient sends pushes; nil means one with a 10s timeout.
	HTTPClient *http.Client
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil discards
	Metrics    *metrics.Metrics // nil measures nothing
	// OnPollWait, if set, is called when a poll begins to wait for events (tests).
	OnPollWait func(streamID string)
	// Recheck is how often a waiting poll reads its queue without being notified, for events
	// written by an instance this one does not hear (SQLite shared by processes, a lost
	// PostgreSQL notification); zero means a second.
	Recheck time.Duration
}

func (c Config) withDefaults() Config {
	c.PublicURL = cmp.Or(c.PublicURL, c.Issuer)
	c.PollWait = cmp.Or(c.PollWait, DefaultPollWait)
	c.QueueLimit = cmp.Or(c.QueueLimit, DefaultQueueLimit)
	c.Retention = cmp.Or(c.Retention, DefaultRetention)
	c.StreamsPerClient = cmp.Or(c.StreamsPerClient, DefaultStreamsPerClient)
	c.Recheck = cmp.Or(c.Recheck, time.Second)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Signer gives the SET signer (the key ring's, created on first need).
type Signer interface {
	SETSigner(ctx context.Context) (*token.SETSigner, error)
}

// Service is the transmitter. It is safe for concurrent use.
type Service struct {
	cfg    Config
	store  *store.Store
	signer Signer

	mu   sync.Mutex
	wake chan struct{} // closed and replaced by Notify

	drainOnce sync.Once
	draining  chan struct{} // closed by Drain
}

// New returns a Service over st, signing with the SET key of signer.
func New(cfg Config, st *store.Store, signer Signer) *Service {
	return &Service{cfg: cfg.withDefaults(), store: st, signer: signer, wake: make(chan struct{}), draining: make(chan struct{})}
}

// Drain ends the polls waiting for events, which answer with what they have (nothing), and
// makes later polls answer at once: the instance is shutting down, and a receiver polls
// another. Nothing is lost: unacknowledged SETs stay queued.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Notify wakes the polls waiting for events: call it when events may have been written (the
// store's OnAuthChange, and on PostgreSQL ListenAuthChanges, which hears other instances).
func (s *Service) Notify() {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// woken returns the channel the next Notify closes.
func (s *Service) woken() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// The refusals of the operations; the server maps each to a status.
var (
	// ErrNotFound: no such stream of the calling client (another client's streams do not
	// exist for it).
	ErrNotFound = errors.New("stream not found")
	// ErrTooManyStreams: the client has StreamsPerClient streams already.
	ErrTooManyStreams = errors.New("too many streams for this client")
)

// InvalidError refuses a stream configuration or request; Field names the member at fault.
type InvalidError struct {
	Field, Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }
