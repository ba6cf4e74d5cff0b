package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// User is an account. PasswordHash is opaque to the store.
type User struct {
	ID                             int64
	Username                       string
	FirstName, LastName, Email     string
	PasswordHash                   string `json:"-"`
	IsActive, IsStaff, IsSuperuser bool
	LastLogin                      *time.Time
	DateJoined                     time.Time
}

// userRow is the users table. UsernameKey is the lower-cased username that
// the unique index uses, making usernames unique ignoring case.
type userRow struct {
	ID           int64 `gorm:"primaryKey"`
	Username     string
	UsernameKey  string
	FirstName    string
	LastName     string
	Email        string
	PasswordHash string
	IsActive     bool
	IsStaff      bool
	IsSuperuser  bool
	LastLogin    *time.Time
	DateJoined   time.Time
}

func (userRow) TableName() string { return "users" }

func usernameKey(username string) string { return strings.ToLower(username) }

func toUserRow(u *User) userRow {
	return userRow{
		ID:           u.ID,
		Username:     u.Username,
		UsernameKey:  usernameKey(u.Username),
		FirstName:    u.FirstName,
		LastName:     u.LastName,
		Email:        u.Email,
		PasswordHash: u.PasswordHash,
		IsActive:     u.IsActive,
		IsStaff:      u.IsStaff,
		IsSuperuser:  u.IsSuperuser,
		LastLogin:    utcPtr(u.LastLogin),
		DateJoined:   utc(u.DateJoined),
	}
}

func (r userRow) user() User {
	return User{
		ID:           r.ID,
		Username:     r.Username,
		FirstName:    r.FirstName,
		LastName:     r.LastName,
		Email:        r.Email,
		PasswordHash: r.PasswordHash,
		IsActive:     r.IsActive,
		IsStaff:      r.IsStaff,
		IsSuperuser:  r.IsSuperuser,
		LastLogin:    utcPtr(r.LastLogin),
		DateJoined:   r.DateJoined.UTC(),
	}
}

// CreateUser inserts u and sets u.ID to the new, increasing ID. A zero
// DateJoined becomes the current time; times are stored (and written back to
// u) in UTC at microsecond precision. It returns ErrConflict if the username
// is taken, compared ignoring case.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.DateJoined.IsZero() {
		u.DateJoined = now()
	}
	row := toUserRow(u)
	row.ID = 0
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return dbErr("create user", err, ErrUserNotFound)
	}
	*u = row.user()
	return nil
}

// UserByID returns the user with the given ID, or ErrUserNotFound (an
// ErrNotFound).
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var row userRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return User{}, dbErr(fmt.Sprintf("user %d", id), err, ErrUserNotFound)
	}
	return row.user(), nil
}

// UserByUsername returns the user whose username equals username ignoring
// case, or ErrUserNotFound (an ErrNotFound).
func (s *Store) UserByUsername(ctx context.Context, username string) (User, error) {
	var row userRow
	if err := s.db.WithContext(ctx).Where("username_key = ?", usernameKey(username)).Take(&row).Error; err != nil {
		return User{}, dbErr(fmt.Sprintf("user %q", username), err, ErrUserNotFound)
	}
	return row.user(), nil
}

// ListUsers returns one page of users ordered by ID, and the total number of
// users. A limit <= 0 means no limit; a negative offset counts as 0. It
// returns no sentinels.
func (s *Store) ListUsers(ctx context.Context, limit, offset int) ([]User, int64, error) {
	// Two statements, not a transaction: on SQLite every transaction is
	// immediate and would queue behind writers. A total off by a concurrent
	// insert is harmless for paging.
	var total int64
	if err := s.db.WithContext(ctx).Model(&userRow{}).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	q := s.db.WithContext(ctx).Order("id").Offset(max(offset, 0))
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rows []userRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	users := make([]User, len(rows))
	for i, r := range rows {
		users[i] = r.user()
	}
	return users, total, nil
}

// CountUsers returns the number of users. It returns no sentinels.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&userRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UpdateUser saves every field of u, found by u.ID (DateJoined included; ID
// is never changed). When revokeSessions is true, the user's live sessions
// are revoked at now in the same transaction.
//
// It returns ErrUserNotFound (an ErrNotFound), ErrConflict if the new
// username is taken by another user ignoring case, or ErrLastSuperuser if u
// is the last administrator (see isAdmin) and would stop being one
// (deactivated or demoted). The check is race-safe: of two
// concurrent demotions of the last two superusers, one fails.
func (s *Store) UpdateUser(ctx context.Context, u *User, revokeSessions bool, now time.Time) error {
	row := toUserRow(u)
	err := s.userTx(ctx, func(tx *gorm.DB) error {
		var cur userRow
		if err := tx.Select("is_active", "is_staff", "is_superuser").Where("id = ?", row.ID).Take(&cur).Error; err != nil {
			return err
		}
		if cur.isAdmin() && !row.isAdmin() {
			if err := guardLastSuperuser(tx, row.ID); err != nil {
				return err
			}
		}
		res := tx.Model(&userRow{}).Where(sameRole(row.ID, cur)).Updates(map[string]any{
			"username":      row.Username,
			"username_key":  row.UsernameKey,
			"first_name":    row.FirstName,
			"last_name":     row.LastName,
			"email":         row.Email,
			"password_hash": row.PasswordHash,
			"is_active":     row.IsActive,
			"is_staff":      row.IsStaff,
			"is_superuser":  row.IsSuperuser,
			"last_login":    row.LastLogin,
			"date_joined":   row.DateJoined,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errStale
		}
		if revokeSessions {
			if _, err := revokeUserSessions(tx, row.ID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return dbErr(fmt.Sprintf("update user %d", u.ID), err, ErrUserNotFound)
	}
	*u = row.user()
	return nil
}

// DeleteUser deletes the user and, by cascade, their sessions. It returns
// ErrUserNotFound (an ErrNotFound), or ErrLastSuperuser if the user is the
// last administrator (see isAdmin).
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	err := s.userTx(ctx, func(tx *gorm.DB) error {
		var cur userRow
		if err := tx.Select("is_active", "is_staff", "is_superuser").Where("id = ?", id).Take(&cur).Error; err != nil {
			return err
		}
		if cur.isAdmin() {
			if err := guardLastSuperuser(tx, id); err != nil {
				return err
			}
		}
		res := tx.Where(sameRole(id, cur)).Delete(&userRow{})
		if res.Error == nil && res.RowsAffected == 0 {
			return errStale
		}
		return res.Error
	})
	return dbErr(fmt.Sprintf("delete user %d", id), err, ErrUserNotFound)
}

// errStale aborts a transaction whose decision rested on a user row that
// changed before the transaction wrote it; userTx then runs it again.
var errStale = errors.New("user changed concurrently")

// userTx runs fn in a transaction, again (up to 3 times in all) while it
// fails with errStale.
//
// UpdateUser and DeleteUser read the user's role without a lock, decide
// whether the last-superuser guard applies, and then write only if the role
// is still what they read (sameRole). On PostgreSQL a concurrent change is
// thus noticed by the write, which waits for the other transaction and then
// matches no row; re-running decides again on fresh data. Locking the row at
// the first read instead would make two concurrent demotions deadlock
// (each holds its own row and waits for the other's in guardLastSuperuser).
// On SQLite the immediate transaction excludes other writers, so the retry
// never happens.
func (s *Store) userTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for range 3 {
		if err = s.db.WithContext(ctx).Transaction(fn); !errors.Is(err, errStale) {
			return err
		}
	}
	return err
}

// sameRole is the condition "the user is id, with is_active, is_staff and
// is_superuser exactly as cur says".
func sameRole(id int64, cur userRow) clause.Expr {
	return gorm.Expr("id = ? AND is_active = ? AND is_staff = ? AND is_superuser = ?", id, cur.IsActive, cur.IsStaff, cur.IsSuperuser)
}

// isAdmin reports whether the user can still manage users: an active staff
// superuser. The guard keeps at least one, so nobody locks everyone out.
func (r userRow) isAdmin() bool { return r.IsActive && r.IsStaff && r.IsSuperuser }

// guardLastSuperuser returns ErrLastSuperuser unless an administrator other
// than id exists. On PostgreSQL it locks every administrator row,
// always in ID order so that concurrent guards cannot deadlock, before
// counting: a concurrent demotion of one of them then waits for this
// transaction and recounts (rows that stopped matching are skipped by the
// re-check PostgreSQL does after the wait). On SQLite the immediate
// transaction already serialises all writers.
func guardLastSuperuser(tx *gorm.DB, id int64) error {
	var ids []int64
	err := tx.Model(&userRow{}).
		Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}). // dropped by the SQLite dialect
		Where("is_active = ? AND is_staff = ? AND is_superuser = ?", true, true, true).
		Order("id").
		Pluck("id", &ids).Error
	if err != nil {
		return err
	}
	for _, other := range ids {
		if other != id {
			return nil
		}
	}
	return ErrLastSuperuser
}

// UpgradePasswordHash replaces the user's password hash with newHash if it is still oldHash,
// as a login does after rehashing with current parameters; a concurrent password change
// wins. It reports whether it replaced the hash, and returns no sentinels.
func (s *Store) UpgradePasswordHash(ctx context.Context, id int64, oldHash, newHash string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&userRow{}).
		Where("id = ? AND password_hash = ?", id, oldHash).Update("password_hash", newHash)
	if res.Error != nil {
		return false, fmt.Errorf("upgrade password hash of user %d: %w", id, res.Error)
	}
	return res.RowsAffected > 0, nil
}
