package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
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
	err := s.db.WithContext(ctx).Create(&row).Error
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
}

// RotateRefreshToken retires refresh token oldID at now and records next as its replacement,
// moving the session's expiry to next.ExpiresAt and its last use to now, all in one
// transaction. Of any number of concurrent rotations of one token exactly one has Rotated
// set; the others see the replacement it recorded. It returns ErrRefreshTokenNotFound if
// oldID was never recorded.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, now time.Time) (Rotation, error) {
	var out Rotation
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		nextRow := toRefreshTokenRow(next)
		// The conditional update is the arbiter: on PostgreSQL a concurrent rotation waits
		// for this row's lock and then finds used_at set; SQLite's immediate transactions
		// run one writer at a time.
		// RETURNING reads the retired row in the same statement: a rotation holds SQLite's
		// one writer connection, and every statement saved shortens the queue behind it.
		var old refreshTokenRow
		res := tx.Model(&old).Clauses(clause.Returning{}).Where("id = ? AND used_at IS NULL", oldID).
			Updates(map[string]any{"used_at": utc(now), "replaced_by": nextRow.ID})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Where("id = ?", oldID).Take(&old).Error; err != nil {
				return err
			}
		}
		out.Old = old.token()
		if res.RowsAffected == 0 {
			if old.ReplacedBy != nil {
				var rep refreshTokenRow
				if err := tx.Where("id = ?", *old.ReplacedBy).Take(&rep).Error; err == nil {
					out.Replacement = rep.token()
				} else if !errors.Is(err, gorm.ErrRecordNotFound) {
					return err
				}
			}
			return nil
		}
		nextRow.SessionID = old.SessionID
		if err := tx.Create(&nextRow).Error; err != nil {
			return err
		}
		if err := tx.Model(&sessionRow{}).Where("id = ?", old.SessionID).
			Updates(map[string]any{"expires_at": nextRow.ExpiresAt, "last_used_at": utc(now)}).Error; err != nil {
			return err
		}
		out.Rotated, out.Replacement = true, nextRow.token()
		return nil
	})
	if err != nil {
		return Rotation{}, dbErr("rotate refresh token", err, ErrRefreshTokenNotFound)
	}
	return out, nil
}
