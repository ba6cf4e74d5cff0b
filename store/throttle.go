package store

import (
	"context"
	"fmt"
	"time"
)

// Login failure scopes: the lowercased username (known or not) and the client IP.
const (
	ScopeAccount = "account"
	ScopeIP      = "ip"
)

type loginFailureRow struct {
	ID    int64 `gorm:"primaryKey"`
	Scope string
	Key   string
	At    time.Time
}

func (loginFailureRow) TableName() string { return "login_failures" }

// RecordLoginFailure counts one failed login against the account key and the IP at at. It
// returns no sentinels.
func (s *Store) RecordLoginFailure(ctx context.Context, account, ip string, at time.Time) error {
	rows := []loginFailureRow{{Scope: ScopeAccount, Key: account, At: utc(at)}, {Scope: ScopeIP, Key: ip, At: utc(at)}}
	if err := s.db.WithContext(ctx).Create(&rows).Error; err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// LoginFailures returns the times of the most recent failures recorded for scope and key
// since since, newest first, at most limit of them. It returns no sentinels.
func (s *Store) LoginFailures(ctx context.Context, scope, key string, since time.Time, limit int) ([]time.Time, error) {
	var at []time.Time
	err := s.db.WithContext(ctx).Model(&loginFailureRow{}).
		Where("scope = ? AND key = ? AND at > ?", scope, key, utc(since)).
		Order("at DESC").Limit(limit).Pluck("at", &at).Error
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	for i := range at {
		at[i] = at[i].UTC()
	}
	return at, nil
}

// ClearLoginFailures forgets the failures of one scope and key, as a successful login does
// for its account. It returns no sentinels.
func (s *Store) ClearLoginFailures(ctx context.Context, scope, key string) error {
	if err := s.db.WithContext(ctx).Where("scope = ? AND key = ?", scope, key).Delete(&loginFailureRow{}).Error; err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}
