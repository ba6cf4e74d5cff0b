package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RefreshToken is one refresh token issued for a session, known by its jti. Rotation retires
// it (UsedAt) and names the token that replaced it (ReplacedBy).
type RefreshToken struct {
	ID         string // the token's jti
	SessionID  string
	AccessID   string // jti of the access token issued with it
	IssuedAt   time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	ReplacedBy string
}

type refreshTokenRow struct {
	ID         string `gorm:"primaryKey"`
	SessionID  string
	AccessID   string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	ReplacedBy *string
}

func (refreshTokenRow) TableName() string { return "refresh_tokens" }

func toRefreshTokenRow(t RefreshToken) refreshTokenRow {
	row := refreshTokenRow{
		ID: t.ID, SessionID: t.SessionID, AccessID: t.AccessID,
		IssuedAt: utc(t.IssuedAt), ExpiresAt: utc(t.ExpiresAt), UsedAt: utcPtr(t.UsedAt),
	}
	if t.ReplacedBy != "" {
		row.ReplacedBy = &t.ReplacedBy
	}
	return row
}

func (r refreshTokenRow) token() RefreshToken {
	t := RefreshToken{
		ID: r.ID, SessionID: r.SessionID, AccessID: r.AccessID,
		IssuedAt: r.IssuedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), UsedAt: utcPtr(r.UsedAt),
	}
	if r.ReplacedBy != nil {
		t.ReplacedBy = *r.ReplacedBy
	}
	return t
}

// CreateRefreshToken records a newly issued refresh token. It returns ErrSessionNotFound (an
// ErrNotFound) if its session does not exist, and ErrConflict if the ID is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t RefreshToken) error {
	row := toRefreshTokenRow(t)
	err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&row) }).Error
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return ErrSessionNotFound
	}
	return dbErr("create refresh token", err, ErrNotFound)
}

// RefreshTokenByID returns the refresh token, or ErrRefreshTokenNotFound (an ErrNotFound).
func (s *Store) RefreshTokenByID(ctx context.Context, id string) (RefreshToken, error) {
	var row refreshTokenRow
	if err := s.read.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return RefreshToken{}, dbErr("refresh token", err, ErrRefreshTokenNotFound)
	}
	return row.token(), nil
}

// ErrRefreshTokenNotFound is ErrNotFound for a refresh token never recorded.
var ErrRefreshTokenNotFound = fmt.Errorf("refresh token: %w", ErrNotFound)

// Rotation is the outcome of RotateRefreshToken.
type Rotation struct {
	// Rotated is true when this call retired the old token and recorded next.
	Rotated bool
	// Old is the old token as stored after the call; when Rotated is false it was already
	// retired, at Old.UsedAt, by the token Replacement.
	Old RefreshToken
	// Replacement is the token that replaced Old: next when Rotated, otherwise the one an
	// earlier rotation recorded (zero if there is none).
	Replacement RefreshToken
	// SessionAMR and SessionAuthTime are the session's amr and auth_time, set by
	// RotateLiveRefreshToken only (which reads the session anyway), so that a refresh needs no
	// other read for them.
	SessionAMR      []string
	SessionAuthTime time.Time
}

// RotateRefreshToken retires refresh token oldID at now and records next as its replacement,
// moving the session's expiry to next.ExpiresAt and its last use to now, all in one
// transaction. Of any number of concurrent rotations of one token exactly one has Rotated
// set; the others see the replacement it recorded. It returns ErrRefreshTokenNotFound if
// oldID was never recorded.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, now time.Time) (Rotation, error) {
	now = utc(now)
	nextRow := toRefreshTokenRow(next)
	var (
		old     RefreshToken
		rotated bool
		err     error
	)
	// Plain SQL: rotation is the hottest write, and on SQLite every other writer queues for the
	// one connection while it runs, so it skips gorm's per-call building and reflection.
	if s.dialect == dialectPostgres {
		old, rotated, err = s.rotatePostgres(ctx, oldID, nextRow, now)
	} else {
		old, rotated, err = s.rotateSQLite(ctx, oldID, nextRow, now)
	}
	if err == nil && !rotated {
		return s.retiredRotation(ctx, oldID)
	}
	if err != nil {
		// Sent with database/sql directly: classified here, not by gorm.
		return Rotation{}, dbErr("rotate refresh token", s.avail.classify(err), ErrRefreshTokenNotFound)
	}
	return rotationOf(oldID, old, nextRow, now), nil
}

// rotationOf is the outcome of a rotation that retired oldID at now, old being what the
// retiring statement returned of it, and recorded next.
func rotationOf(oldID string, old RefreshToken, next refreshTokenRow, now time.Time) Rotation {
	old.ID, old.UsedAt, old.ReplacedBy = oldID, &now, next.ID
	old.IssuedAt, old.ExpiresAt = old.IssuedAt.UTC(), old.ExpiresAt.UTC()
	next.SessionID = old.SessionID
	return Rotation{Rotated: true, Old: old, Replacement: next.token()}
}

// The conditional update is the arbiter: on PostgreSQL a concurrent rotation waits for the old
// row's lock and then finds used_at set; SQLite's immediate transactions run one writer at a
// time. No row back means the token is unknown or already retired.
const (
	retireRefreshTokenSQL = `UPDATE refresh_tokens SET used_at = ?, replaced_by = ?
		WHERE id = ? AND used_at IS NULL
		RETURNING session_id, access_id, issued_at, expires_at`
	insertRefreshTokenSQL = `INSERT INTO refresh_tokens (id, session_id, access_id, issued_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`
	extendSessionSQL = `UPDATE sessions SET expires_at = ?, last_used_at = ? WHERE id = ?`

	// One statement, so one round trip and an implicit transaction: PostgreSQL runs the
	// data-modifying parts together, each seeing the row the one before returned.
	rotatePostgresSQL = rotatePostgresCTE + `
		SELECT session_id, access_id, issued_at, expires_at FROM old`
	// The same, committing without waiting for the disk (Options.RotationCommit).
	rotatePostgresAsyncSQL = rotatePostgresCTE + `, relaxed AS (
			SELECT set_config('synchronous_commit', 'off', true)
		)
		SELECT session_id, access_id, issued_at, expires_at FROM old, relaxed`
	rotatePostgresCTE = `WITH old AS (
			UPDATE refresh_tokens SET used_at = $1, replaced_by = $2
			WHERE id = $3 AND used_at IS NULL
			RETURNING session_id, access_id, issued_at, expires_at
		), next AS (
			INSERT INTO refresh_tokens (id, session_id, access_id, issued_at, expires_at)
			SELECT $2, session_id, $4, $5, $6 FROM old
			RETURNING session_id
		), extended AS (
			UPDATE sessions SET expires_at = $6, last_used_at = $1
			WHERE id = (SELECT session_id FROM next)
		)`
)

func (s *Store) rotatePostgres(ctx context.Context, oldID string, next refreshTokenRow, now time.Time) (old RefreshToken, rotated bool, err error) {
	err = s.sqlDB.QueryRowContext(ctx, s.rotateSQL, now, next.ID, oldID, next.AccessID, next.IssuedAt, next.ExpiresAt).
		Scan(&old.SessionID, &old.AccessID, &old.IssuedAt, &old.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, false, nil
	}
	return old, err == nil, err
}

// retiredRotation is the outcome for a token that was not rotated: it reads the token and the
// replacement an earlier rotation recorded (the row is final once retired). It returns
// ErrRefreshTokenNotFound if the token was never recorded.
func (s *Store) retiredRotation(ctx context.Context, oldID string) (Rotation, error) {
	var old, rep refreshTokenRow
	if err := s.read.WithContext(ctx).Where("id = ?", oldID).Take(&old).Error; err != nil {
		return Rotation{}, dbErr("rotate refresh token", err, ErrRefreshTokenNotFound)
	}
	out := Rotation{Old: old.token()}
	if old.ReplacedBy == nil {
		return out, nil
	}
	// The replacement was recorded in the transaction that retired old, so it is visible.
	err := s.read.WithContext(ctx).Where("id = ?", *old.ReplacedBy).Take(&rep).Error
	switch {
	case err == nil:
		out.Replacement = rep.token()
	case !errors.Is(err, gorm.ErrRecordNotFound): // else deleted since, with its session
		return Rotation{}, dbErr("rotate refresh token", err, ErrRefreshTokenNotFound)
	}
	return out, nil
}
