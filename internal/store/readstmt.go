package store

import (
	"context"
	"database/sql"
)

// queryRow runs one of the hottest reads, query with args, into dest. It goes to
// database/sql directly with a statement prepared once (and by database/sql once per
// connection): gorm's building of the same statement on every call cost more than the query.
// It returns sql.ErrNoRows when there is no row, and classifies its errors (see
// ErrUnavailable) as gorm's are.
func (s *Store) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	stmt, err := s.readStmt(ctx, query)
	if err != nil {
		return s.avail.classify(err)
	}
	return s.avail.classify(stmt.QueryRowContext(ctx, args...).Scan(dest...))
}

func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.readStmts.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.readSQLDB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, raced := s.readStmts.LoadOrStore(query, stmt); raced {
		stmt.Close()
		return prev.(*sql.Stmt), nil
	}
	return stmt, nil
}

// closeReadStmts closes the statements queryRow prepared.
func (s *Store) closeReadStmts() {
	s.readStmts.Range(func(query, stmt any) bool {
		stmt.(*sql.Stmt).Close()
		s.readStmts.Delete(query)
		return true
	})
}
