package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Session is one login of a user: the refresh-token family and the "sid" of
// the access tokens issued for it.
type Session struct {
	ID                               string
	UserID                           int64
	CreatedAt, LastUsedAt, ExpiresAt time.Time
	RevokedAt                        *time.Time
	UserAgent, IP                    string
	// AMR is how the user authenticated (RFC 8176), e.g. ["pwd"]; empty is stored as ["pwd"].
	AMR []string
	// AuthTime is when the user last authenticated in this session (the tokens' auth_time):
	// its CreatedAt until a re-authentication raises it (RaiseSession). Zero when written
	// means CreatedAt.
	AuthTime time.Time
}

// sessionRow is the sessions table.
type sessionRow struct {
	ID         string `gorm:"primaryKey"`
	UserID     int64
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	UserAgent  string
	IP         string `gorm:"column:ip"`
	AMR        string `gorm:"column:amr"`
	AuthTime   *time.Time
}

func (sessionRow) TableName() string { return "sessions" }

// amrColumn and amrOf convert amr values to the column (space-separated) and back.
func amrColumn(amr []string) string {
	if len(amr) == 0 {
		return "pwd"
	}
	return strings.Join(amr, " ")
}

func amrOf(col string) []string { return strings.Fields(col) }

func toSessionRow(s *Session) sessionRow {
	return sessionRow{
		ID:         s.ID,
		UserID:     s.UserID,
		CreatedAt:  utc(s.CreatedAt),
		LastUsedAt: utc(s.LastUsedAt),
		ExpiresAt:  utc(s.ExpiresAt),
		RevokedAt:  utcPtr(s.RevokedAt),
		UserAgent:  s.UserAgent,
		IP:         s.IP,
		AMR:        amrColumn(s.AMR),
		AuthTime:   authTimeColumn(s.CreatedAt, s.AuthTime),
	}
}

// authTimeColumn is the auth_time column of a session created at created: NULL (created_at)
// unless it is another time.
func authTimeColumn(created, authTime time.Time) *time.Time {
	if authTime.IsZero() || authTime.Equal(created) {
		return nil
	}
	t := utc(authTime)
	return &t
}

func (r sessionRow) session() Session {
	sess := Session{
		ID:         r.ID,
		UserID:     r.UserID,
		CreatedAt:  r.CreatedAt.UTC(),
		LastUsedAt: r.LastUsedAt.UTC(),
		ExpiresAt:  r.ExpiresAt.UTC(),
		RevokedAt:  utcPtr(r.RevokedAt),
		UserAgent:  r.UserAgent,
		IP:         r.IP,
		AMR:        amrOf(r.AMR),
		AuthTime:   r.CreatedAt.UTC(),
	}
	if r.AuthTime != nil {
		sess.AuthTime = r.AuthTime.UTC()
	}
	return sess
}

// CreateSession inserts sess. An empty ID becomes a random one, a zero
// CreatedAt the current time and a zero LastUsedAt the CreatedAt; sess is
// updated with the stored values (UTC, microsecond precision). It returns
// ErrUserNotFound (an ErrNotFound) if sess.UserID names no user, and
// ErrConflict if the ID is taken.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	defer done()
	row, err := createSession(s.db.WithContext(ctx), sess)
	if err != nil {
		return err
	}
	*sess = row.session()
	return nil
}

// StartSession records a login in one transaction: it inserts sess as CreateSession does,
// records its first refresh token (first.SessionID is set to the session's), sets the
// user's last login to the session's CreatedAt, writes events to the audit log with the
// session's user as TargetID and its ID as SessionID, and logs that change of the user (see
// AuthChange). passwordHash is the hash the login checked the password against: if the user's
// hash is another by now (the password was changed since), nothing is recorded, no event
// either, and it returns ErrPasswordChanged, so that no login with an old password outlives a
// password change. It returns CreateSession's sentinels too.
func (s *Store) StartSession(ctx context.Context, sess *Session, first RefreshToken, passwordHash string, events ...AuditEvent) error {
	in := *sess
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now()
	}
	var row sessionRow
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		// The user's row first: on PostgreSQL this waits for a password change in progress
		// and then sees its new hash.
		res := tx.Model(&userRow{}).Where("id = ? AND password_hash = ?", in.UserID, passwordHash).
			Update("last_login", utc(in.CreatedAt))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return missingOrChanged(tx, in.UserID)
		}
		var err error
		if row, err = createSessionWithToken(tx, &in, first); err != nil {
			return err
		}
		if _, err := writeAudit(tx, row.CreatedAt, withTarget(events, row.UserID, row.ID)); err != nil {
			return err
		}
		// The user's last login is part of what caches hold (GET /account shows it).
		w.user(row.UserID)
		return nil
	})
	if err != nil {
		return dbErr("start session", err, ErrNotFound)
	}
	*sess = row.session()
	return nil
}

// missingOrChanged tells why a statement conditional on user id's password hash matched no
// row: ErrUserNotFound if there is no such user, else ErrPasswordChanged.
func missingOrChanged(tx *gorm.DB, id int64) error {
	var n int64
	if err := tx.Model(&userRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return ErrUserNotFound
	}
	return ErrPasswordChanged
}

// createSessionWithToken creates sess, as createSession does, with its first refresh token.
func createSessionWithToken(tx *gorm.DB, sess *Session, first RefreshToken) (sessionRow, error) {
	row, err := createSession(tx, sess)
	if err != nil {
		return row, err
	}
	first.SessionID = row.ID
	rt := toRefreshTokenRow(first)
	if err := tx.Create(&rt).Error; err != nil {
		return row, dbErr("record refresh token", err, ErrNotFound)
	}
	return row, nil
}

func createSession(db *gorm.DB, sess *Session) (sessionRow, error) {
	s := *sess
	if s.ID == "" {
		s.ID = rand.Text()
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	if s.LastUsedAt.IsZero() {
		s.LastUsedAt = s.CreatedAt
	}
	row := toSessionRow(&s)
	err := db.Create(&row).Error
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return row, ErrUserNotFound
	}
	if err != nil {
		return row, dbErr("create session", err, ErrSessionNotFound)
	}
	return row, nil
}

// SessionByID returns the session, or ErrSessionNotFound (an ErrNotFound).
func (s *Store) SessionByID(ctx context.Context, id string) (Session, error) {
	var row sessionRow
	if err := s.read.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return Session{}, dbErr("session", err, ErrSessionNotFound)
	}
	return row.session(), nil
}

// userSessionQuery reads a user and, when it exists and belongs to that user,
// one session, in a single round trip (PostgreSQL).
const userSessionQuery = `SELECT
	u.id, u.username, u.first_name, u.last_name, u.email, u.password_hash,
	u.is_active, u.is_staff, u.is_superuser, u.last_login, u.date_joined,
	u.email_verified, u.email_verified_at, u.pending_email, u.signed_up, ` + hasFactorSQL + `,
	s.id, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.user_agent, s.ip, s.amr, s.auth_time
FROM users u
LEFT JOIN sessions s ON s.id = $1 AND s.user_id = u.id
WHERE u.id = $2`

// userSessionRefreshQuery is userSessionQuery with the session's refresh token $3.
const userSessionRefreshQuery = `SELECT
	u.id, u.username, u.first_name, u.last_name, u.email, u.password_hash,
	u.is_active, u.is_staff, u.is_superuser, u.last_login, u.date_joined,
	u.email_verified, u.email_verified_at, u.pending_email, u.signed_up, ` + hasFactorSQL + `,
	s.id, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.user_agent, s.ip, s.amr, s.auth_time,
	r.id, r.used_at
FROM users u
LEFT JOIN sessions s ON s.id = $1 AND s.user_id = u.id
LEFT JOIN refresh_tokens r ON r.id = $3 AND r.session_id = s.id
WHERE u.id = $2`

// On SQLite the same read is two lookups by primary key: a join with a bound parameter is
// compiled again on every run (its plan depends on the value), which cost about 40µs a call.
const (
	userByIDQuery = `SELECT
	u.id, u.username, u.first_name, u.last_name, u.email, u.password_hash,
	u.is_active, u.is_staff, u.is_superuser, u.last_login, u.date_joined,
	u.email_verified, u.email_verified_at, u.pending_email, u.signed_up, ` + hasFactorSQL + `
FROM users u WHERE u.id = ?`
	userSessionByIDQuery = `SELECT
	id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, amr, auth_time
FROM sessions WHERE id = ? AND user_id = ?`
	sessionRefreshByIDQuery = `SELECT id, used_at FROM refresh_tokens WHERE id = ? AND session_id = ?`
)

// hasFactorSQL is whether the user u has an active second factor (User.HasFactor), the one
// place that says which tables hold factors: a factor added or removed is an auth change
// (authTx), so what a cache holds of it is dropped with the user's entries.
const hasFactorSQL = `(EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = u.id AND f.active) OR ` +
	`EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id))`

// UserSession loads a user and one of their sessions; every authenticated request that
// misses the auth cache calls it, and every refresh. It returns ErrUserNotFound if the user
// does not exist, and the user with ErrSessionNotFound if the session does not exist or
// belongs to another user (both are ErrNotFound). Whether the session is live is for the
// caller to judge (Session.Live).
func (s *Store) UserSession(ctx context.Context, userID int64, sessionID string) (User, Session, error) {
	u, sess, _, err := s.userSession(ctx, userID, sessionID, "")
	return u, sess, err
}

// UserSessionRefresh is UserSession that also reads the session's refresh token refreshID,
// in the same round trip on PostgreSQL: what checking a refresh token needs. Only ID and
// UsedAt of the token are read. Past UserSession's errors, it returns
// ErrRefreshTokenNotFound if the session holds no such token.
func (s *Store) UserSessionRefresh(ctx context.Context, userID int64, sessionID, refreshID string) (User, Session, RefreshToken, error) {
	return s.userSession(ctx, userID, sessionID, refreshID)
}

// userSession is UserSession, and UserSessionRefresh when refreshID is not empty.
func (s *Store) userSession(ctx context.Context, userID int64, sessionID, refreshID string) (User, Session, RefreshToken, error) {
	var (
		u                    userRow
		lastLogin, revokedAt sql.NullTime
		verifiedAt           sql.NullTime
		sid, userAgent, ip   sql.NullString
		amr                  sql.NullString
		created, used, exp   sql.NullTime
		authTime             sql.NullTime
		hasFactor            bool
		rid                  sql.NullString
		usedAt               sql.NullTime
	)
	userCols := []any{&u.ID, &u.Username, &u.FirstName, &u.LastName, &u.Email, &u.PasswordHash,
		&u.IsActive, &u.IsStaff, &u.IsSuperuser, &lastLogin, &u.DateJoined,
		&u.EmailVerified, &verifiedAt, &u.PendingEmail, &u.SignedUp, &hasFactor}
	sessionCols := []any{&sid, &created, &used, &exp, &revokedAt, &userAgent, &ip, &amr, &authTime}
	refreshCols := []any{&rid, &usedAt}
	var err error
	switch {
	case s.dialect == dialectPostgres && refreshID == "":
		err = s.queryRow(ctx, userSessionQuery, []any{sessionID, userID}, append(userCols, sessionCols...)...)
	case s.dialect == dialectPostgres:
		err = s.queryRow(ctx, userSessionRefreshQuery, []any{sessionID, userID, refreshID},
			append(append(userCols, sessionCols...), refreshCols...)...)
	default:
		err = s.queryRow(ctx, userByIDQuery, []any{userID}, userCols...)
		if err == nil {
			err = s.queryRow(ctx, userSessionByIDQuery, []any{sessionID, userID}, sessionCols...)
			if errors.Is(err, sql.ErrNoRows) {
				err, sid = nil, sql.NullString{}
			}
		}
		if err == nil && sid.Valid && refreshID != "" {
			err = s.queryRow(ctx, sessionRefreshByIDQuery, []any{refreshID, sessionID}, refreshCols...)
			if errors.Is(err, sql.ErrNoRows) {
				err, rid = nil, sql.NullString{}
			}
		}
	}
	if err != nil {
		return User{}, Session{}, RefreshToken{}, dbErr(fmt.Sprintf("user %d session", userID), err, ErrUserNotFound)
	}
	u.LastLogin, u.EmailVerifiedAt = nullTime(lastLogin), nullTime(verifiedAt)
	user := u.user()
	user.HasFactor = hasFactor
	if !sid.Valid {
		return user, Session{}, RefreshToken{}, ErrSessionNotFound
	}
	sess := sessionRow{
		ID:         sid.String,
		UserID:     u.ID,
		CreatedAt:  created.Time,
		LastUsedAt: used.Time,
		ExpiresAt:  exp.Time,
		RevokedAt:  nullTime(revokedAt),
		UserAgent:  userAgent.String,
		IP:         ip.String,
		AMR:        amr.String,
		AuthTime:   nullTime(authTime),
	}
	if refreshID != "" && !rid.Valid {
		return user, sess.session(), RefreshToken{}, ErrRefreshTokenNotFound
	}
	return user, sess.session(), RefreshToken{ID: rid.String, SessionID: sid.String, UsedAt: nullTime(usedAt)}, nil
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// RevokeSession marks the session revoked at at, and in the same transaction writes events
// to the audit log (with the session's user as TargetID and its ID as SessionID) and logs the
// change (see AuthChange). It reports false, with no error and no event written, if the
// session was already revoked (its revocation time is kept), and returns ErrSessionNotFound
// (an ErrNotFound) if there is no such session.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, events ...AuditEvent) (bool, error) {
	var revoked bool
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		var row sessionRow
		if err := tx.Select("user_id").Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		res := tx.Model(&sessionRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", utc(at))
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		revoked = true
		if _, err := writeAudit(tx, at, withTarget(events, row.UserID, id)); err != nil {
			return err
		}
		w.session(row.UserID, id)
		w.event(EventSessionRevoked, row.UserID, id, events)
		return nil
	})
	if err != nil {
		return false, dbErr("revoke session", err, ErrSessionNotFound)
	}
	return revoked, nil
}

// RevokeUserSessions revokes, at at, every session of the user that is live
// at at, and returns how many it revoked; if any, it writes events to the audit log (with the
// user as TargetID) and logs the change (see AuthChange) in the same transaction. An unknown
// user has no sessions: (0, nil). It returns no sentinels.
func (s *Store) RevokeUserSessions(ctx context.Context, userID int64, at time.Time, events ...AuditEvent) (int64, error) {
	var n int64
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		ids, err := revokeUserSessions(tx, userID, at)
		if n = int64(len(ids)); err != nil || n == 0 {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(events, userID, "")); err != nil {
			return err
		}
		w.user(userID)
		w.sessionsRevoked(userID, ids, events)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// revokeUserSessions is RevokeUserSessions in tx, an authTx's transaction, without
// reporting the change (the caller does). It returns the ids of the sessions it revoked, so
// that each gets its own session-revoked event (see authWrite.sessionsRevoked).
// Expired sessions are left alone: they are dead already, and their
// revoked_at stays meaningful ("logged out" rather than "expired").
//
// On SQLite times are text ("2006-01-02 15:04:05.999999999+00:00"); because
// every stored time is UTC, comparing them as text orders them correctly.
func revokeUserSessions(tx *gorm.DB, userID int64, at time.Time) ([]string, error) {
	at = utc(at)
	var ids []string
	err := tx.Raw("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND "+liveSession+" RETURNING id",
		at, userID, at).Scan(&ids).Error
	return ids, err
}

// TouchSession records that the session was used at at. It returns
// ErrSessionNotFound (an ErrNotFound).
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Model(&sessionRow{}).Where("id = ?", id).Update("last_used_at", utc(at))
	})
	if res.Error != nil {
		return fmt.Errorf("touch session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrSessionNotFound
	}
	return nil
}

// LiveSessions returns the user's sessions that are live at now, newest first. It returns no
// sentinels.
func (s *Store) LiveSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error) {
	var rows []sessionRow
	err := s.read.WithContext(ctx).
		Where("user_id = ? AND "+liveSession, userID, utc(now)).
		Order("created_at DESC, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("live sessions of user %d: %w", userID, err)
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = r.session()
	}
	return out, nil
}

// RevokeUserSession revokes, at at, one live session of the user, and in the same
// transaction writes events to the audit log (with the user as TargetID and the session's ID
// as SessionID) and logs the change (see AuthChange). It returns ErrSessionNotFound (an
// ErrNotFound) when the user has no live session with that id, including another user's
// session.
func (s *Store) RevokeUserSession(ctx context.Context, userID int64, id string, at time.Time, events ...AuditEvent) error {
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		res := tx.Model(&sessionRow{}).
			Where("id = ? AND user_id = ? AND "+liveSession, id, userID, utc(at)).
			Update("revoked_at", utc(at))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrSessionNotFound
		}
		if _, err := writeAudit(tx, at, withTarget(events, userID, id)); err != nil {
			return err
		}
		w.session(userID, id)
		w.event(EventSessionRevoked, userID, id, events)
		return nil
	})
	if errors.Is(err, ErrSessionNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("revoke session of user %d: %w", userID, err)
	}
	return nil
}

// Flushed counts what FlushExpired deleted.
type Flushed struct{ Sessions, LoginFailures, MFAChallenges, WebAuthnCeremonies int64 }

// FlushExpired deletes sessions (with their refresh tokens) that expired before now or were
// revoked before revokedBefore, login failures older than failuresBefore, and second-factor
// challenges and WebAuthn ceremonies that expired before now (unanswered logins, unfinished
// registrations). It returns no sentinels.
func (s *Store) FlushExpired(ctx context.Context, now, revokedBefore, failuresBefore time.Time) (Flushed, error) {
	var out Flushed
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("expires_at <= ? OR revoked_at < ?", utc(now), utc(revokedBefore)).Delete(&sessionRow{})
		if res.Error != nil {
			return res.Error
		}
		out.Sessions = res.RowsAffected
		res = tx.Where("at < ?", utc(failuresBefore)).Delete(&loginFailureRow{})
		if res.Error != nil {
			return res.Error
		}
		out.LoginFailures = res.RowsAffected
		res = tx.Where("expires_at <= ?", utc(now)).Delete(&mfaChallengeRow{})
		if res.Error != nil {
			return res.Error
		}
		out.MFAChallenges = res.RowsAffected
		res = tx.Where("expires_at <= ?", utc(now)).Delete(&webauthnCeremonyRow{})
		out.WebAuthnCeremonies = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return Flushed{}, fmt.Errorf("flush expired: %w", err)
	}
	return out, nil
}
