package store

import "time"

// The two rules that decide whether a session may be used and for how long, each in Go and,
// where a statement must apply it for speed, in SQL built here. TestSessionRulesMatchSQL pins
// each SQL form to its Go form on both databases.

// Live reports whether the session is usable at now (not revoked, not expired). liveSessionSQL
// is the same rule in SQL; a refresh also requires the user to be active.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// liveSessionSQL is Session.Live as a condition on a sessions row: col prefixes its columns
// ("s." for an alias, "" for none) and at is the placeholder of the time.
func liveSessionSQL(col, at string) string {
	return col + "revoked_at IS NULL AND " + col + "expires_at > " + at
}

// liveSession is liveSessionSQL for the sessions table queried alone, at the time bound to ?.
var liveSession = liveSessionSQL("", "?")

// RefreshExpiry is when a refresh token issued at now for a session created at created
// expires: refreshLifetime after now, but never past maxLifetime after created. When it is
// not after now, the session has reached its maximum lifetime and is not refreshed.
// RotateLiveRefreshToken computes the same in SQL (refreshExpirySQL).
func RefreshExpiry(created, now time.Time, refreshLifetime, maxLifetime time.Duration) time.Time {
	next, last := now.Add(refreshLifetime), created.Add(maxLifetime)
	if last.Before(next) {
		return last
	}
	return next
}

// refreshExpirySQL is RefreshExpiry in PostgreSQL: nextExpiry is the placeholder of now plus
// the refresh lifetime, created the session's creation column, maxMicros the placeholder of
// the maximum lifetime in microseconds.
func refreshExpirySQL(nextExpiry, created, maxMicros string) string {
	return "LEAST(" + nextExpiry + "::timestamptz, " + created + " + " + maxMicros + "::bigint * interval '1 microsecond')"
}
