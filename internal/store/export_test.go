package store

import (
	"context"
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

// QueryStrings runs a query returning one text column and returns its values.
func (s *Store) QueryStrings(ctx context.Context, sql string, args ...any) ([]string, error) {
	var out []string
	err := s.read.WithContext(ctx).Raw(sql, args...).Scan(&out).Error
	return out, err
}
