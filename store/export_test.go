package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Hooks for the external tests and benchmarks of this package.

// MigrateTo applies the migrations up to and including version.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

// Exec runs one SQL statement on the writer.
func (s *Store) Exec(ctx context.Context, sql string, args ...any) error {
	return s.db.WithContext(ctx).Exec(sql, args...).Error
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// CreateUsers inserts users in batches in one transaction, as CreateUser would one by one
// (keys included), without setting their IDs: for filling a database fast.
func (s *Store) CreateUsers(ctx context.Context, users []User) error {
	const batch = 1000 // 1000 rows of 15 columns stay under SQLite's 32766 parameters
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows := make([]userRow, 0, batch)
		for start := 0; start < len(users); start += batch {
			rows = rows[:0]
			for i := start; i < min(start+batch, len(users)); i++ {
				u := users[i]
				if u.DateJoined.IsZero() {
					u.DateJoined = now()
				}
				row := toUserRow(&u)
				row.ID = 0
				rows = append(rows, row)
			}
			if err := tx.Create(&rows).Error; err != nil {
				return fmt.Errorf("create users %d to %d: %w", start, start+len(rows), err)
			}
		}
		return nil
	})
}

// QueryStrings runs a query returning one text column and returns its values.
func (s *Store) QueryStrings(ctx context.Context, sql string, args ...any) ([]string, error) {
	var out []string
	err := s.read.WithContext(ctx).Raw(sql, args...).Scan(&out).Error
	return out, err
}
