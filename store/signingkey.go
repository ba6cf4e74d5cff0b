package store

import (
	"context"
	"fmt"
	"time"
)

// SigningKey is a private key used to sign tokens, in whatever encoding the
// token package chose; the store does not look inside Private.
type SigningKey struct {
	ID, Algorithm string
	Private       []byte
	CreatedAt     time.Time
}

// signingKeyRow is the signing_keys table.
type signingKeyRow struct {
	ID        string `gorm:"primaryKey"`
	Algorithm string
	Private   []byte
	CreatedAt time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

// SigningKeys returns every signing key, oldest first. It returns no
// sentinels.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.db.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys := make([]SigningKey, len(rows))
	for i, r := range rows {
		keys[i] = SigningKey{ID: r.ID, Algorithm: r.Algorithm, Private: r.Private, CreatedAt: r.CreatedAt.UTC()}
	}
	return keys, nil
}

// CreateSigningKey stores k; a zero CreatedAt becomes the current time. It
// returns ErrConflict if a key with the same ID exists.
func (s *Store) CreateSigningKey(ctx context.Context, k SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	row := signingKeyRow{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: utc(k.CreatedAt)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return dbErr("create signing key", err, ErrNotFound)
	}
	return nil
}
