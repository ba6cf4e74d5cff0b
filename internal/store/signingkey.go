package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SigningKey is a private key used to sign tokens, in whatever encoding the
// token package chose; the store does not look inside Private.
type SigningKey struct {
	ID, Algorithm string
	Private       []byte
	CreatedAt     time.Time
	// SignsFrom is when the key begins to sign, if that was decided when it
	// was created; nil leaves it to whoever loads the keys to derive it from
	// CreatedAt.
	SignsFrom *time.Time
}

// signingKeyRow is the signing_keys table.
type signingKeyRow struct {
	ID        string `gorm:"primaryKey"`
	Algorithm string
	Private   []byte
	CreatedAt time.Time
	SignsFrom *time.Time
	Purpose   string
}

// Signing key purposes: a key signs tokens or SETs, never both, so that a SET can never pass
// for a token.
const (
	purposeToken = "token"
	purposeSET   = "set"
)

func (signingKeyRow) TableName() string { return "signing_keys" }

// SigningKeys returns every token signing key, oldest first (never the SET key). It returns no
// sentinels.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.read.WithContext(ctx).Where("purpose = ?", purposeToken).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys := make([]SigningKey, len(rows))
	for i, r := range rows {
		keys[i] = SigningKey{ID: r.ID, Algorithm: r.Algorithm, Private: r.Private, CreatedAt: r.CreatedAt.UTC(), SignsFrom: utcPtr(r.SignsFrom)}
	}
	return keys, nil
}

// CreateSigningKey stores k, and in the same transaction writes events to the audit log with
// k's ID as KeyID; a zero CreatedAt becomes the current time. It returns ErrConflict if a key
// with the same ID exists.
func (s *Store) CreateSigningKey(ctx context.Context, k SigningKey, events ...AuditEvent) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	row := signingKeyRow{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: utc(k.CreatedAt), SignsFrom: utcPtr(k.SignsFrom), Purpose: purposeToken}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		keyed := make([]AuditEvent, len(events))
		for i, e := range events {
			e.KeyID = k.ID
			keyed[i] = e
		}
		_, err := writeAudit(tx, row.CreatedAt, keyed)
		return err
	})
	if err != nil {
		return dbErr("create signing key", err, ErrNotFound)
	}
	return nil
}

// ErrSigningKeyNotFound is ErrNotFound for a missing signing key.
var ErrSigningKeyNotFound = fmt.Errorf("signing key: %w", ErrNotFound)

// SetSigningKeyPrivate replaces the Private of key id, as when a key is
// encrypted at rest after the fact. It returns ErrSigningKeyNotFound (an
// ErrNotFound) if there is no such key.
func (s *Store) SetSigningKeyPrivate(ctx context.Context, id string, private []byte) error {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Model(&signingKeyRow{}).Where("id = ?", id).Update("private", private)
	})
	if res.Error != nil {
		return dbErr("set signing key private", res.Error, ErrSigningKeyNotFound)
	}
	if res.RowsAffected == 0 {
		return ErrSigningKeyNotFound
	}
	return nil
}

// ChangeSigningKeyPrivates calls change for every signing key, oldest first,
// in one transaction that holds the keys locked, and stores the Private it
// returns for each key it says it changed. It is all or nothing: if change
// fails for any key, no key is changed and that error is returned. It
// returns the IDs of the keys it changed, and no sentinels of its own.
// change runs inside the transaction and must not call the Store.
func (s *Store) ChangeSigningKeyPrivates(ctx context.Context, change func(SigningKey) (private []byte, changed bool, err error)) ([]string, error) {
	var ids []string
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		ids = nil
		var rows []signingKeyRow
		// FOR UPDATE is dropped by the SQLite dialect, whose transactions lock the database.
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Order("created_at, id").Find(&rows).Error
		if err != nil {
			return err
		}
		for _, r := range rows {
			private, changed, err := change(SigningKey{ID: r.ID, Algorithm: r.Algorithm, Private: r.Private, CreatedAt: r.CreatedAt.UTC(), SignsFrom: utcPtr(r.SignsFrom)})
			if err != nil {
				return err
			}
			if !changed {
				continue
			}
			if err := tx.Model(&signingKeyRow{}).Where("id = ?", r.ID).Update("private", private).Error; err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		return nil, dbErr("change signing keys", err, ErrSigningKeyNotFound)
	}
	return ids, nil
}

// DeleteSigningKey deletes key id. It returns ErrSigningKeyNotFound (an
// ErrNotFound) if there is no such key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Where("id = ?", id).Delete(&signingKeyRow{}) })
	if res.Error != nil {
		return dbErr("delete signing key", res.Error, ErrSigningKeyNotFound)
	}
	if res.RowsAffected == 0 {
		return ErrSigningKeyNotFound
	}
	return nil
}

// SETSigningKey returns the key that signs Security Event Tokens. It returns ErrSigningKeyNotFound (an ErrNotFound) if
// there is none yet.
func (s *Store) SETSigningKey(ctx context.Context) (SigningKey, error) {
	var r signingKeyRow
	err := s.read.WithContext(ctx).Where("purpose = ?", purposeSET).Order("created_at, id").Take(&r).Error
	if err != nil {
		return SigningKey{}, dbErr("SET signing key", err, ErrSigningKeyNotFound)
	}
	return SigningKey{ID: r.ID, Algorithm: r.Algorithm, Private: r.Private, CreatedAt: r.CreatedAt.UTC()}, nil
}

// CreateSETSigningKey stores k as a key that signs Security Event Tokens; a zero CreatedAt
// becomes now. Token keys (SigningKeys) never include it. There is at most one: it returns
// ErrConflict if one exists (or the ID is taken).
func (s *Store) CreateSETSigningKey(ctx context.Context, k SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	row := signingKeyRow{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: utc(k.CreatedAt), Purpose: purposeSET}
	if err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&row) }).Error; err != nil {
		return dbErr("create SET signing key", err, ErrNotFound)
	}
	return nil
}
