// Package throttle limits login attempts per account and per client IP, and token refreshes
// per client IP.
//
// Login failures are counted in the database, so every instance sharing it shares the
// limits, and an attempt is reserved (recorded as a failure) before its password is hashed,
// so that parallel attempts cannot all slip past the count. Refreshes are counted in each
// process's memory, in a bounded store.
package throttle

import (
	"context"
	"net/netip"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// Policy is how many login failures, within Window, refuse further attempts. A negative
// limit is off.
type Policy struct {
	FailuresPerAccount int
	FailuresPerIP      int
	Window             time.Duration
	// KnownIPLifetime is how long after its last successful login an IP stays one the user
	// logs in from (see Begin); a change of the password forgets every such IP at once. Zero
	// keeps none.
	KnownIPLifetime time.Duration
}

// Logins applies a Policy to login attempts.
type Logins struct {
	store  *store.Store
	policy Policy
	now    func() time.Time
}

// NewLogins returns the login throttle over st, reading the time from now.
func NewLogins(st *store.Store, p Policy, now func() time.Time) *Logins {
	return &Logins{store: st, policy: p, now: now}
}

// Attempt is a login attempt reserved by Begin: it counts as a
// failure, and its audit event of a failure stays, unless Succeeded or Abandon withdraws it.
// Succeeded, Failed and Abandon settle the attempt even when their ctx is cancelled (the
// client hung up): only their ctx's values are used, within a bounded time of their own.
type Attempt struct {
	l              *Logins
	res            store.LoginReservation
	account, ipKey string
	reserved       bool             // false when no limit is on: nothing was recorded
	failure        store.AuditEvent // the audit event of a failure
}

// Events are the audit actions of an attempt: failed is recorded with the reservation (and
// withdrawn with it), throttled counted when the attempt is refused. The use-case that makes
// the attempt names them (a login, the old password of a password change).
type Events struct{ Failed, Throttled audit.Action }

// Begin reserves an attempt for username made by src (src.IP is the client IP). It counts the
// failures in the window against the account and against the IP (see IPKey); when either has
// reached its limit it reserves nothing, counts an audit event of ev.Throttled (one row per
// IP and window: see store.LoginAttempt) and returns how long to wait (positive). Otherwise
// it records, with the reservation, the audit event of ev.Failed. An IP that has logged into
// the account within the policy's KnownIPLifetime, since the password last changed, counts
// against the account only the failures that came from it, so that failures from elsewhere do
// not lock the owner out.
func (l *Logins) Begin(ctx context.Context, username string, src audit.Source, ev Events) (Attempt, time.Duration, error) {
	p := l.policy
	a := Attempt{l: l, account: AccountKey(username), ipKey: IPKey(src.IP), failure: src.Event(ev.Failed)}
	if p.FailuresPerAccount < 0 && p.FailuresPerIP < 0 {
		return a, 0, nil
	}
	now := l.now().UTC()
	known := false
	if p.FailuresPerAccount >= 0 {
		var err error
		if known, err = l.store.LoginIPKnown(ctx, a.account, a.ipKey, now.Add(-p.KnownIPLifetime)); err != nil {
			return Attempt{}, 0, err
		}
	}
	res, err := l.store.ReserveLoginAttempt(ctx, store.LoginAttempt{
		Account: a.account, IP: a.ipKey, At: now, Since: now.Add(-p.Window),
		AccountLimit: p.FailuresPerAccount, IPLimit: p.FailuresPerIP, AccountFromIPOnly: known,
		Failure: a.failure, Throttled: src.Event(ev.Throttled),
	})
	if err != nil {
		return Attempt{}, 0, err
	}
	if res.Reserved {
		a.res, a.reserved = res, true
		return a, 0, nil
	}
	// Every counted failure is later than now minus the window, so the wait is positive.
	wait := max(l.wait(res.AccountFailures, p.FailuresPerAccount, now), l.wait(res.IPFailures, p.FailuresPerIP, now), time.Nanosecond)
	return Attempt{}, wait, nil
}

// wait is how long until fewer than limit of the failures recent (newest first, at most
// limit) are left in the window: until the limit-th most recent one leaves it.
func (l *Logins) wait(recent []time.Time, limit int, now time.Time) time.Duration {
	switch {
	case limit < 0 || len(recent) < limit:
		return 0
	case limit == 0:
		return l.policy.Window
	}
	return recent[limit-1].Add(l.policy.Window).Sub(now)
}

// Succeeded withdraws the attempt of user userID, whose password was right against
// passwordHash, with its audit event of a failure, forgets the account's failures from the
// attempt's IP and remembers that IP as one the user logs in from (unless the password has
// changed since). The login's own event is the session's to record (store.StartSession).
func (a Attempt) Succeeded(ctx context.Context, userID int64, passwordHash string) error {
	if !a.reserved {
		return nil
	}
	ctx, cancel := settling(ctx)
	defer cancel()
	return a.l.store.LoginSucceeded(ctx, a.res, userID, passwordHash, a.account, a.ipKey, a.l.now())
}

// settleTimeout bounds how long settling an attempt may take once its caller has gone.
const settleTimeout = 30 * time.Second

// settling is ctx for settling an attempt: not cancelled with the caller (a client that
// hangs up after its right password was checked must not leave the reserved failure behind),
// but bounded, so that a stuck database cannot hold the request forever.
func settling(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// Failed records the audit event of the attempt failing, made against user userID (0 when
// the username names nobody), when Begin did not (no limit is on); the reservation stays as
// the failure otherwise.
func (a Attempt) Failed(ctx context.Context, userID int64) error {
	if a.reserved || a.l == nil {
		return nil
	}
	e := a.failure
	e.TargetID = userID
	if e.At.IsZero() {
		e.At = a.l.now()
	}
	ctx, cancel := settling(ctx)
	defer cancel()
	return a.l.store.RecordAuditEvents(ctx, e)
}

// Abandon withdraws an attempt whose password was never checked (the hasher was busy, the
// database failed), with its audit event, so that it does not count as a failure.
func (a Attempt) Abandon(ctx context.Context) error {
	if !a.reserved {
		return nil
	}
	ctx, cancel := settling(ctx)
	defer cancel()
	return a.l.store.ReleaseLoginAttempt(ctx, a.res)
}

// AccountKey is the throttling key of a username: the same for every spelling that names
// the same account, known or not, so that "ＡＤＭＩＮ" shares the failures of "admin": the
// store's username key (case and compatibility forms ignored, see store.UsernameKey). Invalid
// UTF-8 and NUL bytes become U+FFFD first, so the key can always be stored.
func AccountKey(username string) string {
	return store.UsernameKey(userfields.MakeStorable(username))
}

// IPKey is the throttling key of a client IP: an IPv4 address as itself (an IPv4-mapped IPv6
// address too), an IPv6 address as its /64, the smallest network a single client is usually
// given, so that one client cannot multiply its allowance by changing addresses within it.
// Anything that is not an IP address is its own key.
func IPKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
