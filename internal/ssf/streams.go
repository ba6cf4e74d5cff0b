package ssf

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/authapi/authapi/internal/store"
)

// StreamInput is what a receiver supplies for a stream (SSF 1.0 section 8.1.1): nil members
// are absent. A create or replace takes absent members as their defaults; an update keeps them.
type StreamInput struct {
	EventsRequested *[]string
	Delivery        *Delivery
	Description     *string
	Format          *string // authapi's extension: the sub_id format of the stream's SETs
}

// Delivery is a stream's delivery member.
type Delivery struct {
	Method              string
	EndpointURL         string
	AuthorizationHeader string // push: sent with every push; never shown again
}

// Stream is a stream's configuration as the receiver sees it.
type Stream struct {
	ID              string
	Issuer          string
	Audience        []string
	EventsSupported []string
	EventsRequested []string
	EventsDelivered []string
	Delivery        Delivery // without the authorization header
	Description     string
	Format          string
}

// Status is a stream's status (SSF 1.0 section 8.1.2).
type Status struct {
	StreamID, Status, Reason string
}

// Configuration is the transmitter configuration metadata (SSF 1.0 section 7.1).
type Configuration struct {
	SpecVersion              string
	Issuer                   string
	JWKSURI                  string
	DeliveryMethodsSupported []string
	ConfigurationEndpoint    string
	StatusEndpoint           string
	VerificationEndpoint     string
	AuthorizationSchemes     []string // spec URNs
	DefaultSubjects          string
}

// Configuration returns the transmitter configuration metadata.
func (s *Service) Configuration() Configuration {
	base := s.cfg.PublicURL
	return Configuration{
		SpecVersion:              "1_0",
		Issuer:                   s.cfg.Issuer,
		JWKSURI:                  base + "/.well-known/jwks.json",
		DeliveryMethodsSupported: []string{MethodPush, MethodPoll},
		ConfigurationEndpoint:    base + "/ssf/streams",
		StatusEndpoint:           base + "/ssf/status",
		VerificationEndpoint:     base + "/ssf/verify",
		AuthorizationSchemes:     []string{"urn:ietf:rfc:6749"},
		// Every user is a subject of every stream; there is no add/remove subject endpoint.
		DefaultSubjects: "ALL",
	}
}

// maxDescription bounds a stream's description, in characters.
const maxDescription = 256

// apply validates in and applies it to st; with replace, absent members take their defaults.
func (s *Service) apply(st *store.Stream, in StreamInput, replace bool) error {
	if in.EventsRequested != nil || replace {
		var requested []string
		if in.EventsRequested != nil {
			requested = *in.EventsRequested
		}
		if len(requested) > 64 {
			return invalid("events_requested", "at most 64 event types")
		}
		st.EventsRequested = requested
		st.EventsDelivered = delivered(requested, in.EventsRequested == nil)
	}
	if in.Delivery != nil || replace {
		d := Delivery{Method: MethodPoll} // the default: nothing to reach on the receiver's side
		if in.Delivery != nil {
			d = *in.Delivery
		}
		if err := s.delivery(st, d); err != nil {
			return err
		}
	}
	if in.Description != nil || replace {
		d := ""
		if in.Description != nil {
			d = *in.Description
		}
		if utf8.RuneCountInString(d) > maxDescription || !utf8.ValidString(d) {
			return invalid("description", fmt.Sprintf("at most %d characters", maxDescription))
		}
		st.Description = d
	}
	if in.Format != nil || replace {
		f := FormatIssSub
		if in.Format != nil {
			f = *in.Format
		}
		if !slices.Contains(Formats, f) {
			return invalid("format", "one of iss_sub, email, opaque, complex")
		}
		st.Format = f
	}
	return nil
}

// delivered is the kinds queued for a stream requesting requested: those it requested that
// authapi supports (others are ignored, SSF 1.0 section 8.1.1), or all when it requested none.
func delivered(requested []string, absent bool) []store.EventKind {
	var kinds []store.EventKind
	for _, uri := range EventsSupported {
		if absent || slices.Contains(requested, uri) {
			k, _ := kindOf(uri)
			kinds = append(kinds, k)
		}
	}
	return kinds
}

func (s *Service) delivery(st *store.Stream, d Delivery) error {
	switch d.Method {
	case MethodPoll:
		// The poll endpoint is the transmitter's (SSF 1.0 section 6.1.2).
		st.DeliveryMethod, st.EndpointURL, st.AuthorizationHeader = MethodPoll, s.cfg.PublicURL+"/ssf/poll/"+st.ID, ""
		return nil
	case MethodPush:
		u, err := url.Parse(d.EndpointURL)
		switch {
		case err != nil || u.Host == "" || u.User != nil || u.Fragment != "":
			return invalid("delivery.endpoint_url", "an absolute URL without user info or fragment")
		case u.Scheme != "https" && !(u.Scheme == "http" && s.cfg.AllowHTTPPush):
			return invalid("delivery.endpoint_url", "must be https")
		case len(d.AuthorizationHeader) > 4096:
			return invalid("delivery.authorization_header", "at most 4096 bytes")
		}
		st.DeliveryMethod, st.EndpointURL, st.AuthorizationHeader = MethodPush, d.EndpointURL, d.AuthorizationHeader
		return nil
	}
	return invalid("delivery.method", "one of "+MethodPush+", "+MethodPoll)
}

// view is st as its receiver sees it.
func (s *Service) view(st store.Stream) Stream {
	out := Stream{
		ID: st.ID, Issuer: s.cfg.Issuer, Audience: st.Audience, EventsSupported: EventsSupported,
		EventsRequested: st.EventsRequested, Delivery: Delivery{Method: st.DeliveryMethod, EndpointURL: st.EndpointURL},
		Description: st.Description, Format: st.Format, EventsDelivered: []string{},
	}
	if out.EventsRequested == nil {
		out.EventsRequested = []string{}
	}
	for _, k := range st.EventsDelivered {
		out.EventsDelivered = append(out.EventsDelivered, eventTypes[k])
	}
	return out
}

// newStreamID is 128 random bits in base32 (RFC 3986 unreserved characters).
func newStreamID() string { return rand.Text() }

// CreateStream creates a stream for client clientID, enabled, with aud = the client's id.
func (s *Service) CreateStream(ctx context.Context, clientID string, in StreamInput) (Stream, error) {
	existing, err := s.store.Streams(ctx, clientID)
	if err != nil {
		return Stream{}, err
	}
	if len(existing) >= s.cfg.StreamsPerClient {
		return Stream{}, ErrTooManyStreams
	}
	st := store.Stream{ID: newStreamID(), ClientID: clientID, Audience: []string{clientID}, Status: store.StreamEnabled}
	if err := s.apply(&st, in, true); err != nil {
		return Stream{}, err
	}
	// The key exists before the first event it signs, so that it is in the JWKS early.
	if _, err := s.signer.SETSigner(ctx); err != nil {
		return Stream{}, fmt.Errorf("create stream: %w", err)
	}
	st, err = s.store.CreateStream(ctx, st)
	if err != nil {
		return Stream{}, fmt.Errorf("create stream: %w", err)
	}
	return s.view(st), nil
}

// Streams returns the client's streams.
func (s *Service) Streams(ctx context.Context, clientID string) ([]Stream, error) {
	sts, err := s.store.Streams(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := make([]Stream, len(sts))
	for i, st := range sts {
		out[i] = s.view(st)
	}
	return out, nil
}

// Stream returns the client's stream id, or ErrNotFound.
func (s *Service) Stream(ctx context.Context, clientID, id string) (Stream, error) {
	st, err := s.stream(ctx, clientID, id)
	if err != nil {
		return Stream{}, err
	}
	return s.view(st), nil
}

func (s *Service) stream(ctx context.Context, clientID, id string) (store.Stream, error) {
	st, err := s.store.StreamByID(ctx, clientID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Stream{}, ErrNotFound
	}
	return st, err
}

// UpdateStream changes the members in gives (PATCH); ReplaceStream sets them all (PUT).
func (s *Service) UpdateStream(ctx context.Context, clientID, id string, in StreamInput) (Stream, error) {
	return s.changeStream(ctx, clientID, id, in, false)
}

// ReplaceStream replaces the receiver-supplied members of the stream; absent ones take their
// defaults.
func (s *Service) ReplaceStream(ctx context.Context, clientID, id string, in StreamInput) (Stream, error) {
	return s.changeStream(ctx, clientID, id, in, true)
}

func (s *Service) changeStream(ctx context.Context, clientID, id string, in StreamInput, replace bool) (Stream, error) {
	_, after, err := s.store.UpdateStream(ctx, clientID, id, func(st *store.Stream) error {
		return s.apply(st, in, replace)
	})
	if errors.Is(err, store.ErrNotFound) {
		return Stream{}, ErrNotFound
	}
	if err != nil {
		return Stream{}, err
	}
	return s.view(after), nil
}

// DeleteStream deletes the client's stream id and its queued events.
func (s *Service) DeleteStream(ctx context.Context, clientID, id string) error {
	err := s.store.DeleteStream(ctx, clientID, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// StreamStatus returns the stream's status.
func (s *Service) StreamStatus(ctx context.Context, clientID, id string) (Status, error) {
	st, err := s.stream(ctx, clientID, id)
	if err != nil {
		return Status{}, err
	}
	return Status{StreamID: st.ID, Status: st.Status, Reason: st.Reason}, nil
}

// SetStreamStatus sets the stream's status: enabled (events queued and delivered), paused
// (queued, held until enabled, for at most Retention and QueueLimit events) or disabled
// (neither; the queue is emptied).
func (s *Service) SetStreamStatus(ctx context.Context, clientID, id, status, reason string) (Status, error) {
	switch status {
	case store.StreamEnabled, store.StreamPaused, store.StreamDisabled:
	default:
		return Status{}, invalid("status", "one of enabled, paused, disabled")
	}
	if utf8.RuneCountInString(reason) > maxDescription {
		return Status{}, invalid("reason", fmt.Sprintf("at most %d characters", maxDescription))
	}
	_, after, err := s.store.UpdateStream(ctx, clientID, id, func(st *store.Stream) error {
		st.Status, st.Reason = status, reason
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Status{}, ErrNotFound
	}
	if err != nil {
		return Status{}, err
	}
	s.Notify() // an enabled stream's held events are due
	return Status{StreamID: after.ID, Status: after.Status, Reason: after.Reason}, nil
}

// maxState bounds the state of a verification request.
const maxState = 1024

// Verify queues a verification event on the stream, carrying state if given (SSF 1.0
// section 8.1.4.2).
func (s *Service) Verify(ctx context.Context, clientID, id, state string) error {
	if len(state) > maxState {
		return invalid("state", fmt.Sprintf("at most %d bytes", maxState))
	}
	detail := "{}"
	if state != "" {
		b, err := json.Marshal(map[string]string{"state": state})
		if err != nil {
			return err
		}
		detail = string(b)
	}
	_, err := s.store.AddStreamEvent(ctx, clientID, id, store.SecurityEvent{Kind: store.EventVerification, Detail: detail})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	s.Notify()
	return nil
}
