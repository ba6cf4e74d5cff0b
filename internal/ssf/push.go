package ssf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/store"
)

// Push delivery (RFC 8935). Every instance runs a sender; each claims due events with a
// lease (store.ClaimDeliveries, one atomic UPDATE), so no event is sent by two instances at
// once, and one that dies mid-send leaves its lease to run out and the event to be claimed
// again: at least once, never lost. A failed push is retried with exponential backoff; a
// receiver's 400 (the SET is refused, RFC 8935 section 2.3) drops the event, audited.

// Push tuning.
const (
	pushBatch      = 50
	pushLease      = time.Minute // longer than a push can take (HTTPClient's timeout)
	backoffBase    = time.Second
	backoffMax     = 5 * time.Minute
	pushIdle       = time.Second // how often an idle sender looks for due events
	maintainPeriod = time.Minute // queue trim and retention
)

// backoff is the wait after the attempts-th failed attempt (1, 2, ...).
func backoff(attempts int) time.Duration {
	d := backoffBase
	for i := 1; i < attempts && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// PushOnce claims the due push deliveries and sends them, and returns how many it claimed.
// Run calls it in a loop; tests call it directly.
func (s *Service) PushOnce(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	ds, err := s.store.ClaimDeliveries(ctx, MethodPush, now, now.Add(pushLease), pushBatch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	for _, d := range ds {
		if err := s.push(ctx, d); err != nil {
			return len(ds), err
		}
	}
	return len(ds), nil
}

// push sends one claimed delivery and records the outcome.
func (s *Service) push(ctx context.Context, d store.Delivery) error {
	set, err := s.SET(ctx, d.Stream, d.Event)
	if err != nil {
		return err
	}
	status, detail := s.send(ctx, d.Stream, set)
	switch {
	case status == http.StatusAccepted || status == http.StatusOK:
		if _, err := s.store.Delivered(ctx, d); err != nil {
			return err
		}
		s.cfg.Metrics.SSF(metrics.SSFDelivered, 1)
		return nil
	case status == http.StatusBadRequest:
		// The receiver refused this SET for good: sending it again cannot help.
		if _, err := s.store.Delivered(ctx, d); err != nil {
			return err
		}
		s.cfg.Metrics.SSF(metrics.SSFRejected, 1)
		s.cfg.Logger.Warn("SSF push refused by the receiver", "stream", d.Stream.ID, "jti", d.Event.JTI, "detail", detail)
		return s.auditFailure(ctx, d.Stream.ID, d.Event.UserID)
	}
	s.cfg.Metrics.SSF(metrics.SSFPushFailed, 1)
	s.cfg.Logger.Warn("SSF push failed", "stream", d.Stream.ID, "jti", d.Event.JTI, "attempt", d.Attempts+1, "detail", detail)
	if err := s.store.Retry(ctx, d, s.cfg.Now().Add(backoff(d.Attempts+1))); err != nil {
		return err
	}
	if d.Attempts == 0 { // once per event, so that a long outage does not flood the log
		return s.auditFailure(ctx, d.Stream.ID, d.Event.UserID)
	}
	return nil
}

// send POSTs set to the stream's endpoint and returns the status (0 when there was no
// answer) and a short description of a failure.
func (s *Service) send(ctx context.Context, st store.Stream, set string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.EndpointURL, strings.NewReader(set))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if st.AuthorizationHeader != "" {
		req.Header.Set("Authorization", st.AuthorizationHeader)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

func (s *Service) auditFailure(ctx context.Context, streamID string, userID int64) error {
	e := audit.Source{UserAgent: "authapi ssf"}.Event(audit.SSFDeliveryFailed)
	e.TargetID, e.Fields = userID, []string{"stream:" + streamID}
	return s.store.RecordAuditEvents(ctx, e)
}

// Maintain drops what exceeds the queue bound (the oldest events of each stream) and the
// events older than the retention, counting and auditing the drops.
func (s *Service) Maintain(ctx context.Context) error {
	dropped, err := s.store.TrimQueues(ctx, s.cfg.QueueLimit)
	if err != nil {
		return err
	}
	for id, n := range dropped {
		s.cfg.Metrics.SSF(metrics.SSFDropped, int(n))
		s.cfg.Logger.Warn("SSF queue full: oldest events dropped", "stream", id, "dropped", n)
		if err := s.auditFailure(ctx, id, 0); err != nil {
			return err
		}
	}
	_, err = s.store.PruneSecurityEvents(ctx, s.cfg.Now().Add(-s.cfg.Retention))
	return err
}

// Run pushes due events until ctx ends: at once when notified of new events, else every
// pushIdle (retries come due with time); and keeps the queues within their bounds. Errors are
// logged; the queue is durable, so nothing is lost by them.
func (s *Service) Run(ctx context.Context) {
	maintain := time.NewTicker(maintainPeriod)
	defer maintain.Stop()
	idle := time.NewTimer(0)
	defer idle.Stop()
	for {
		wake := s.woken()
		n, err := s.PushOnce(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.cfg.Logger.Error("SSF push", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		idle.Reset(pushIdle)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-idle.C:
		case <-maintain.C:
			if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("SSF queue maintenance", "err", err)
			}
		}
	}
}
