package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// AuditEvent is one row of the audit log: a security event, written in the transaction of
// the change it describes, so that neither exists without the other. The store does not
// interpret Action or Outcome (package audit names them). It holds identifiers and field
// names only, never a secret.
type AuditEvent struct {
	ID      int64
	At      time.Time
	Action  string
	Outcome string
	// ActorID is the user who acted, 0 for none (unauthenticated, the system, the CLI);
	// TargetID the user acted upon, 0 for none.
	ActorID, TargetID int64
	// SessionID is the session the event concerns (started, revoked, logged out), else the
	// session of the actor's request; "" for none.
	SessionID     string
	IP, UserAgent string
	KeyID         string   // the signing key concerned, "" for none
	ClientID      string   // the API client concerned, "" for none
	Fields        []string // names of the fields the change set, never their values
	// Count is how many events of the kind the row stands for: 1, except for repeated
	// refusals counted in one row (see ReserveLoginAttempt), whose At is the last one's time
	// and FirstAt the first one's. Ignored when written; read, FirstAt is At for one event.
	Count   int64
	FirstAt time.Time
}

// UserAudit gives the audit events of a change of a user, from the user before and after
// it; see UpdateUser.
type UserAudit func(before, after User) []AuditEvent

type auditEventRow struct {
	ID        int64 `gorm:"primaryKey"`
	At        time.Time
	Action    string
	Outcome   string
	ActorID   *int64
	TargetID  *int64
	SessionID *string
	IP        string `gorm:"column:ip"`
	UserAgent string
	KeyID     *string
	ClientID  *string
	Fields    string
	Count     int64      `gorm:"default:1"`
	FirstAt   *time.Time // nil: At
	// AggregateKey names the row that counts repeated events (see aggregateThrottled); nil
	// for the others.
	AggregateKey *string
}

func (auditEventRow) TableName() string { return "audit_events" }

func toAuditEventRow(e AuditEvent) auditEventRow {
	return auditEventRow{
		At: utc(e.At), Action: e.Action, Outcome: e.Outcome,
		ActorID: nonZero(e.ActorID), TargetID: nonZero(e.TargetID), SessionID: nonEmpty(e.SessionID),
		IP: e.IP, UserAgent: e.UserAgent, KeyID: nonEmpty(e.KeyID), ClientID: nonEmpty(e.ClientID), Fields: strings.Join(e.Fields, ","),
	}
}

func (r auditEventRow) event() AuditEvent {
	e := AuditEvent{ID: r.ID, At: r.At.UTC(), Action: r.Action, Outcome: r.Outcome, IP: r.IP, UserAgent: r.UserAgent,
		Count: max(r.Count, 1), FirstAt: r.At.UTC()}
	if r.FirstAt != nil {
		e.FirstAt = r.FirstAt.UTC()
	}
	if r.ActorID != nil {
		e.ActorID = *r.ActorID
	}
	if r.TargetID != nil {
		e.TargetID = *r.TargetID
	}
	if r.SessionID != nil {
		e.SessionID = *r.SessionID
	}
	if r.KeyID != nil {
		e.KeyID = *r.KeyID
	}
	if r.ClientID != nil {
		e.ClientID = *r.ClientID
	}
	if r.Fields != "" {
		e.Fields = strings.Split(r.Fields, ",")
	}
	return e
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func nonEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// writeAudit inserts the events in tx, the transaction of the change they describe, and
// returns their IDs. An event without an Action is skipped (a caller with nothing to record
// passes the zero AuditEvent); a zero At becomes at. In an authTx, the change-log row that
// authTx adds comes after them, last.
func writeAudit(tx *gorm.DB, at time.Time, events []AuditEvent) ([]int64, error) {
	rows := make([]auditEventRow, 0, len(events))
	for _, e := range events {
		if e.Action == "" {
			continue
		}
		if e.At.IsZero() {
			e.At = at
		}
		rows = append(rows, toAuditEventRow(e))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, fmt.Errorf("write audit events: %w", err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids, nil
}

// withTarget returns copies of events whose TargetID (and, when sessionID is not "",
// SessionID) are those of the change the store made.
func withTarget(events []AuditEvent, targetID int64, sessionID string) []AuditEvent {
	out := make([]AuditEvent, len(events))
	for i, e := range events {
		e.TargetID = targetID
		if sessionID != "" {
			e.SessionID = sessionID
		}
		out[i] = e
	}
	return out
}

// RecordAuditEvents writes events that describe no change of the store's state (a login
// refused while no throttle is on, for instance). A change records its events through the
// method that makes it, in the same transaction. It returns no sentinels.
func (s *Store) RecordAuditEvents(ctx context.Context, events ...AuditEvent) error {
	done, err := s.writeTurn(ctx)
	if err != nil {
		return fmt.Errorf("record audit events: %w", err)
	}
	defer done()
	_, err = writeAudit(s.db.WithContext(ctx), now(), events)
	return err
}

// AuditFilter selects audit events. Zero fields select everything.
type AuditFilter struct {
	UserID  int64    // events whose actor or target is this user
	Actions []string // events of any of these actions
	// Since and Until bound the events' time: Since included, Until excluded.
	Since, Until time.Time
	// Limit caps the page (<= 0: no cap); Offset skips that many of the newest (< 0: none).
	Limit, Offset int
}

// AuditEvents returns a page of the events f selects, newest first (by time, then by ID),
// and how many it selects in all. It returns no sentinels.
func (s *Store) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, int64, error) {
	where := func() *gorm.DB {
		q := s.read.WithContext(ctx).Model(&auditEventRow{})
		if f.UserID != 0 {
			q = q.Where("actor_id = ? OR target_id = ?", f.UserID, f.UserID)
		}
		if len(f.Actions) > 0 {
			q = q.Where("action IN ?", f.Actions)
		}
		if !f.Since.IsZero() {
			q = q.Where("at >= ?", utc(f.Since))
		}
		if !f.Until.IsZero() {
			q = q.Where("at < ?", utc(f.Until))
		}
		return q
	}
	// Two statements, as ListUsers: a total off by a concurrent insert is harmless for paging.
	var total int64
	if err := where().Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count audit events: %w", err)
	}
	q := where().Order("at DESC, id DESC").Offset(max(f.Offset, 0))
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	var rows []auditEventRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("list audit events: %w", err)
	}
	out := make([]AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, total, nil
}

// PruneAuditEvents deletes the events before before, and returns how many. It returns no
// sentinels.
func (s *Store) PruneAuditEvents(ctx context.Context, before time.Time) (int64, error) {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Where("at < ?", utc(before)).Delete(&auditEventRow{}) })
	if res.Error != nil {
		return 0, fmt.Errorf("prune audit events: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// aggregateThrottled counts event, a refusal at at, in tx: the first refusal of its key
// writes a row, each later one adds 1 to its count and moves its time (the last refusal's;
// first_at keeps the first's) in one statement, so that the count is exact however many
// refusals arrive at once, on however many instances. key is hashed, so that any username fits
// the index.
func aggregateThrottled(tx *gorm.DB, at time.Time, event AuditEvent, key string) error {
	sum := sha256.Sum256([]byte(key))
	r := toAuditEventRow(event)
	r.At = utc(at)
	return tx.Exec(`INSERT INTO audit_events
			(at, action, outcome, actor_id, target_id, session_id, ip, user_agent, key_id, fields, count, first_at, aggregate_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (aggregate_key) DO UPDATE SET count = audit_events.count + 1,
			at = CASE WHEN excluded.at > audit_events.at THEN excluded.at ELSE audit_events.at END,
			first_at = CASE WHEN excluded.first_at < audit_events.first_at THEN excluded.first_at ELSE audit_events.first_at END`,
		r.At, r.Action, r.Outcome, r.ActorID, r.TargetID, r.SessionID, r.IP, r.UserAgent, r.KeyID, r.Fields,
		r.At, hex.EncodeToString(sum[:])).Error
}
