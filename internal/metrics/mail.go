package metrics

// MailOutcome is what became of one attempt to deliver a message of the mail outbox.
type MailOutcome string

// Mail outcomes.
const (
	MailSent   MailOutcome = "sent"   // accepted by the SMTP server (or written by the development sink)
	MailRetry  MailOutcome = "retry"  // an attempt failed; retried with backoff
	MailFailed MailOutcome = "failed" // given up after the attempt bound (audited mail.failed)
)

// Mail counts one attempt to deliver a message, by outcome.
func (m *Metrics) Mail(o MailOutcome) {
	if m != nil {
		m.mail[o].Inc()
	}
}
