package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// TOTPFactor is a user's TOTP second factor. Secret is as stored: sealed with the secret key
// when one is set (the caller seals and opens it; the store never sees the key).
type TOTPFactor struct {
	ID        int64
	UserID    int64
	Secret    []byte
	Active    bool
	LastStep  int64 // the last time step a code was accepted for; 0 for none
	CreatedAt time.Time
}

type totpFactorRow struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    int64
	Secret    string
	Active    bool
	LastStep  int64
	CreatedAt time.Time
}

func (totpFactorRow) TableName() string { return "totp_factors" }

func (r totpFactorRow) factor() TOTPFactor {
	return TOTPFactor{ID: r.ID, UserID: r.UserID, Secret: []byte(r.Secret), Active: r.Active,
		LastStep: r.LastStep, CreatedAt: r.CreatedAt.UTC()}
}

// ErrTOTPFactorNotFound means the user has no TOTP factor (or not the one named).
var ErrTOTPFactorNotFound = fmt.Errorf("totp factor: %w", ErrNotFound)

// ErrTOTPFactorActive means the user has an active TOTP factor already: remove it first.
var ErrTOTPFactorActive = fmt.Errorf("totp factor active: %w", ErrConflict)

// CreateTOTPFactor stores a pending TOTP factor for userID with the (sealed) secret, replacing
// a pending one, and writes events in the same transaction. It returns ErrTOTPFactorActive if
// the user has an active factor, and ErrNotFound (wrapped) if the user does not exist.
func (s *Store) CreateTOTPFactor(ctx context.Context, userID int64, secret []byte, events ...AuditEvent) (TOTPFactor, error) {
	row := totpFactorRow{UserID: userID, Secret: string(secret), CreatedAt: utc(now())}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&userRow{}).Where("id = ?", userID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrUserNotFound
		}
		// A pending factor is replaced; an active one stays (the unique index on user_id
		// refuses the insert if an active one is there when another enrolment races).
		if err := tx.Where("user_id = ? AND NOT active", userID).Delete(&totpFactorRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ? AND active", userID).Model(&totpFactorRow{}).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrTOTPFactorActive
		}
		if err := tx.Omit("ID").Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrTOTPFactorActive
			}
			return err
		}
		_, err := writeAudit(tx, row.CreatedAt, withTarget(events, userID, ""))
		return err
	})
	if err != nil {
		return TOTPFactor{}, fmt.Errorf("create totp factor of user %d: %w", userID, err)
	}
	return row.factor(), nil
}

// TOTPFactorOf returns userID's TOTP factor, pending or active, or ErrTOTPFactorNotFound.
func (s *Store) TOTPFactorOf(ctx context.Context, userID int64) (TOTPFactor, error) {
	var row totpFactorRow
	err := s.read.WithContext(ctx).Where("user_id = ?", userID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return TOTPFactor{}, ErrTOTPFactorNotFound
	}
	if err != nil {
		return TOTPFactor{}, fmt.Errorf("totp factor of user %d: %w", userID, err)
	}
	return row.factor(), nil
}

// AcceptTOTPStep records that a code for time step was accepted for the factor id, if no
// code for that step or a later one was accepted before, and reports whether it did. The
// compare and the advance are one statement (last_step < step), so of two requests with the
// same code, on any instances, exactly one is accepted: the replay protection.
func (s *Store) AcceptTOTPStep(ctx context.Context, id, step int64, events ...AuditEvent) (bool, error) {
	accepted := false
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&totpFactorRow{}).Where("id = ? AND active AND last_step < ?", id, step).
			Update("last_step", step)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		accepted = true
		_, err := writeAudit(tx, now(), events)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("accept totp step of factor %d: %w", id, err)
	}
	return accepted, nil
}

// ActivateTOTPFactor activates the pending factor id of userID with the code for step, and
// reports whether it did (false: not pending any more, or the step was used) and whether it is
// their first active factor, which then comes with codes (see FirstFactorCodes). From then on
// the user's logins need a second factor: a change of their authentication state.
func (s *Store) ActivateTOTPFactor(ctx context.Context, userID, id, step int64, codes FirstFactorCodes, events ...AuditEvent) (activated, first bool, err error) {
	err = s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		activated, first = false, false
		none, err := lockNoFactor(tx, userID)
		if err != nil {
			return err
		}
		res := tx.Model(&totpFactorRow{}).Where("id = ? AND user_id = ? AND NOT active AND last_step < ?", id, userID, step).
			Updates(map[string]any{"active": true, "last_step": step})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		activated, first = true, none
		if _, err := writeAudit(tx, now(), withTarget(events, userID, "")); err != nil {
			return err
		}
		if first {
			if err := replaceRecoveryCodes(tx, userID, codes.Hashes, codes.Events); err != nil {
				return err
			}
		}
		w.user(userID)
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("activate totp factor %d: %w", id, err)
	}
	return activated, first, nil
}

// DeleteTOTPFactor removes userID's TOTP factor, pending or active, or returns
// ErrTOTPFactorNotFound.
func (s *Store) DeleteTOTPFactor(ctx context.Context, userID int64, events ...AuditEvent) error {
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		res := tx.Where("user_id = ?", userID).Delete(&totpFactorRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrTOTPFactorNotFound
		}
		if _, err := writeAudit(tx, now(), withTarget(events, userID, "")); err != nil {
			return err
		}
		w.user(userID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete totp factor of user %d: %w", userID, err)
	}
	return nil
}

// PlaintextTOTPSecrets counts the TOTP secrets not stored sealed: those that do not begin with
// sealedPrefix (the caller's; the store does not know the sealing format).
func (s *Store) PlaintextTOTPSecrets(ctx context.Context, sealedPrefix string) (int64, error) {
	var n int64
	err := s.read.WithContext(ctx).Model(&totpFactorRow{}).Where("substr(secret, 1, ?) <> ?", len(sealedPrefix), sealedPrefix).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count plaintext totp secrets: %w", err)
	}
	return n, nil
}

// ChangeTOTPSecrets calls change with every stored TOTP secret (as stored) and its user, and
// stores what it returns where it reports a change, all in one transaction: an error from
// change changes nothing. It returns how many it changed.
func (s *Store) ChangeTOTPSecrets(ctx context.Context, change func(userID int64, secret []byte) ([]byte, bool, error)) (int, error) {
	n := 0
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		n = 0
		var rows []totpFactorRow
		if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Order("id").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			secret, changed, err := change(r.UserID, []byte(r.Secret))
			if err != nil {
				return err
			}
			if !changed {
				continue
			}
			if err := tx.Model(&totpFactorRow{}).Where("id = ?", r.ID).Update("secret", string(secret)).Error; err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("change totp secrets: %w", err)
	}
	return n, nil
}
