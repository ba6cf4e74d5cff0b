package ssf

import (
	"context"
	"fmt"
	"time"

	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
)

// PollRequest is an RFC 8936 poll (section 2.4): acknowledgements and errors for SETs
// received before, and how to answer.
type PollRequest struct {
	Ack     []string
	SetErrs map[string]SetError
	// MaxEvents bounds the SETs returned: nil means DefaultMaxEvents, 0 none (an
	// acknowledgement only, answered at once).
	MaxEvents         *int
	ReturnImmediately bool
}

// SetError is a receiver's report that it could not process a SET (RFC 8936 section 2.4).
type SetError struct {
	Err, Description string
}

// PollResponse is what a poll returns: SETs by jti, and whether more are queued.
type PollResponse struct {
	Sets          map[string]string
	MoreAvailable bool
}

// maxAcks bounds the jti values one poll may acknowledge or report.
const maxAcks = 10000

// Poll serves an RFC 8936 poll of the client's stream id: it removes the acknowledged SETs
// (and those reported in error, which are not sent again) from the queue, then returns the
// oldest queued SETs, up to MaxEvents. Unacknowledged SETs come again in later polls, with the
// same jti and bytes. Without ReturnImmediately, a poll that finds none waits until an event
// arrives, ctx ends or PollWait passes. A paused or disabled stream returns no SETs.
func (s *Service) Poll(ctx context.Context, clientID, id string, req PollRequest) (PollResponse, error) {
	max := DefaultMaxEvents
	if req.MaxEvents != nil {
		max = *req.MaxEvents
	}
	switch {
	case max < 0 || max > MaxMaxEvents:
		return PollResponse{}, invalid("maxEvents", fmt.Sprintf("between 0 and %d", MaxMaxEvents))
	case len(req.Ack)+len(req.SetErrs) > maxAcks:
		return PollResponse{}, invalid("ack", fmt.Sprintf("at most %d acknowledgements and errors", maxAcks))
	}
	st, err := s.stream(ctx, clientID, id)
	if err != nil {
		return PollResponse{}, err
	}
	if st.DeliveryMethod != MethodPoll {
		return PollResponse{}, invalid("stream_id", "the stream is not a poll stream")
	}
	done := append([]string{}, req.Ack...)
	for jti, e := range req.SetErrs {
		done = append(done, jti)
		s.cfg.Logger.Warn("SSF receiver reported a SET error", "stream", id, "jti", jti, "err", e.Err, "description", e.Description)
	}
	n, err := s.store.AckEvents(ctx, id, done)
	if err != nil {
		return PollResponse{}, err
	}
	s.cfg.Metrics.SSF(metrics.SSFAcked, int(n))
	out := PollResponse{Sets: map[string]string{}}
	if max == 0 || st.Status != store.StreamEnabled {
		return out, nil
	}
	var timeout <-chan time.Time
	for {
		// Taken before the read: an event committed after the read closes it.
		wake := s.woken()
		events, more, err := s.store.PendingEvents(ctx, id, max)
		if err != nil {
			return PollResponse{}, err
		}
		if len(events) > 0 || req.ReturnImmediately {
			for _, e := range events {
				set, err := s.SET(ctx, st, e)
				if err != nil {
					return PollResponse{}, err
				}
				out.Sets[e.JTI] = set
			}
			out.MoreAvailable = more
			return out, nil
		}
		if timeout == nil {
			t := time.NewTimer(s.cfg.PollWait)
			defer t.Stop()
			timeout = t.C
			if s.cfg.OnPollWait != nil {
				s.cfg.OnPollWait(id)
			}
		}
		recheck := time.NewTimer(s.cfg.Recheck)
		select {
		case <-wake:
		case <-recheck.C:
		case <-timeout:
			return out, nil
		case <-ctx.Done():
			return out, nil
		case <-s.draining:
			return out, nil
		}
	}
}
