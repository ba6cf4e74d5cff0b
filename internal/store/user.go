package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
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
	// HasFactor is whether the user has an active second factor. Only UserSession (the read
	// of every authenticated request) sets it; elsewhere it is false.
	HasFactor bool
	// EmailVerified says that Email was confirmed by a link mailed to it, at EmailVerifiedAt;
	// any change of Email clears both.
	EmailVerified   bool
	EmailVerifiedAt *time.Time
	// PendingEmail is the address a self-service change waits for the confirmation of ("" for
	// none); Email stays in use until then.
	PendingEmail string
	// SignedUp is true for an account its user created (sign-up).
	SignedUp bool
}

// userRow is the users table. UsernameKey is the username case folded (see
// foldCase) that the unique index uses, making usernames unique ignoring case
// and compatibility forms (fullwidth "ａｄｍｉｎ" is "admin"). It and the other
// keys are what ListUsers orders by and searches (see searchKey).
type userRow struct {
	ID           int64 `gorm:"primaryKey"`
	Username     string
	UsernameKey  string
	FirstName    string
	LastName     string
	Email        string
	EmailKey     string
	SearchKey    string
	PasswordHash string
	IsActive     bool
	IsStaff      bool
	IsSuperuser  bool
	LastLogin    *time.Time
	DateJoined   time.Time

	EmailVerified   bool
	EmailVerifiedAt *time.Time
	PendingEmail    string
	SignedUp        bool
}

func (userRow) TableName() string { return "users" }

func usernameKey(username string) string { return foldCase(username) }

// foldCase is how every key column, and every search of them, ignores case
// and compatibility forms: NFKC (as Django normalises usernames), Go's Unicode
// lower-casing, and NFKC again (lower-casing can leave a string that is not in
// it), the same on both databases. Migration 00009 (rekey.go) recomputed the
// keys of older rows with it.
func foldCase(s string) string {
	return norm.NFKC.String(strings.ToLower(norm.NFKC.String(s)))
}

// searchKey is what a search looks for words in: the searched fields, case
// folded, one per line. A word never holds white space, so it is found inside
// one field or not at all, and each word costs one LIKE on one column.
func searchKey(u *User) string {
	return strings.Join([]string{usernameKey(u.Username), foldCase(u.FirstName), foldCase(u.LastName), foldCase(u.Email)}, "\n")
}

func toUserRow(u *User) userRow {
	return userRow{
		ID:           u.ID,
		Username:     u.Username,
		UsernameKey:  usernameKey(u.Username),
		FirstName:    u.FirstName,
		LastName:     u.LastName,
		Email:        u.Email,
		EmailKey:     foldCase(u.Email),
		SearchKey:    searchKey(u),
		PasswordHash: u.PasswordHash,
		IsActive:     u.IsActive,
		IsStaff:      u.IsStaff,
		IsSuperuser:  u.IsSuperuser,
		LastLogin:    utcPtr(u.LastLogin),
		DateJoined:   utc(u.DateJoined),

		EmailVerified:   u.EmailVerified,
		EmailVerifiedAt: utcPtr(u.EmailVerifiedAt),
		PendingEmail:    u.PendingEmail,
		SignedUp:        u.SignedUp,
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

		EmailVerified:   r.EmailVerified,
		EmailVerifiedAt: utcPtr(r.EmailVerifiedAt),
		PendingEmail:    r.PendingEmail,
		SignedUp:        r.SignedUp,
	}
}

// CreateUser inserts u and sets u.ID to the new, increasing ID, and in the same transaction
// writes events to the audit log with the new user as TargetID. A zero DateJoined becomes the
// current time; times are stored (and written back to u) in UTC at microsecond precision. It
// returns ErrConflict if the username is taken, compared ignoring case.
func (s *Store) CreateUser(ctx context.Context, u *User, events ...AuditEvent) error {
	return s.createUser(ctx, u, events, nil)
}

// createUser is CreateUser, running also (when not nil) in the same transaction after the
// audit events, with the new row.
func (s *Store) createUser(ctx context.Context, u *User, events []AuditEvent, also func(tx *gorm.DB, row userRow) error) error {
	if u.DateJoined.IsZero() {
		u.DateJoined = now()
	}
	row := toUserRow(u)
	row.ID = 0
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if _, err := writeAudit(tx, row.DateJoined, withTarget(events, row.ID, "")); err != nil || also == nil {
			return err
		}
		return also(tx, row)
	})
	if err != nil {
		return dbErr("create user", err, ErrUserNotFound)
	}
	*u = row.user()
	return nil
}

// UserByID returns the user with the given ID, or ErrUserNotFound (an
// ErrNotFound).
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var row userRow
	if err := s.read.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return User{}, dbErr(fmt.Sprintf("user %d", id), err, ErrUserNotFound)
	}
	return row.user(), nil
}

// UserByUsername returns the user whose username equals username ignoring
// case, or ErrUserNotFound (an ErrNotFound).
func (s *Store) UserByUsername(ctx context.Context, username string) (User, error) {
	var row userRow
	if err := s.read.WithContext(ctx).Where("username_key = ?", usernameKey(username)).Take(&row).Error; err != nil {
		return User{}, dbErr(fmt.Sprintf("user %q", username), err, ErrUserNotFound)
	}
	return row.user(), nil
}

// UserOrder is a field users can be listed in order of (see UserQuery).
type UserOrder string

// The orders ListUsers offers.
const (
	OrderByID         UserOrder = "id"
	OrderByUsername   UserOrder = "username" // ignoring case
	OrderByEmail      UserOrder = "email"    // ignoring case
	OrderByDateJoined UserOrder = "date_joined"
	OrderByLastLogin  UserOrder = "last_login" // never logged in counts as earliest
)

// userOrderColumns are the columns behind each UserOrder; keys sort by code
// point on both databases.
var userOrderColumns = map[UserOrder]string{
	OrderByID:         "id",
	OrderByUsername:   "username_key",
	OrderByEmail:      "email_key",
	OrderByDateJoined: "date_joined",
	OrderByLastLogin:  "last_login",
}

// UserQuery selects, orders and pages the users ListUsers returns. The zero
// value is every user in order of ID.
type UserQuery struct {
	// Search is words separated by white space; a user matches when each
	// word is a substring of their username, email, first or last name,
	// ignoring case (see foldCase). LIKE's wildcards match themselves.
	Search string
	// IsActive, IsStaff and IsSuperuser, when set, keep only the users whose
	// flag has that value.
	IsActive, IsStaff, IsSuperuser *bool
	// OrderBy is the order, ascending unless Descending; users it does not
	// tell apart are ordered by ID in the same direction. Zero is OrderByID.
	OrderBy    UserOrder
	Descending bool
	// Limit <= 0 means no limit; a negative Offset counts as 0.
	Limit, Offset int
}

// UserPage is a page of ListUsers.
type UserPage struct {
	Users []User // their PasswordHash left empty
	// Total is how many users the query selects. On PostgreSQL, past Options.ExactCountMax
	// matches, counting them all would read them all on every page: Total is then the
	// planner's estimate (Estimated), and never less than the page proves.
	Total     int64
	Estimated bool
	More      bool // whether users follow the page
}

// ListUsers returns one page of the users q selects, in q's order. It returns no
// sentinels; an unknown OrderBy is an error.
func (s *Store) ListUsers(ctx context.Context, q UserQuery) (UserPage, error) {
	var (
		page UserPage
		err  error
	)
	filtered := q.Search != "" || q.IsActive != nil || q.IsStaff != nil || q.IsSuperuser != nil
	if s.dialect == dialectPostgres && filtered {
		// (An unfiltered page has no parameter a plan could depend on: it skips the
		// transaction's three extra round trips.)
		err = s.read.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// Plan each statement for its own words: the generic plan that pgx's prepared
			// statements get after a few runs cannot tell a word the trigram index finds at
			// once from one it would read whole (shorter than a trigram), and reads a rare
			// search along the order's index instead.
			if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
				return err
			}
			page, err = s.listUsers(tx, q)
			return err
		}, &sql.TxOptions{ReadOnly: true})
	} else {
		// Not in a transaction (on SQLite every transaction is immediate and would
		// queue behind writers): a total off by a concurrent insert is harmless.
		page, err = s.listUsers(s.read.WithContext(ctx), q)
	}
	if err != nil {
		// scanUserList's rows are read with database/sql: classified here.
		return UserPage{}, fmt.Errorf("list users: %w", s.avail.classify(err))
	}
	return page, nil
}

// listUsers is ListUsers on db.
func (s *Store) listUsers(db *gorm.DB, q UserQuery) (UserPage, error) {
	order, err := q.orderClause()
	if err != nil {
		return UserPage{}, err
	}
	where, args := q.whereClause()
	filtered := func() *gorm.DB {
		f := db.Model(&userRow{})
		if where != "" {
			f = f.Where(where, args...)
		}
		return f
	}
	offset := max(q.Offset, 0)
	rows := filtered().Order(order).Offset(offset)
	if q.Limit > 0 {
		rows = rows.Limit(q.Limit + 1) // the one past the page tells whether more follow
	}
	users, err := scanUserList(rows)
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Users: users, More: q.Limit > 0 && len(users) > q.Limit}
	if page.More {
		page.Users = users[:q.Limit]
	}
	// The last page, unless empty past the end, tells the total without counting, which
	// would read every match again (a search that matches a few users scans the table
	// only once).
	seen := int64(offset + len(page.Users))
	if !page.More && (len(page.Users) > 0 || offset == 0) {
		page.Total = seen
		return page, nil
	}
	if s.dialect != dialectPostgres {
		return page, filtered().Count(&page.Total).Error
	}
	from, args := "users", args
	if where != "" {
		from += " WHERE " + where
	}
	estimated := func(estimate int64) (UserPage, error) {
		known := max(int64(s.exactCountMax)+1, seen)
		if page.More {
			known = max(known, seen+1)
		}
		page.Total, page.Estimated = max(estimate, known), true
		return page, nil
	}
	// The whole table's estimate costs a lookup: where it is well past the bound, the
	// bounded count (a scan of bound+1 rows, most of an unfiltered list's database time)
	// is skipped. Statistics stale by half (a mass deletion not yet analysed) make a
	// smaller table's total an estimate too, marked as such.
	estimate := int64(-1)
	if where == "" {
		var err error
		if estimate, err = s.usersTableEstimate(db); err != nil {
			return UserPage{}, err
		}
		if estimate/2 > int64(s.exactCountMax) { // (halved: a bound near MaxInt must not wrap)
			return estimated(estimate)
		}
	}
	// Count up to one past the bound: past it, the planner's estimate.
	if err := db.Raw("SELECT count(*) FROM (SELECT 1 FROM "+from+" LIMIT ?) AS m", append(args, s.exactCountMax+1)...).Scan(&page.Total).Error; err != nil {
		return UserPage{}, err
	}
	if page.Total <= int64(s.exactCountMax) {
		return page, nil
	}
	if where != "" {
		var err error
		if estimate, err = estimateRows(db, from, args); err != nil {
			return UserPage{}, err
		}
	}
	if estimate < 0 { // never analysed: count after all
		return page, filtered().Count(&page.Total).Error
	}
	return estimated(estimate)
}

// usersEstimateTTL is how long a user list reuses the users table's estimate: the statistics
// it comes from are themselves as old as the last analysis.
const usersEstimateTTL = 5 * time.Second

// tableEstimate is an estimate of a table's rows read at a time.
type tableEstimate struct {
	rows int64
	at   time.Time
}

// usersTableEstimate is estimateRows of the whole users table, read at most once per
// usersEstimateTTL (a round trip of each unfiltered page otherwise); AnalyzeUsers forgets it.
func (s *Store) usersTableEstimate(db *gorm.DB) (int64, error) {
	if e := s.usersEstimate.Load(); e != nil && time.Since(e.at) < usersEstimateTTL {
		return e.rows, nil
	}
	n, err := estimateRows(db, "users", nil)
	if err == nil {
		s.usersEstimate.Store(&tableEstimate{rows: n, at: time.Now()})
	}
	return n, err
}

// estimateRows is the planner's estimate of the rows of SELECT 1 FROM from, -1 when it has
// none (PostgreSQL).
func estimateRows(db *gorm.DB, from string, args []any) (int64, error) {
	if from == "users" {
		// The table's size as last analysed: -1 if never.
		var n float64
		err := db.Raw("SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass").Scan(&n).Error
		return int64(n), err
	}
	var plan string
	if err := db.Raw("EXPLAIN (FORMAT JSON) SELECT 1 FROM "+from, args...).Scan(&plan).Error; err != nil {
		return 0, err
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) == 0 {
		return -1, nil
	}
	return int64(out[0].Plan.Rows), nil
}

// userListColumns are what a listed user carries: not the password hash, nor the keys the
// store keeps for searching and ordering.
const userListColumns = "id, username, first_name, last_name, email, is_active, is_staff, is_superuser, last_login, date_joined, email_verified, email_verified_at"

// scanUserList reads page's users by hand: gorm's reflective scan of a page of 100 took two
// thirds of a list request's CPU.
func scanUserList(page *gorm.DB) ([]User, error) {
	rows, err := page.Select(userListColumns).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var (
			u                   User
			lastLogin, verified sql.NullTime
		)
		if err := rows.Scan(&u.ID, &u.Username, &u.FirstName, &u.LastName, &u.Email,
			&u.IsActive, &u.IsStaff, &u.IsSuperuser, &lastLogin, &u.DateJoined, &u.EmailVerified, &verified); err != nil {
			return nil, err
		}
		u.LastLogin, u.DateJoined, u.EmailVerifiedAt = nullTime(lastLogin), u.DateJoined.UTC(), nullTime(verified)
		users = append(users, u)
	}
	return users, rows.Err()
}

// whereClause is q's condition and its arguments, "" for every user. The
// flags are written as the partial indexes on them are (SQLite uses a partial
// index only for its own condition), and as literals, not arguments, so that
// PostgreSQL's generic plans can use those indexes too.
func (q UserQuery) whereClause() (string, []any) {
	var (
		conds []string
		args  []any
	)
	flag := func(column string, v *bool) {
		switch {
		case v == nil:
		case *v:
			conds = append(conds, column)
		default:
			conds = append(conds, "NOT "+column)
		}
	}
	flag("is_active", q.IsActive)
	flag("is_staff", q.IsStaff)
	flag("is_superuser", q.IsSuperuser)
	for _, word := range searchWords(q.Search) {
		conds = append(conds, `search_key LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(word)+"%")
	}
	return strings.Join(conds, " AND "), args
}

// searchWords splits a search into its distinct words, case folded.
func searchWords(search string) []string {
	var words []string
	for _, w := range strings.Fields(foldCase(search)) {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return words
}

// escapeLike makes s match itself in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return likeEscaper.Replace(s)
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// orderClause is q's ORDER BY. NULL last_login sorts first ascending and last
// descending: SQLite's own order, and the order of PostgreSQL's index on it.
func (q UserQuery) orderClause() (string, error) {
	by := q.OrderBy
	if by == "" {
		by = OrderByID
	}
	col, ok := userOrderColumns[by]
	if !ok {
		return "", fmt.Errorf("unknown order %q", by)
	}
	dir, nulls := "ASC", "NULLS FIRST"
	if q.Descending {
		dir, nulls = "DESC", "NULLS LAST"
	}
	switch by {
	case OrderByID:
		return "id " + dir, nil
	case OrderByLastLogin:
		return fmt.Sprintf("%s %s %s, id %s", col, dir, nulls, dir), nil
	}
	return fmt.Sprintf("%s %s, id %s", col, dir, dir), nil
}

// CountUsers returns the number of users. It returns no sentinels.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.WithContext(ctx).Model(&userRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UpdateUser changes the user with the given ID in one transaction: it reads
// the user's current row, locked until the transaction ends, lets change
// modify a copy of it, and writes back only the columns change altered
// (ID is never changed). change may run more than once and must do nothing
// but modify its argument (it runs inside the transaction, so calling the
// Store from it would wait forever on SQLite); an error from it aborts the
// update and is returned as is. When revokeSessions is true, the user's live sessions are
// revoked at now in the same transaction. If any column changed or any session was revoked,
// the events each audit gives for the user before and after the change are written to the
// audit log (a zero At becomes now), and the change is logged (see AuthChange), in the same
// transaction. UpdateUser returns the user as written.
//
// It returns ErrUserNotFound (an ErrNotFound), ErrConflict if the new
// username is taken by another user ignoring case, or ErrLastSuperuser if
// the user is the last administrator (see isAdmin) and would stop being one
// (deactivated or demoted). Concurrent updates cannot undo each other's
// changes, and of two concurrent demotions of the last two administrators
// one fails.
func (s *Store) UpdateUser(ctx context.Context, id int64, change func(u *User) error, revokeSessions bool, now time.Time, audit ...UserAudit) (User, error) {
	return s.UpdateUserMail(ctx, id, change, revokeSessions, now, nil, audit...)
}

// UpdateUserMail is UpdateUser that also writes the mail mailer makes of the change (nil:
// none), when a column changed. A change of the email address (as UpdateUser makes it too)
// clears EmailVerified, EmailVerifiedAt and PendingEmail and voids every unused link that
// would confirm an address.
func (s *Store) UpdateUserMail(ctx context.Context, id int64, change func(u *User) error, revokeSessions bool, now time.Time, mailer UserMailer, audit ...UserAudit) (User, error) {
	var (
		out       User
		changeErr error
	)
	err := s.userTx(ctx, id, lockForUpdate, func(tx *gorm.DB, w *authWrite, cur lockedUser) error {
		u := cur.row.user()
		if changeErr = change(&u); changeErr != nil {
			return changeErr
		}
		u.ID = id
		if u.Email != cur.row.Email {
			u.EmailVerified, u.EmailVerifiedAt, u.PendingEmail = false, nil, ""
			if err := voidAddressTokens(tx, id, now); err != nil {
				return err
			}
		}
		next := toUserRow(&u)
		if cur.row.isAdmin() && !next.isAdmin() {
			if err := cur.mayStopBeingAdmin(); err != nil {
				return err
			}
		}
		cols := changedColumns(cur.row, next)
		if len(cols) > 0 {
			if err := tx.Model(&userRow{}).Where("id = ?", id).Updates(cols).Error; err != nil {
				return err
			}
		}
		if _, ok := cols["password_hash"]; ok {
			if err := forgetLoginIPs(tx, id); err != nil {
				return err
			}
		}
		var revoked []string
		if revokeSessions {
			var err error
			if revoked, err = revokeUserSessions(tx, id, now); err != nil {
				return err
			}
		}
		out = next.user()
		if len(cols) == 0 && len(revoked) == 0 {
			return nil
		}
		before := cur.row.user()
		var written []AuditEvent
		for _, a := range audit {
			events := a(before, out)
			if _, err := writeAudit(tx, now, events); err != nil {
				return err
			}
			written = append(written, events...)
		}
		w.user(id)
		userChangeEvents(w, before, out, revoked, written)
		if mailer == nil || len(cols) == 0 {
			return nil
		}
		m, err := mailer(before, out)
		if err != nil {
			return err
		}
		return m.write(tx, id, now)
	})
	if changeErr != nil {
		return User{}, changeErr
	}
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("update user %d", id), err, ErrUserNotFound)
	}
	return out, nil
}

// changedColumns maps each column in which next differs from cur to next's
// value. A key differs when its field does, or when it was filled by a
// migration that folded case differently (see 00006_user_listing.sql).
func changedColumns(cur, next userRow) map[string]any {
	cols := map[string]any{}
	set := func(name string, changed bool, v any) {
		if changed {
			cols[name] = v
		}
	}
	set("username", next.Username != cur.Username, next.Username)
	// Only with a new username: a key left stale by migration 00009 (two usernames that are
	// one once folded) would take the other user's, and the update of, say, is_active fail.
	set("username_key", next.Username != cur.Username && next.UsernameKey != cur.UsernameKey, next.UsernameKey)
	set("first_name", next.FirstName != cur.FirstName, next.FirstName)
	set("last_name", next.LastName != cur.LastName, next.LastName)
	set("email", next.Email != cur.Email, next.Email)
	set("email_key", next.EmailKey != cur.EmailKey, next.EmailKey)
	set("search_key", next.SearchKey != cur.SearchKey, next.SearchKey)
	set("password_hash", next.PasswordHash != cur.PasswordHash, next.PasswordHash)
	set("is_active", next.IsActive != cur.IsActive, next.IsActive)
	set("is_staff", next.IsStaff != cur.IsStaff, next.IsStaff)
	set("is_superuser", next.IsSuperuser != cur.IsSuperuser, next.IsSuperuser)
	set("last_login", !equalTimePtr(next.LastLogin, cur.LastLogin), next.LastLogin)
	set("date_joined", !next.DateJoined.Equal(cur.DateJoined), next.DateJoined)
	set("email_verified", next.EmailVerified != cur.EmailVerified, next.EmailVerified)
	set("email_verified_at", !equalTimePtr(next.EmailVerifiedAt, cur.EmailVerifiedAt), next.EmailVerifiedAt)
	set("pending_email", next.PendingEmail != cur.PendingEmail, next.PendingEmail)
	set("signed_up", next.SignedUp != cur.SignedUp, next.SignedUp)
	return cols
}

func equalTimePtr(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// DeleteUser deletes the user and, by cascade, their sessions, and in the same transaction
// writes events to the audit log (with the user as TargetID) and logs the change (see
// AuthChange). It returns ErrUserNotFound (an ErrNotFound), or ErrLastSuperuser if the user
// is the last administrator (see isAdmin); of two concurrent deletions (or demotions) of the
// last two administrators one fails.
func (s *Store) DeleteUser(ctx context.Context, id int64, events ...AuditEvent) error {
	err := s.userTx(ctx, id, lockForDelete, func(tx *gorm.DB, w *authWrite, cur lockedUser) error {
		if cur.row.isAdmin() {
			if err := cur.mayStopBeingAdmin(); err != nil {
				return err
			}
		}
		// The sessions the cascade ends, each named by its own event.
		at := now()
		var live []string
		if err := tx.Model(&sessionRow{}).Where("user_id = ? AND "+liveSession, id, utc(at)).Pluck("id", &live).Error; err != nil {
			return err
		}
		if err := tx.Where("id = ?", id).Delete(&userRow{}).Error; err != nil {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(events, id, "")); err != nil {
			return err
		}
		w.user(id)
		// The row is gone: the events carry the email it had.
		w.sessionsRevoked(id, live, events)
		w.event(EventAccountPurged, id, "", events)
		for i := range w.events {
			w.events[i].Email = cur.row.Email
		}
		return nil
	})
	if err != nil {
		return dbErr(fmt.Sprintf("delete user %d", id), err, ErrUserNotFound)
	}
	return nil
}

// Row lock strengths on PostgreSQL: an update takes the lock its UPDATE
// would take, which does not conflict with the key-share lock of a session
// inserted for the user (a login); a deletion takes the lock its DELETE
// would take. The SQLite dialect drops locking clauses.
const (
	lockForUpdate = "NO KEY UPDATE"
	lockForDelete = clause.LockingStrengthUpdate
)

// lockedUser is a user's current row, read under lock (see userTx).
type lockedUser struct {
	row userRow
	// guarded means every administrator's row is locked too, and
	// otherAdmin tells whether one besides the user exists.
	guarded, otherAdmin bool
}

// errNeedGuard aborts a transaction that would remove an administrator
// without holding the guard; userTx runs it again with the guard.
var errNeedGuard = errors.New("user: last-superuser guard needed")

// mayStopBeingAdmin returns nil if the locked user, an administrator, may stop
// being one: another administrator exists and is locked by this transaction,
// so no concurrent transaction can remove it before this one commits.
func (l lockedUser) mayStopBeingAdmin() error {
	switch {
	case !l.guarded:
		return errNeedGuard
	case !l.otherAdmin:
		return ErrLastSuperuser
	}
	return nil
}

// userTx runs fn in an authTx transaction on user id's current row, locked with
// strength until the transaction ends. It first locks the user's row alone,
// so that edits of different users never wait for each other; if fn finds
// it would remove an administrator (errNeedGuard), userTx runs it again, in
// a new transaction, holding the guard: the user's row and every
// administrator's, all locked in one statement in ID order.
//
// The guard serialises all removals of administrators, and since locks are
// taken in one order, two concurrent removals cannot deadlock (locking one's
// own row first and the others' later would make two concurrent demotions
// each hold its own row and wait for the other's). A transaction holding a
// single row waits for nothing else in the users table, so it cannot be part
// of a deadlock there either. On SQLite every transaction is immediate and
// excludes all other writers, so the reads are fresh without locks.
func (s *Store) userTx(ctx context.Context, id int64, strength string, fn func(tx *gorm.DB, w *authWrite, cur lockedUser) error) error {
	run := func(guard bool) error {
		return s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
			cur, err := lockUser(tx, id, strength, guard)
			if err != nil {
				return err
			}
			return fn(tx, w, cur)
		})
	}
	if err := run(false); !errors.Is(err, errNeedGuard) {
		return err
	}
	return run(true)
}

// lockUser reads user id's row with a lock of the given strength and, with
// guard, the rows of every administrator too, in ID order. PostgreSQL
// returns the latest committed version of a row it had to wait for, and
// skips an administrator's row that stopped being one meanwhile. It returns
// gorm.ErrRecordNotFound if the user does not exist.
func lockUser(tx *gorm.DB, id int64, strength string, guard bool) (lockedUser, error) {
	q := tx.Clauses(clause.Locking{Strength: strength}) // dropped by the SQLite dialect
	if !guard {
		var row userRow
		err := q.Where("id = ?", id).Take(&row).Error
		return lockedUser{row: row}, err
	}
	var rows []userRow
	err := q.Where("id = ? OR (is_active = ? AND is_staff = ? AND is_superuser = ?)", id, true, true, true).
		Order("id").Find(&rows).Error
	if err != nil {
		return lockedUser{}, err
	}
	cur := lockedUser{guarded: true}
	found := false
	for _, r := range rows {
		switch {
		case r.ID == id:
			cur.row, found = r, true
		case r.isAdmin():
			cur.otherAdmin = true
		}
	}
	if !found {
		return lockedUser{}, gorm.ErrRecordNotFound
	}
	return cur, nil
}

// isAdmin reports whether the user can still manage users: an active staff
// superuser. The guard keeps at least one, so nobody locks everyone out.
func (r userRow) isAdmin() bool { return r.IsActive && r.IsStaff && r.IsSuperuser }

// UpgradePasswordHash replaces the user's password hash with newHash if it is still oldHash,
// as a login does after rehashing with current parameters; a concurrent password change
// wins. It reports whether it replaced the hash (and then logs the change, see AuthChange),
// and returns no sentinels.
func (s *Store) UpgradePasswordHash(ctx context.Context, id int64, oldHash, newHash string) (bool, error) {
	var replaced bool
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		res := tx.Model(&userRow{}).Where("id = ? AND password_hash = ?", id, oldHash).Update("password_hash", newHash)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		replaced = true
		w.user(id)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("upgrade password hash of user %d: %w", id, err)
	}
	return replaced, nil
}

// PasswordChange is a change of a user's own password, for ChangePassword.
type PasswordChange struct {
	UserID int64
	// OldHash is the hash the caller checked the old password against; NewHash replaces it.
	OldHash, NewHash string
	// Current is the session making the change. It ends with every other session of the
	// user, and Next, with its first refresh token First, takes its place.
	Current string
	Next    *Session
	First   RefreshToken
	// Events are written to the audit log, with the user as TargetID and Current as SessionID.
	Events []AuditEvent
}

// ChangePassword replaces the user's password hash with c.NewHash and moves the caller to a
// new session, in one transaction: it revokes, at c.Next.CreatedAt, every live session of the
// user, c.Current too (so that whoever shares it, with a copied refresh token, is out), records
// c.Next with its first refresh token c.First (whose SessionID is set to it), writes the audit
// events and logs the change (see AuthChange). The change is made only while c.OldHash is
// still the user's, so that of two racing changes (or a change racing an administrator's
// reset) only one that knew the current password succeeds. It returns how many sessions it
// revoked, c.Current among them.
//
// It returns ErrUserNotFound (an ErrNotFound), ErrPasswordChanged if the hash is no longer
// c.OldHash (changed, or rehashed by a login: check the password against the current hash
// again), or ErrSessionNotFound if c.Current is not a live session of the user; then nothing
// is changed.
func (s *Store) ChangePassword(ctx context.Context, c PasswordChange) (int64, error) {
	next := *c.Next
	at := utc(next.CreatedAt)
	next.UserID, next.CreatedAt = c.UserID, at
	var (
		revoked int64
		row     sessionRow
	)
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		// The user's row first, as StartSession does: a login that checked the old password
		// and has not recorded its session yet waits for this transaction, then finds the
		// hash changed.
		res := tx.Model(&userRow{}).Where("id = ? AND password_hash = ?", c.UserID, c.OldHash).Update("password_hash", c.NewHash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return missingOrChanged(tx, c.UserID)
		}
		if err := forgetLoginIPs(tx, c.UserID); err != nil {
			return err
		}
		var live int64
		err := tx.Model(&sessionRow{}).Where("id = ? AND user_id = ? AND "+liveSession, c.Current, c.UserID, at).
			Count(&live).Error
		if err != nil {
			return err
		}
		if live == 0 {
			return ErrSessionNotFound
		}
		ended, err := revokeUserSessions(tx, c.UserID, at)
		if err != nil {
			return err
		}
		revoked = int64(len(ended))
		if row, err = createSessionWithToken(tx, &next, c.First); err != nil {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(c.Events, c.UserID, c.Current)); err != nil {
			return err
		}
		w.user(c.UserID)
		w.event(EventCredentialChange, c.UserID, "", c.Events)
		w.sessionsRevoked(c.UserID, ended, c.Events)
		return nil
	})
	if err != nil {
		return 0, dbErr(fmt.Sprintf("change password of user %d", c.UserID), err, ErrUserNotFound)
	}
	*c.Next = row.session()
	return revoked, nil
}

// userChangeEvents reports the security events of an update of a user from before to after
// that revoked the sessions revoked, caused by the audit events written: at most one of each
// user-level kind, and one session-revoked per session revoked.
func userChangeEvents(w *authWrite, before, after User, revoked []string, cause []AuditEvent) {
	deactivated := before.IsActive && !after.IsActive
	if before.PasswordHash != after.PasswordHash {
		w.event(EventCredentialChange, after.ID, "", cause)
	}
	if before.IsStaff != after.IsStaff || before.IsSuperuser != after.IsSuperuser {
		claims := map[string]bool{}
		if before.IsStaff != after.IsStaff {
			claims["is_staff"] = after.IsStaff
		}
		if before.IsSuperuser != after.IsSuperuser {
			claims["is_superuser"] = after.IsSuperuser
		}
		detail, _ := json.Marshal(map[string]any{"claims": claims}) // bools always marshal
		w.event(EventTokenClaimsChange, after.ID, "", cause)
		w.events[len(w.events)-1].Detail = string(detail)
	}
	if deactivated {
		w.event(EventAccountDisabled, after.ID, "", cause)
	}
	// A deactivated user's sessions are all dead: account-disabled says so for the user, and
	// the sessions this change ended are named one by one.
	w.sessionsRevoked(after.ID, revoked, cause)
}
