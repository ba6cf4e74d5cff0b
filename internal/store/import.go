package store

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// UsernameKey is the form in which usernames are unique: two usernames with the same key
// cannot both exist.
func UsernameKey(username string) string { return usernameKey(username) }

// lookupBatch bounds the values of one IN list (SQLite allows 32766 parameters).
const lookupBatch = 500

// UsersByIDs returns the users among ids that exist, in no particular order. It returns no
// sentinels.
func (s *Store) UsersByIDs(ctx context.Context, ids []int64) ([]User, error) {
	var out []User
	for batch := range slices.Chunk(ids, lookupBatch) {
		var rows []userRow
		if err := s.read.WithContext(ctx).Where("id IN ?", batch).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("users by id: %w", err)
		}
		for _, r := range rows {
			out = append(out, r.user())
		}
	}
	return out, nil
}

// UsersByUsernames returns the users whose username equals one of usernames ignoring case,
// in no particular order. It returns no sentinels.
func (s *Store) UsersByUsernames(ctx context.Context, usernames []string) ([]User, error) {
	keys := make([]string, len(usernames))
	for i, u := range usernames {
		keys[i] = usernameKey(u)
	}
	var out []User
	for batch := range slices.Chunk(keys, lookupBatch) {
		var rows []userRow
		if err := s.read.WithContext(ctx).Where("username_key IN ?", batch).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("users by username: %w", err)
		}
		for _, r := range rows {
			out = append(out, r.user())
		}
	}
	return out, nil
}

// ImportUsers inserts users as they are, each with its own ID (and password hash, flags and
// times), all or none in one transaction, with events written to the audit log for each user
// (as TargetID); users created later get IDs above the largest. It returns ErrConflict if an ID
// or a username (ignoring case) is taken.
func (s *Store) ImportUsers(ctx context.Context, users []User, events ...AuditEvent) error {
	if len(users) == 0 {
		return nil
	}
	rows := make([]userRow, len(users))
	for i, u := range users {
		if u.ID <= 0 {
			return fmt.Errorf("import users: user %q has no ID", u.Username)
		}
		if u.DateJoined.IsZero() {
			u.DateJoined = now()
		}
		rows[i] = toUserRow(&u)
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(rows, 100).Error; err != nil {
			return err
		}
		at := now()
		for batch := range slices.Chunk(rows, 100) { // an INSERT's parameters are bounded
			var recorded []AuditEvent
			for _, r := range batch {
				recorded = append(recorded, withTarget(events, r.ID, "")...)
			}
			if _, err := writeAudit(tx, at, recorded); err != nil {
				return err
			}
		}
		if s.dialect != dialectPostgres {
			return nil // SQLite's AUTOINCREMENT continues above the largest ID by itself
		}
		// An identity column's sequence does not see IDs given explicitly.
		return tx.Exec(`SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))`).Error
	})
	if err != nil {
		return dbErr("import users", err, ErrUserNotFound)
	}
	return s.AnalyzeUsers(ctx)
}

// AnalyzeUsers refreshes PostgreSQL's statistics of the users table, as autovacuum does a
// while after many rows change: after a bulk import, so that the user list's estimates (see
// UserPage) and the planner see the new users at once. SQLite has nothing to do. It returns
// no sentinels.
func (s *Store) AnalyzeUsers(ctx context.Context) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	if err := s.db.WithContext(ctx).Exec("ANALYZE users").Error; err != nil {
		return fmt.Errorf("analyze users: %w", s.avail.classify(err))
	}
	s.usersEstimate.Store(nil)
	return nil
}
