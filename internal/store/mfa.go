package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// MFAChallenge is a login whose password was right, waiting for its second factor. IDHash is
// the hash of the token the client holds; the store never sees the token.
type MFAChallenge struct {
	IDHash        string
	UserID        int64
	PasswordHash  string // the hash the password was checked against
	UserAgent, IP string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

type mfaChallengeRow struct {
	IDHash       string `gorm:"primaryKey"`
	UserID       int64
	PasswordHash string
	UserAgent    string
	IP           string `gorm:"column:ip"`
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

func (mfaChallengeRow) TableName() string { return "mfa_challenges" }

// ErrMFAChallengeNotFound means no live challenge has that hash: unknown, expired or used.
var ErrMFAChallengeNotFound = fmt.Errorf("mfa challenge: %w", ErrNotFound)

// ErrFactorRejected means the proof given to CompleteMFAChallenge was used already (the TOTP
// step, or the recovery code): the challenge stays for another try.
var ErrFactorRejected = errors.New("second factor rejected")

// CreateMFAChallenge stores c.
func (s *Store) CreateMFAChallenge(ctx context.Context, c MFAChallenge) error {
	row := mfaChallengeRow{IDHash: c.IDHash, UserID: c.UserID, PasswordHash: c.PasswordHash,
		UserAgent: c.UserAgent, IP: c.IP, CreatedAt: utc(c.CreatedAt), ExpiresAt: utc(c.ExpiresAt)}
	if err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&row) }).Error; err != nil {
		return fmt.Errorf("create mfa challenge: %w", dbErr("create mfa challenge", err, ErrNotFound))
	}
	return nil
}

// MFAChallengeByHash returns the challenge idHash if it is live at now.
func (s *Store) MFAChallengeByHash(ctx context.Context, idHash string, now time.Time) (MFAChallenge, error) {
	var row mfaChallengeRow
	err := s.read.WithContext(ctx).Where("id_hash = ? AND expires_at > ?", idHash, utc(now)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return MFAChallenge{}, ErrMFAChallengeNotFound
	}
	if err != nil {
		return MFAChallenge{}, fmt.Errorf("mfa challenge: %w", err)
	}
	return MFAChallenge{IDHash: row.IDHash, UserID: row.UserID, PasswordHash: row.PasswordHash,
		UserAgent: row.UserAgent, IP: row.IP, CreatedAt: row.CreatedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()}, nil
}

// MFAProof is what answers a challenge: a TOTP factor's step, a recovery code's hash, or a
// WebAuthn credential's new signature counter.
type MFAProof struct {
	TOTPFactorID, Step int64
	RecoveryCodeHash   string
	WebAuthnID         int64 // the credential's row id
	SignCount          int64
	// CeremonyHash and CeremonyKind name the WebAuthn ceremony the assertion answered when
	// the proof uses it up (a re-authentication's); empty when the caller uses it otherwise.
	CeremonyHash, CeremonyKind string
}

// CompleteMFAChallenge uses the challenge idHash, live at now, and the proof, in one
// transaction: both or neither. Of any number of requests completing one challenge, or using
// one TOTP step or one recovery code, on any instances, one wins; the others get
// ErrMFAChallengeNotFound (the challenge is gone) or ErrFactorRejected (the proof was used,
// or a WebAuthn counter did not advance; the challenge stays). The challenge's WebAuthn
// ceremony, if any, goes with it. events are written with the win.
func (s *Store) CompleteMFAChallenge(ctx context.Context, idHash string, now time.Time, proof MFAProof, events ...AuditEvent) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row mfaChallengeRow
		if err := tx.Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
			return dbErr("mfa challenge", err, ErrMFAChallengeNotFound)
		}
		res := tx.Where("id_hash = ? AND expires_at > ?", idHash, utc(now)).Delete(&mfaChallengeRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrMFAChallengeNotFound
		}
		if err := tx.Where("id_hash = ?", idHash).Delete(&webauthnCeremonyRow{}).Error; err != nil {
			return err
		}
		if err := useProof(tx, row.UserID, proof, now); err != nil {
			return err
		}
		_, err := writeAudit(tx, utc(now), withTarget(events, row.UserID, ""))
		return err
	})
	if err != nil {
		return fmt.Errorf("complete mfa challenge: %w", err)
	}
	return nil
}

// useProof uses userID's proof in tx, at now: the recovery code, the TOTP step, or the
// WebAuthn counter (and its ceremony when named), once. It returns ErrFactorRejected when it was used already (or is no
// proof of the user's).
func useProof(tx *gorm.DB, userID int64, proof MFAProof, now time.Time) error {
	var res *gorm.DB
	switch {
	case proof.WebAuthnID != 0:
		if proof.CeremonyHash != "" {
			err := useCeremony(tx, proof.CeremonyHash, proof.CeremonyKind, now)
			if errors.Is(err, ErrWebAuthnCeremonyNotFound) {
				return ErrFactorRejected
			}
			if err != nil {
				return err
			}
		}
		err := useCredential(tx, userID, proof.WebAuthnID, proof.SignCount, now)
		if errors.Is(err, ErrSignCountRegressed) {
			return ErrFactorRejected
		}
		return err
	case proof.RecoveryCodeHash != "":
		res = tx.Model(&recoveryCodeRow{}).
			Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, proof.RecoveryCodeHash).
			Update("used_at", utc(now))
	default:
		res = tx.Model(&totpFactorRow{}).
			Where("id = ? AND user_id = ? AND active AND last_step < ?", proof.TOTPFactorID, userID, proof.Step).
			Update("last_step", proof.Step)
	}
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrFactorRejected
	}
	return nil
}

type recoveryCodeRow struct {
	UserID    int64  `gorm:"primaryKey"`
	CodeHash  string `gorm:"primaryKey"`
	CreatedAt time.Time
	UsedAt    *time.Time
}

func (recoveryCodeRow) TableName() string { return "recovery_codes" }

// ReplaceRecoveryCodes makes hashes userID's recovery codes; the old set, used or not, dies
// in the same transaction. events are written with it.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes []string, events ...AuditEvent) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		return replaceRecoveryCodes(tx, userID, hashes, events)
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes of user %d: %w", userID, err)
	}
	return nil
}

func replaceRecoveryCodes(tx *gorm.DB, userID int64, hashes []string, events []AuditEvent) error {
	at := utc(now())
	if err := tx.Where("user_id = ?", userID).Delete(&recoveryCodeRow{}).Error; err != nil {
		return err
	}
	rows := make([]recoveryCodeRow, len(hashes))
	for i, h := range hashes {
		rows[i] = recoveryCodeRow{UserID: userID, CodeHash: h, CreatedAt: at}
	}
	if len(rows) > 0 {
		if err := tx.Create(&rows).Error; err != nil {
			return err
		}
	}
	_, err := writeAudit(tx, at, withTarget(events, userID, ""))
	return err
}

// FirstFactorCodes are the recovery codes (their hashes) a user's first active factor comes
// with, and the events written with them. Whether the factor is the first is decided in the
// transaction that adds it, with the user's row locked, so that of two first factors added
// at once exactly one comes with codes.
type FirstFactorCodes struct {
	Hashes []string
	Events []AuditEvent
}

// lockNoFactor locks userID's row in tx (factor additions of one user take turns) and reports
// whether they have no active factor (hasFactorSQL). It returns ErrUserNotFound.
func lockNoFactor(tx *gorm.DB, userID int64) (bool, error) {
	if _, err := lockUser(tx, userID, lockForUpdate, false); err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return false, ErrUserNotFound
		}
		return false, err
	}
	var has bool
	if err := tx.Raw(`SELECT `+hasFactorSQL+` FROM users u WHERE u.id = ?`, userID).Scan(&has).Error; err != nil {
		return false, err
	}
	return !has, nil
}

// RecoveryCodesLeft counts userID's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID int64) (int64, error) {
	var n int64
	err := s.read.WithContext(ctx).Model(&recoveryCodeRow{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("recovery codes of user %d: %w", userID, err)
	}
	return n, nil
}
