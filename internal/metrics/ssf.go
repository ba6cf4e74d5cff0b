package metrics

// SSFOutcome is what became of a Shared Signals event on one stream.
type SSFOutcome string

// Shared Signals outcomes.
const (
	SSFDelivered  SSFOutcome = "pushed"      // pushed, and the receiver accepted it (202)
	SSFAcked      SSFOutcome = "acked"       // acknowledged by a poller
	SSFPushFailed SSFOutcome = "push_failed" // a push attempt failed; retried with backoff
	SSFRejected   SSFOutcome = "rejected"    // the receiver refused it (400): not retried
	SSFDropped    SSFOutcome = "dropped"     // over the stream's queue bound: the oldest go
)

// SSF counts n Shared Signals events by outcome.
func (m *Metrics) SSF(o SSFOutcome, n int) {
	if m != nil && n > 0 {
		m.ssf[o].Add(float64(n))
	}
}
