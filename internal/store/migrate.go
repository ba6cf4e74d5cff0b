package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// migrations holds one directory of goose SQL files per backend. The two
// directories carry the same versions; Go migrations (00009_username_keys.go) are
// the same on both backends and have no file here.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// MigrationState is one migration version and whether it has been applied.
type MigrationState struct {
	Version int64
	Applied bool
	Source  string // file name, e.g. "00001_init.sql"
}

// provider returns a goose provider for this store's backend. Versions are
// recorded in goose_db_version.
func (s *Store) provider() (*goose.Provider, error) {
	dialect := goose.DialectSQLite3
	if s.dialect == dialectPostgres {
		dialect = goose.DialectPostgres
	}
	fsys, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, s.sqlDB, fsys, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(s.usernameKeysMigration()))
}

// Migrate applies the pending migrations, holding the lock of Init, so that processes
// migrating one database at once do not race. It is a no-op when the schema is up to date. It
// returns no sentinels.
func (s *Store) Migrate(ctx context.Context) error {
	return s.Init(ctx, nil)
}

// migrate applies the pending migrations.
func (s *Store) migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// MigrationStatus lists every known migration in version order with whether
// it has been applied. It returns no sentinels.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	status, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	states := make([]MigrationState, 0, len(status))
	for _, st := range status {
		states = append(states, MigrationState{
			Version: st.Source.Version,
			Applied: st.State == goose.StateApplied,
			Source:  st.Source.Path,
		})
	}
	return states, nil
}
