package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// LiveSession is what RotateLiveRefreshToken requires of the token's session, and how it
// sets the replacement's expiry.
type LiveSession struct {
	UserID    int64
	SessionID string
	// The replacement expires at RefreshExpiry(created, now, RefreshLifetime, MaxLifetime);
	// a session for which that is not after now is not rotated.
	RefreshLifetime, MaxLifetime time.Duration
}

// RotateLiveRefreshToken is RotateRefreshToken in the common case, in one statement with the
// checks a refresh makes: it retires oldID and records next (ExpiresAt computed as LiveSession
// says) only if oldID is unused and belongs to want.SessionID, that session is want.UserID's,
// live at now (Session.Live), not past its maximum lifetime, and the user is active.
// The Rotation it returns carries the session's CreatedAt, amr and auth_time (its tokens' claims).
// Otherwise it changes nothing
// and reports false, and the caller reads the user and session and rotates as usual, to learn
// what failed.
//
// It saves PostgreSQL a round trip and a statement per refresh (the read of user and session).
// On SQLite it always reports false: there that read is cheap and runs beside the writer.
func (s *Store) RotateLiveRefreshToken(ctx context.Context, oldID string, next RefreshToken, now time.Time, want LiveSession) (Rotation, bool, error) {
	if s.dialect != dialectPostgres {
		return Rotation{}, false, nil
	}
	now = utc(now)
	row := toRefreshTokenRow(next)
	var old RefreshToken
	var nextExpires, sessionAuthTime time.Time
	var sessionAMR string
	err := s.sqlDB.QueryRowContext(ctx, s.rotateLiveSQL, now, row.ID, oldID, row.AccessID, row.IssuedAt,
		want.SessionID, want.UserID, now.Add(want.RefreshLifetime), want.MaxLifetime.Microseconds()).
		Scan(&old.SessionID, &old.AccessID, &old.IssuedAt, &old.ExpiresAt, &nextExpires, &sessionAMR, &sessionAuthTime)
	if errors.Is(err, sql.ErrNoRows) {
		return Rotation{}, false, nil
	}
	if err != nil {
		return Rotation{}, false, dbErr("rotate refresh token", s.avail.classify(err), ErrRefreshTokenNotFound)
	}
	row.ExpiresAt = nextExpires
	rot := rotationOf(oldID, old, row, now)
	rot.SessionAMR = amrOf(sessionAMR)
	rot.SessionAuthTime = sessionAuthTime.UTC()
	return rot, true, nil
}

// rotateLivePostgresCTE is rotatePostgresCTE with the session and user checks in the retiring
// update, and the replacement's expiry computed from the session's creation: the rules of
// sessionrule.go, in their SQL form. The sessions and users rows are read, not locked: a
// revocation committed meanwhile applies from the next request on, as it does when the read
// is a statement of its own.
var rotateLivePostgresCTE = `WITH old AS (
		UPDATE refresh_tokens t SET used_at = $1, replaced_by = $2
		FROM sessions s, users u
		WHERE t.id = $3 AND t.used_at IS NULL
			AND s.id = t.session_id AND s.id = $6 AND s.user_id = $7 AND u.id = s.user_id
			AND u.is_active AND ` + liveSessionSQL("s.", "$1") + `
			AND ` + refreshExpirySQL("$8", "s.created_at", "$9") + ` > $1
		RETURNING t.session_id, t.access_id, t.issued_at, t.expires_at,
			` + refreshExpirySQL("$8", "s.created_at", "$9") + ` AS next_expires, s.amr AS session_amr,
			COALESCE(s.auth_time, s.created_at) AS session_auth_time
	), next AS (
		INSERT INTO refresh_tokens (id, session_id, access_id, issued_at, expires_at)
		SELECT $2, session_id, $4, $5, next_expires FROM old
		RETURNING session_id, expires_at
	), extended AS (
		UPDATE sessions SET expires_at = next.expires_at, last_used_at = $1
		FROM next WHERE sessions.id = next.session_id
	)`

var (
	rotateLivePostgresSQL = rotateLivePostgresCTE + `
	SELECT session_id, access_id, issued_at, expires_at, next_expires, session_amr, session_auth_time FROM old`
	rotateLivePostgresAsyncSQL = rotateLivePostgresCTE + `, relaxed AS (
		SELECT set_config('synchronous_commit', 'off', true)
	)
	SELECT session_id, access_id, issued_at, expires_at, next_expires, session_amr, session_auth_time FROM old, relaxed`
)
