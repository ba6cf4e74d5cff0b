package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// AuthChange is one row of the change log of authentication state: the user named had a
// session revoked (SessionID, when one session), or their account changed or was deleted.
// Every instance sharing the database reads the log to drop what it cached about the user.
type AuthChange struct {
	ID        int64
	UserID    int64
	SessionID string // "" when the change concerns the whole user
	// ClientID names the API client changed, when the row concerns a client (UserID is then
	// 0; see logClientChange).
	ClientID string
	At       time.Time
}

type authChangeRow struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    int64
	SessionID *string
	ClientID  *string
	At        time.Time
}

func (authChangeRow) TableName() string { return "auth_changes" }

// authWrite is what an auth-changing transaction reports to authTx: whose authentication
// state it changed, if it changed any.
type authWrite struct {
	userID    int64
	sessionID string // "" when the change concerns the whole user
	changed   bool
	// events are what the change means to Shared Signals receivers (see SecurityEvent);
	// authTx writes them only while a stream wants them.
	events []SecurityEvent
}

// user reports that the transaction changed user id's account or all their sessions.
func (w *authWrite) user(id int64) { w.userID, w.sessionID, w.changed = id, "", true }

// session reports that the transaction changed one session, sessionID, of user id.
func (w *authWrite) session(id int64, sessionID string) {
	w.userID, w.sessionID, w.changed = id, sessionID, true
}

// event reports a security event of the change, of kind, about user id (and session
// sessionID when one session), caused by the audit events given to the write (the first one
// names the cause and the actor).
func (w *authWrite) event(kind EventKind, userID int64, sessionID string, cause []AuditEvent) {
	e := SecurityEvent{Kind: kind, UserID: userID, SessionID: sessionID}
	if len(cause) > 0 {
		e.Cause, e.ActorID = cause[0].Action, cause[0].ActorID
	}
	w.events = append(w.events, e)
}

// sessionsRevoked reports one session-revoked event per session of user id that the change
// ended, so that a receiver refuses exactly those sessions' tokens rather than guessing by
// the time of a user-wide event (tokens carry whole seconds: a session started in the same
// second before the change would pass, or one after it be refused).
func (w *authWrite) sessionsRevoked(userID int64, sessionIDs []string, cause []AuditEvent) {
	for _, id := range sessionIDs {
		w.event(EventSessionRevoked, userID, id, cause)
	}
}

// authTx is the one way to change a user's authentication state (their account, password,
// activity, roles or sessions): anything other instances may hold in their caches. It runs fn
// in a transaction on the writer, in its turn. When fn returns nil having reported a change
// (w.user or w.session), authTx logs that change in the same transaction, as its last
// statement (see logChange), and after the commit tells this Store's watchers (OnAuthChange).
// A change fn does not report reaches other instances only when their cached tokens expire;
// TestAuthChangesLogged lists every method that must report one.
func (s *Store) authTx(ctx context.Context, fn func(tx *gorm.DB, w *authWrite) error) error {
	var w authWrite
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		w = authWrite{}
		if err := fn(tx, &w); err != nil || !w.changed {
			return err
		}
		if err := writeSecurityEvents(tx, w.events); err != nil {
			return err
		}
		return logChange(tx, w.userID, w.sessionID)
	})
	if err != nil {
		return err
	}
	if w.changed {
		s.changed(w.userID)
	}
	return nil
}

// logChange records in tx that the user's authentication state changed; only authTx calls
// it, as the last statement of the transaction: on PostgreSQL the id is taken from a sequence
// when the row is inserted, and a transaction that takes one and commits much later can be
// read after rows with larger ids; keeping the insert next to the commit keeps that window to
// milliseconds (readers still track gaps in the ids, see authcache).
func logChange(tx *gorm.DB, userID int64, sessionID string) error {
	row := authChangeRow{UserID: userID, At: now()}
	if sessionID != "" {
		row.SessionID = &sessionID
	}
	if err := insertChange(tx, row); err != nil {
		return fmt.Errorf("log auth change of user %d: %w", userID, err)
	}
	return nil
}

// insertChange writes row to the change log and, on PostgreSQL, announces it.
func insertChange(tx *gorm.DB, row authChangeRow) error {
	if err := tx.Omit("ID").Create(&row).Error; err != nil {
		return err
	}
	if tx.Dialector.Name() == dialectPostgres {
		// Delivered at the commit, to every ListenAuthChanges; not at all on rollback.
		return tx.Exec("NOTIFY " + notifyChannel).Error
	}
	return nil
}

// notifyChannel is the PostgreSQL channel on which committed auth changes are announced.
const notifyChannel = "authapi_auth_changes"

// ErrNoListen means the backend cannot announce changes (SQLite): poll the log instead.
var ErrNoListen = errors.New("auth changes: the backend cannot listen")

// ListenAuthChanges calls fn each time a change logged by any Store on the database commits,
// on a dedicated PostgreSQL connection (LISTEN/NOTIFY), until ctx is done or the connection
// fails; it returns that error. fn says nothing about which change: read the log. It returns
// ErrNoListen on SQLite.
func (s *Store) ListenAuthChanges(ctx context.Context, fn func()) error {
	if s.dialect != dialectPostgres {
		return ErrNoListen
	}
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("listen for auth changes: %w", s.avail.classify(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen for auth changes: %w", s.avail.classify(err))
	}
	fn() // anything committed before LISTEN took effect is for the caller's next read
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("listen for auth changes: %w", s.avail.classify(err))
		}
		fn()
	}
}

// watchers are the functions registered to hear of changes made through this Store, each
// with what changed (a user's id, an API client's id).
type watchers[T any] struct {
	mu  sync.Mutex
	fns []func(T)
}

func (w *watchers[T]) add(fn func(T)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fns = append(w.fns, fn)
}

func (w *watchers[T]) tell(changed T) {
	w.mu.Lock()
	fns := w.fns
	w.mu.Unlock()
	for _, fn := range fns {
		fn(changed)
	}
}

// OnAuthChange registers fn to be called, after the commit, with the user of every change
// that this Store logs (the same changes AuthChangesAfter returns, but at once and only those
// made through this Store). fn must be quick and must not call the Store.
func (s *Store) OnAuthChange(fn func(userID int64)) { s.watchers.add(fn) }

// changed tells the watchers that userID's state changed; authTx calls it after the commit.
func (s *Store) changed(userID int64) { s.watchers.tell(userID) }

// AuthChangesAfter returns the logged changes with an id greater than afterID, in id order,
// at most limit of them (limit <= 0: all). It returns no sentinels.
func (s *Store) AuthChangesAfter(ctx context.Context, afterID int64, limit int) ([]AuthChange, error) {
	q := s.read.WithContext(ctx).Where("id > ?", afterID).Order("id")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rows []authChangeRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("auth changes after %d: %w", afterID, err)
	}
	out := make([]AuthChange, len(rows))
	for i, r := range rows {
		out[i] = AuthChange{ID: r.ID, UserID: r.UserID, At: r.At.UTC()}
		if r.SessionID != nil {
			out[i].SessionID = *r.SessionID
		}
		if r.ClientID != nil {
			out[i].ClientID = *r.ClientID
		}
	}
	return out, nil
}

// LastAuthChangeID returns the largest id in the change log, 0 if it is empty. It returns no
// sentinels.
func (s *Store) LastAuthChangeID(ctx context.Context) (int64, error) {
	var id *int64
	if err := s.read.WithContext(ctx).Model(&authChangeRow{}).Select("MAX(id)").Scan(&id).Error; err != nil {
		return 0, fmt.Errorf("last auth change: %w", err)
	}
	if id == nil {
		return 0, nil
	}
	return *id, nil
}

// PruneAuthChanges deletes the changes logged before before, and returns how many. It
// returns no sentinels.
func (s *Store) PruneAuthChanges(ctx context.Context, before time.Time) (int64, error) {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Where("at < ?", utc(before)).Delete(&authChangeRow{}) })
	if res.Error != nil {
		return 0, fmt.Errorf("prune auth changes: %w", res.Error)
	}
	return res.RowsAffected, nil
}
